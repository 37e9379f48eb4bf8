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

# Mounts left behind by an interrupted run would make pytest's tmp cleanup
# (and the next run) trip over them.
unmount_leftovers() {
	local m
	for m in $(awk '$3 ~ /^fuse/ && $2 ~ /^\/tmp\/pytest-of-/ {print $2}' /proc/mounts); do
		fusermount3 -u -z "$m" 2>/dev/null || true
	done
}

scripts/deps.sh
scripts/helm.sh
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

run_pytest() { # label, build dir, pytest args...
	local label=$1 build=$2
	shift 2
	echo "== pytest: $label ($build)"
	unmount_leftovers
	CHARTFS_BUILD=$build $py -m pytest tests -v -p no:cacheprovider \
		--junitxml="$results/$label.xml" "$@" || status=1
}

run_pytest plain build "$@"
# The sanitized daemon is slower; slow tests (the long ones) run once.
run_pytest asan build-asan -m "not slow" "$@"
unmount_leftovers

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
