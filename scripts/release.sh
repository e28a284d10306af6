#!/usr/bin/env bash
# Builds the release archives (make release; docs/install.md says what they hold and which binary
# goes where):
#   scripts/release.sh                          # version from git describe, into dist/
#   VERSION=1.2.0 scripts/release.sh
#   VERSION=1.2.0 DIST=/tmp/out PLATFORMS=linux/arm64 scripts/release.sh
#
# For each platform (linux/amd64, linux/arm64, linux/arm with GOARM=7) it builds two static
# binaries (CGO_ENABLED=0, -trimpath, -ldflags "-s -w -X main.version -X main.commit"):
#   iotod         the full build, every store (badger, SQLite, the cloud's DynamoDB and PostgreSQL)
#   iotod-device  the device build (-tags device, as make build-device): its platform's device store
#                 alone, badger on linux/amd64 and linux/arm64, SQLite on linux/arm (badger cannot
#                 run on 32-bit); no cloud store
# and packs them into DIST/iotod_<version>_linux_<arch>.tar.gz, in a folder of the same name, with
# README.md (packaging/README.md), LICENSE if the repository has one, iotod.service (the systemd
# unit, packaging/iotod.service), schema.json5 (the repository's) and device.yaml: a device's
# config made from docs/examples/device.yaml (badger), on linux/arm from device-sqlite.yaml
# (badger refuses to run on 32-bit), its paths relative to its own folder (schema.json5 beside
# it, data in ./data unless IOTOD_DATA says otherwise). Then DIST/SHA256SUMS over the archives.
#
# It fails, naming the file and its size, when a device binary is over the P8 bar of 25 MiB
# (26,214,400 bytes; docs/benchmarks.md), when a device binary lacks the store its device.yaml
# names or links the other one (go version -m), and when an example config does not validate.
#
# Environment: VERSION (default: git describe --tags --always --dirty), COMMIT (default: git
# rev-parse HEAD), DIST (default: the repository's dist/; a relative path is taken from the
# current folder), PLATFORMS (default: "linux/amd64 linux/arm64 linux/arm"), GO (default: go),
# SOURCE_DATE_EPOCH (the archives' file times; default: the commit's time, else now), DEVICE_MAX_BYTES
# (default 26214400).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${DIST:-}" ]; then
	mkdir -p "$DIST"
	DIST=$(cd "$DIST" && pwd)
else
	DIST=$root/dist
fi
cd "$root"

GO=${GO:-go}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 linux/arm}
DEVICE_MAX_BYTES=${DEVICE_MAX_BYTES:-26214400}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

die() {
	echo "release: $*" >&2
	exit 1
}

# The version and commit go into file names and -X flags: one word of safe characters.
[[ $VERSION =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die "VERSION \"$VERSION\": want letters, digits and . _ + - only"
[[ $COMMIT =~ ^[A-Za-z0-9._+-]+$ ]] || die "COMMIT \"$COMMIT\": want letters, digits and . _ + - only"
[ -n "${PLATFORMS// /}" ] || die "PLATFORMS is empty"
[[ $DEVICE_MAX_BYTES =~ ^[0-9]+$ ]] || die "DEVICE_MAX_BYTES \"$DEVICE_MAX_BYTES\": want a number of bytes"

for f in packaging/README.md packaging/iotod.service schema.json5 docs/examples/device.yaml docs/examples/device-sqlite.yaml; do
	[ -f "$f" ] || die "$f is missing"
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/iotod-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT

ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT"
start=$SECONDS
echo "release: iotod $VERSION ($COMMIT) for $PLATFORMS into $DIST" >&2

# mib prints a byte count in MiB (2^20 bytes, the unit of the P8 bar: 25 MiB = 26214400 bytes).
mib() {
	awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'
}

# size prints the size of a file in bytes.
size() {
	wc -c <"$1" | tr -d ' '
}

# The module of each device store: the device build of a platform links one of them
# (cmd/iotod/components_stores_*.go).
declare -A store_module=([badger]=github.com/dgraph-io/badger/v4 [sqlite]=modernc.org/sqlite)

# device_store GOARCH prints the store of that platform's device build and its example config.
device_store() {
	case $1 in
	arm) echo sqlite ;; # badger refuses 32-bit
	*) echo badger ;;
	esac
}

# check_store BIN STORE fails unless the device binary BIN links STORE's module and not the other's.
check_store() {
	local bin=$1 store=$2 mods s
	mods=$("$GO" version -m "$bin") || die "go version -m $bin failed"
	for s in "${!store_module[@]}"; do
		if grep -q "^[[:space:]]*dep[[:space:]]*${store_module[$s]}[[:space:]]" <<<"$mods"; then
			[ "$s" = "$store" ] || die "$bin links the $s store (${store_module[$s]}): its platform's device build has $store alone"
		else
			[ "$s" != "$store" ] || die "$bin lacks the $store store (${store_module[$s]}) its device.yaml names"
		fi
	done
	echo "release: ${bin#"$stage"/}: the $store store alone" >&2
}

