#!/usr/bin/env bash
# The whole test suite: install, build, style check, pytest against the plain
# build, then again against the ASan/UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/helm.sh
scripts/build.sh
ASAN=1 scripts/build.sh

if command -v clang-format >/dev/null; then
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
	echo "style: clang-format clean"
fi

py=/usr/bin/python3
echo "== tests (build)"
CHARTFS_BUILD=build $py -m pytest tests -q -p no:cacheprovider "$@"
echo "== tests (build-asan: AddressSanitizer + UndefinedBehaviorSanitizer)"
CHARTFS_BUILD=build-asan $py -m pytest tests -q -p no:cacheprovider -m "not slow" "$@"
