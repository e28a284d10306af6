# iotod: build, test, benchmark.
# `make test` installs and starts whatever the tests need, runs every test, and stops it all again.

GO      ?= go
BIN     ?= bin/iotod
GOFLAGS ?=

.PHONY: all build test vet fmt-check unit bench run clean services-start services-stop

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN) ./cmd/iotod

run: build
	$(BIN) run -c pipelines.yaml

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every test: unit, conformance, crash (SIGKILL) and end-to-end tests, with the services they
# need (mosquitto: installed if missing, started on loopback, stopped after, even on failure).
test: fmt-check vet
	GO=$(GO) bash scripts/test.sh -count=1 -timeout 20m ./...

# Start or stop the test services by hand (then: export $$(scripts/services.sh env)).
services-start:
	bash scripts/services.sh start

services-stop:
	bash scripts/services.sh stop

# Quick tests without the slow crash and end-to-end ones.
unit:
	$(GO) test -short ./...

bench: build
	$(BIN) bench db

clean:
	rm -rf bin data
