#!/usr/bin/env bash
# Finds the Chromium (or Chrome) the browser tests drive (e2e/ui_test.go, headless, through the
# DevTools protocol) and prints its path; `ensure` installs Debian's chromium package with apt
# when none is found. Looked for, in order: $IOTOD_CHROMIUM, then chromium, chromium-browser,
# google-chrome and google-chrome-stable on the PATH, then their usual install paths.
#
#   scripts/chromium.sh ensure   # find it, else install it; print its path (nothing else when
#                                # found; the install logs on stderr). Run it as often as you like.
#   scripts/chromium.sh path     # find it only: print its path, or exit 1
set -euo pipefail

log() { echo "chromium: $*" >&2; }

find_chromium() {
	if [ -n "${IOTOD_CHROMIUM:-}" ]; then
		if [ -x "$IOTOD_CHROMIUM" ]; then
			echo "$IOTOD_CHROMIUM"
			return 0
		fi
		log "IOTOD_CHROMIUM=$IOTOD_CHROMIUM is not an executable; looking elsewhere"
	fi
	local name path
	for name in chromium chromium-browser google-chrome google-chrome-stable; do
		if path=$(command -v "$name" 2>/dev/null); then
			echo "$path"
			return 0
		fi
	done
	for path in /usr/bin/chromium /usr/lib/chromium/chromium /usr/bin/chromium-browser \
		/usr/bin/google-chrome /opt/google/chrome/chrome \
		"/Applications/Chromium.app/Contents/MacOS/Chromium" \
		"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"; do
		if [ -x "$path" ]; then
			echo "$path"
			return 0
		fi
	done
	return 1
}

# apt_install PKG...: as scripts/services.sh does.
apt_install() {
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	log "installing $* (apt-get)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		-o DPkg::Lock::Timeout=120 "$@" >/dev/null
}

ensure() {
	if find_chromium; then
		return 0
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		log "no chromium, chromium-browser or google-chrome found, and no apt-get to install one:"
		log "install Chromium or Chrome, or set IOTOD_CHROMIUM to its path"
		return 1
	fi
	apt_install chromium
	find_chromium || { log "chromium not found after the install"; return 1; }
}

case "${1:-}" in
ensure) ensure ;;
path) find_chromium ;;
*)
	echo "usage: $0 ensure|path" >&2
	exit 2
	;;
esac
