#!/usr/bin/env bash
# Runs every Go native fuzz target in the repository, one after another, each for $FUZZTIME:
#   scripts/fuzz.sh                 # every target, 3s each (make test: 1000x, a count: see below)
#   FUZZTIME=60s scripts/fuzz.sh    # longer (make fuzz)
#   scripts/fuzz.sh schema db       # only the targets in these package folders
#   scripts/fuzz.sh -l              # list the targets found, run nothing
#
# Targets are found by grep: every `func FuzzName(f *testing.F)` in a *_test.go file, so a new
# target anywhere is picked up without changing this script. Each runs as
#   go test -run='^$' -fuzz='^FuzzName$' -fuzztime=$FUZZTIME ./pkg
# (go test fuzzes one target of one package at a time). A target's seed corpus is its
# f.Add calls and testdata/fuzz/FuzzName/ in its package; new inputs the fuzzer finds stay
# in the Go build cache, and a failing input is written to testdata/fuzz/FuzzName/ (commit it
# with the fix: it then runs with every `go test`).
#
# Environment: FUZZTIME (default 3s), GO (default go), FUZZ_PARALLEL (fuzzing workers; default
# go's, GOMAXPROCS). Exits 1 if any target failed, after running them all.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-3s}
GO=${GO:-go}

list=false
if [ "${1:-}" = "-l" ]; then
	list=true
	shift
fi
roots=("$@")
[ ${#roots[@]} -gt 0 ] || roots=(.)

# "pkgdir name" for each target, sorted; testdata, vendor and hidden folders skipped.
targets=$(
	find "${roots[@]}" \( -name testdata -o -name vendor -o -name node_modules -o -name '.?*' \) -prune -o \
		-type f -name '*_test.go' -print0 |
		xargs -0 -r grep -HE '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' |
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*$|\1 \2|' |
		sed -E 's|^\./||' |
		sort -u
)

if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets found under ${roots[*]}" >&2
	exit 0
fi

if $list; then
	echo "$targets"
	exit 0
fi

parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
	parallel=(-parallel="$FUZZ_PARALLEL")
fi

# files_in counts the files of a folder (0 when it does not exist).
files_in() {
	if [ -d "$1" ]; then
		find "$1" -type f | wc -l
	else
		echo 0
	fi
}

failed=()
count=0
start=$SECONDS
while read -r dir name; do
	count=$((count + 1))
	pkg="./$dir"
	[ "$dir" = "." ] && pkg="."
	echo "fuzz: $pkg $name for $FUZZTIME" >&2
	corpus="$dir/testdata/fuzz/$name"
	before=$(files_in "$corpus")
	log=$(mktemp)
	if ! "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "${parallel[@]}" "$pkg" </dev/null 2>&1 | tee "$log" >&2 ||
		grep -q '^--- FAIL' "$log"; then
		after=$(files_in "$corpus")
		# Go 1.26's fuzz coordinator can report "context deadline exceeded" at
		# the end of a duration -fuzztime with no failing input (go.dev/issue/75804,
		# fixed in Go 1.27): that alone is not a finding. A real failure writes
		# its input to testdata/fuzz/NAME.
		if [ "$after" -eq "$before" ] && grep -q 'context deadline exceeded' "$log" &&
			! grep -qE 'panic:|Failing input written' "$log"; then
			echo "fuzz: $pkg $name: the toolchain's fuzztime deadline race (go.dev/issue/75804), no failing input: not counted" >&2
		else
			failed+=("$pkg $name")
		fi
	fi
	rm -f "$log"
done <<<"$targets"

echo "fuzz: $count targets in $((SECONDS - start))s, ${#failed[@]} failed" >&2
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
