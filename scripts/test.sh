#!/usr/bin/env bash
# Runs go test with the services the tests need: starts them (scripts/services.sh), runs
# `go test "$@"` with their addresses in the environment, and stops them whatever happens.
#   scripts/test.sh -count=1 ./...
set -euo pipefail
cd "$(dirname "$0")/.."

IOTOD_SERVICES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/iotod-services.XXXXXX")
export IOTOD_SERVICES_DIR
cleanup() {
	bash scripts/services.sh stop || true
	rm -rf "$IOTOD_SERVICES_DIR"
}
trap cleanup EXIT INT TERM

bash scripts/services.sh start
set -a
# shellcheck disable=SC1091
. "$IOTOD_SERVICES_DIR/env"
set +a
echo "test.sh: IOTOD_MOSQUITTO_URL=$IOTOD_MOSQUITTO_URL IOTOD_DYNAMODB_URL=$IOTOD_DYNAMODB_URL" >&2
bash scripts/chromium.sh ensure >/dev/null # the browser tests' Chromium (e2e/ui_test.go): installed when missing
"${GO:-go}" test "$@"
