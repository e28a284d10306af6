# iotod: build, test, benchmark.
# `make test` installs and starts whatever the tests need, runs every test, and stops it all again.

GO      ?= go
BIN     ?= bin/iotod
GOFLAGS ?=

.PHONY: all build build-device test test-32bit vet fmt-check unit race bench run clean services-start services-stop fuzz

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN) ./cmd/iotod

run: build
	$(BIN) run -c pipelines.yaml

vet:
	$(GO) vet ./...
	$(GO) vet -tags device ./cmd/iotod ./bench
	GOARCH=arm GOARM=7 $(GO) vet -tags device ./cmd/iotod ./broker

# The device build: one device store, badger on a 64-bit GOARCH, SQLite on a 32-bit one (arm, 386,
# mips, mipsle: cmd/iotod/components_stores_*.go), without the cloud-only stores and their SDKs,
# symbols stripped (P8: binary <= 25 MiB). Cross-compile with GOOS/GOARCH, e.g.
# make build-device GOARCH=arm64, or GOARCH=arm GOARM=7 for a 32-bit ARM gateway.
build-device:
	$(GO) build -tags device -trimpath -ldflags "-s -w" -o bin/iotod-device ./cmd/iotod

# Release archives (scripts/release.sh, docs/install.md): for linux/amd64, linux/arm64 and
# linux/arm (GOARM=7), dist/iotod_<version>_linux_<arch>.tar.gz holding the full build (iotod)
# and the device build (iotod-device), static and stripped, with the systemd unit, an example
# device config and the schema; then dist/SHA256SUMS. Fails when a device binary is over P8's
# 25 MiB or lacks the store of its device config. VERSION defaults to git describe, COMMIT to the
# HEAD commit: make release VERSION=1.2.0
VERSION          ?=
COMMIT           ?=
DIST             ?= dist
DEVICE_MAX_BYTES ?= 26214400

.PHONY: release
release:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' DIST='$(DIST)' DEVICE_MAX_BYTES='$(DEVICE_MAX_BYTES)' bash scripts/release.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every test: the short tests under the race detector, then unit, conformance, crash (SIGKILL)
# and end-to-end tests, with the services they need (mosquitto and DynamoDB Local: installed if
# missing, started fresh on free ports, stopped after, even on failure; docs/testing.md); then
# every fuzz target briefly (FUZZTIME_TEST each, see scripts/fuzz.sh). In between, test-32bit.
test: fmt-check vet
	GO=$(GO) bash scripts/test.sh -race -short -count=1 -timeout 15m ./...
	$(MAKE) test-32bit
	GO=$(GO) bash scripts/test.sh -count=1 -timeout 20m ./...
	GO=$(GO) FUZZTIME=$(FUZZTIME_TEST) bash scripts/fuzz.sh

# Fuzzing: every `func FuzzXxx(f *testing.F)` in the repository, found by scripts/fuzz.sh, one
# after another for FUZZTIME each (make fuzz FUZZTIME=10m for a longer run).
FUZZTIME      ?= 60s
FUZZTIME_TEST ?= 1000x

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# Start or stop the test services (mosquitto, DynamoDB Local) by hand, then
# export $$(scripts/services.sh env) for IOTOD_MOSQUITTO_URL and IOTOD_DYNAMODB_URL (docs/testing.md).
services-start:
	bash scripts/services.sh start

services-stop:
	bash scripts/services.sh stop

# The short tests as a 32-bit build (GOARCH=386 runs on amd64): what needs badger skips, the
# refusals of badger (storage, broker persistence, validate) are asserted; and a cross-build for
# 32-bit ARM gateways (GOARM=7).
# The device database's tests, crash test included, run there on SQLite (testenv.StoreType); on
# amd64 too with IOTOD_TEST_STORE=sqlite.
test-32bit:
	GOARCH=386 $(GO) test -short -count=1 -timeout 15m ./...
	GOARCH=386 $(GO) test -count=1 -timeout 15m ./db/... ./plugins/storage/sqlite/...
	IOTOD_TEST_STORE=sqlite $(GO) test -count=1 -timeout 15m ./db/...
	GOARCH=arm GOARM=7 $(GO) build -o /dev/null ./cmd/iotod
	GOARCH=arm GOARM=7 $(GO) build -tags device -o /dev/null ./cmd/iotod

# The short tests under the race detector.
race:
	GO=$(GO) bash scripts/test.sh -race -short -count=1 -timeout 15m ./...

# Quick tests without the slow crash and end-to-end ones.
unit:
	$(GO) test -short ./...

bench: build
	$(BIN) bench db

clean:
	rm -rf bin data
