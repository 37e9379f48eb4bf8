#!/usr/bin/env bash
# Line and branch coverage of the whole suite, as root on Debian 12:
#   scripts/coverage.sh [pytest args...]
# Builds build-cov/ with -Db_coverage=true, runs the C unit tests (meson
# test) and the pytest suite against it (plain, not sanitized), then writes
# an HTML report to build-cov/coverage/index.html and a table by folder to
# tests/COVERAGE.md (committed, so the numbers can be seen without a run).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/helm.sh
command -v gcovr >/dev/null || {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcovr >/dev/null
}
BUILD_DIR=build-cov scripts/build.sh
# The build was set up by build.sh; coverage is switched on for it here.
meson configure build-cov -Db_coverage=true -Dbuildtype=debug >/dev/null
ninja -C build-cov >/dev/null
find build-cov -name '*.gcda' -delete

meson test -C build-cov --suite unit >/dev/null || true
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
CHARTFS_BUILD=build-cov /usr/bin/python3 -m pytest tests -q -p no:cacheprovider \
	--basetemp="$base/t" "$@" || true

mkdir -p build-cov/coverage
filters=(--root . --filter 'common/' --filter 'client/' --filter 'cache/' --filter 'fs/'
	--filter 'model/')
gcovr "${filters[@]}" --html-details build-cov/coverage/index.html build-cov >/dev/null
gcovr "${filters[@]}" --json-summary build-cov/coverage/summary.json build-cov >/dev/null
/usr/bin/python3 - build-cov/coverage/summary.json >tests/COVERAGE.md <<'PY'
import collections, json, sys
s = json.load(open(sys.argv[1]))
by = collections.defaultdict(lambda: [0, 0, 0, 0])
for f in s["files"]:
    d = f["filename"].split("/")[0]
    t = by[d]
    t[0] += f["line_covered"]; t[1] += f["line_total"]
    t[2] += f["branch_covered"]; t[3] += f["branch_total"]
print("# Coverage of the test suite\n")
print("Made by `scripts/coverage.sh` (the C unit tests and the whole pytest suite,")
print("plain build with `-Db_coverage=true`, gcovr). Per-file detail:")
print("`build-cov/coverage/index.html` after a run.\n")
print("| folder | lines | line coverage | branches | branch coverage |")
print("|---|---:|---:|---:|---:|")
for d in sorted(by):
    lc, lt, bc, bt = by[d]
    print("| `%s/` | %d | %.1f %% | %d | %.1f %% |" % (d, lt, 100.0 * lc / max(lt, 1), bt,
                                                     100.0 * bc / max(bt, 1)))
PY
cat tests/COVERAGE.md