# build GOOS GOARCH FLAVOUR OUT builds one binary: FLAVOUR is full or device.
build() {
	local goos=$1 goarch=$2 flavour=$3 out=$4
	local env=(CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch")
	[ "$goarch" = arm ] && env+=(GOARM=7)
	local tags=()
	[ "$flavour" = device ] && tags=(-tags device)
	local t0=$SECONDS
	env "${env[@]}" "$GO" build -trimpath "${tags[@]}" -ldflags "$ldflags" -o "$out" ./cmd/iotod
	local n
	n=$(size "$out")
	printf 'release: %-12s %-6s %-13s %10d bytes (%s), built in %ds\n' \
		"$goos/$goarch" "$flavour" "$(basename "$out")" "$n" "$(mib "$n")" $((SECONDS - t0)) >&2
}

# device_config SRC OUT writes a docs/examples device config with its paths made relative to its
# own folder: the schema beside it, the data in ./data (IOTOD_DATA, which iotod.service sets to
# /var/lib/iotod, overrides that).
device_config() {
	local src=$1 out=$2
	{
		echo "# iotod $VERSION: $src of the repository, its paths relative to this file's folder"
		echo "# (schema.json5 beside it, data in ./data unless IOTOD_DATA says otherwise)."
		echo "# Install: docs/install.md, or README.md beside this file."
		echo "#"
		sed -e 's#\.\./\.\./schema\.json5#schema.json5#g' \
			-e 's#\.\./\.\./data/examples#data#g' \
			-e "s#-c device-sqlite\.yaml#-c device.yaml#" \
			-e "s#^\# repository's data/examples, which git ignores)\.#\# folder data beside this file; iotod.service sets /var/lib/iotod).#" \
			"$src"
	} >"$out"
	if grep -n '\.\./' "$out" >&2; then
		die "$out (from $src) still has a path out of its folder"
	fi
}

# check_platform PLATFORM fails unless it is one that is packaged.
check_platform() {
	case $1 in
	linux/amd64 | linux/arm64 | linux/arm) ;;
	*) die "platform $1: want linux/amd64, linux/arm64 or linux/arm" ;;
	esac
}

# The device builds first, all of them: their sizes are checked against the bar before the
# longer full builds, and every one over it is named.
over=()
for platform in $PLATFORMS; do
	check_platform "$platform"
	name=iotod_${VERSION}_${platform%/*}_${platform#*/}
	mkdir -p "$stage/$name"
	build "${platform%/*}" "${platform#*/}" device "$stage/$name/iotod-device"
	check_store "$stage/$name/iotod-device" "$(device_store "${platform#*/}")"
	n=$(size "$stage/$name/iotod-device")
	if [ "$n" -gt "$DEVICE_MAX_BYTES" ]; then
		over+=("$name/iotod-device (the device build for $platform) is $n bytes ($(mib "$n"))")
	fi
done
if [ ${#over[@]} -gt 0 ]; then
	for o in "${over[@]}"; do
		echo "release: $o: over the P8 bar of $DEVICE_MAX_BYTES bytes" >&2
	done
	die "${#over[@]} device binary(ies) over the P8 bar: nothing was packaged"
fi

archives=()
hostbin=
for platform in $PLATFORMS; do
	goos=${platform%/*}
	goarch=${platform#*/}
	store=$(device_store "$goarch")
	example=docs/examples/device.yaml
	if [ "$store" = sqlite ]; then
		example=docs/examples/device-sqlite.yaml
	fi
	name=iotod_${VERSION}_${goos}_${goarch}
	dir=$stage/$name
	build "$goos" "$goarch" full "$dir/iotod"

	cp packaging/README.md "$dir/README.md"
	cp packaging/iotod.service "$dir/iotod.service"
	cp schema.json5 "$dir/schema.json5"
	for lic in LICENSE LICENSE.md LICENSE.txt COPYING; do
		if [ -f "$lic" ]; then
			cp "$lic" "$dir/"
		fi
	done
	device_config "$example" "$dir/device.yaml"
	grep -q "^    type: $store\$" "$dir/device.yaml" || die "$name/device.yaml: its store is not $store"
	chmod 0755 "$dir" "$dir/iotod" "$dir/iotod-device"
	find "$dir" -type f ! -name iotod ! -name iotod-device -exec chmod 0644 {} +
	if [ "$goos/$goarch" = "$("$GO" env GOHOSTOS)/$("$GO" env GOHOSTARCH)" ]; then
		hostbin=$dir/iotod
	fi

	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
		-C "$stage" -cf - "$name" | gzip -n >"$DIST/$name.tar.gz"
	archives+=("$name.tar.gz")
done

# Each example config is checked, as iotod run would load it, by a binary that runs here.
if [ -n "$hostbin" ]; then
	for name in "${archives[@]}"; do
		cfg=$stage/${name%.tar.gz}/device.yaml
		out=$(env -u IOTOD_DATA -u IOTOD_SCHEMA "$hostbin" validate -c "$cfg" 2>&1) || die "${name%.tar.gz}/device.yaml does not validate: $out"
	done
	echo "release: the example configs validate" >&2
else
	echo "release: no binary for this host ($("$GO" env GOHOSTOS)/$("$GO" env GOHOSTARCH)) was built: the example configs were not validated" >&2
fi

(cd "$DIST" && sha256sum "${archives[@]}" >SHA256SUMS)

echo "release: done in $((SECONDS - start))s:" >&2
for name in "${archives[@]}" SHA256SUMS; do
	n=$(size "$DIST/$name")
	printf '%10d bytes (%s)  %s\n' "$n" "$(mib "$n")" "$DIST/$name"
done
