#!/usr/bin/env bash
# The whole test suite, as root on Debian 12:
#   install what is missing, fetch helm, build (plain and ASan/UBSan), check
#   the C style, run pytest against the plain build, then again against the
#   sanitized build. Extra arguments go to both pytest runs (e.g. -k ttl).
# Exits non-zero when anything failed; the last line sums up both runs.
set -euo pipefail
cd "$(dirname "$0")/.."

py=/usr/bin/python3 # Debian's, with python3-pytest (not a pyenv python)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# Each pytest run gets its own base temp dir under $results, so this run
# unmounts and checks only what it made: other runs (another user's, a
# concurrent one) keep their mounts under /tmp/pytest-of-*.
unmount_leftovers() { # base temp dir
	local m
	for m in $(awk -v d="$1/" '$3 ~ /^fuse/ && index($2, d) == 1 {print $2}' /proc/mounts); do
		fusermount3 -u -z "$m" 2>/dev/null || true
	done
}

# A test run leaves no process behind: anything still running from its base
# temp dir (a daemon, a registry, a gpg-agent) is named and ended, and fails
# the run.
no_leftover_processes() { # label, base temp dir
	local pids
	pids=$(pgrep -f -- "$2/" || true)
	[ -z "$pids" ] && return 0
	echo "leftover processes after the $1 run:"
	ps -o pid=,args= -p "$(echo $pids | tr ' ' ,)" || true
	kill $pids 2>/dev/null || true
	status=1
}

scripts/deps.sh
scripts/helm.sh
scripts/sigstore.sh
scripts/build.sh
ASAN=1 scripts/build.sh

status=0
if command -v clang-format >/dev/null; then
	if git ls-files -co --exclude-standard '*.c' '*.h' | xargs clang-format --dry-run --Werror; then
		echo "style: clang-format clean"
	else
		echo "style: clang-format found unformatted code (above)"
		status=1
	fi
else
	echo "style: clang-format missing, skipped"
fi

# The C unit tests on their own, no registry needed (meson test).
if meson test -C build --suite unit --print-errorlogs >"$results/meson-test.log" 2>&1; then
	echo "meson test: $(grep -c ' OK ' "$results/meson-test.log") unit test programs ok"
else
	cat "$results/meson-test.log"
	status=1
fi

run_pytest() { # label, build dir, pytest args...
	local label=$1 build=$2 base=$results/$1
	shift 2
	echo "== pytest: $label ($build)"
	CHARTFS_BUILD=$build $py -m pytest tests -v -p no:cacheprovider --basetemp="$base" \
		--junitxml="$results/$label.xml" "$@" || status=1
	unmount_leftovers "$base"
	no_leftover_processes "$label" "$base"
}

run_pytest plain build "$@"
# The sanitized daemon is slower; slow tests (the long ones) run once.
run_pytest asan build-asan -m "not slow" "$@"

# One closing line for both runs.
$py - "$results" <<'EOF'
import glob, sys
import xml.etree.ElementTree as ET
t = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for f in glob.glob(sys.argv[1] + "/*.xml"):
    for s in ET.parse(f).getroot().iter("testsuite"):
        for k in t:
            t[k] += int(s.get(k, 0))
failed = t["failures"] + t["errors"]
passed = t["tests"] - failed - t["skipped"]
print("total: %d passed, %d failed, %d skipped" % (passed, failed, t["skipped"]))
EOF
exit $status
