# iotod: build, test, benchmark.
# `make test` installs and starts whatever the tests need, runs every test, and stops it all again.

GO      ?= go
BIN     ?= bin/iotod
GOFLAGS ?=

.PHONY: all build test vet fmt-check unit bench run clean

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN) ./cmd/iotod

run: build
	$(BIN) run -c pipelines.yaml

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every test: unit, conformance, crash (SIGKILL) and end-to-end tests.
test: fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...

# Quick tests without the slow crash and end-to-end ones.
unit:
	$(GO) test -short ./...

bench: build
	$(BIN) bench db

clean:
	rm -rf bin data
