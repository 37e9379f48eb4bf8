#!/usr/bin/env bash
# Build chartfs with warnings as errors.
#   scripts/build.sh               -> build/
#   ASAN=1 scripts/build.sh        -> build-asan/ (AddressSanitizer + UBSan)
#   BUILD_DIR=dir scripts/build.sh -> that directory instead
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
opts=(--werror)
if [ "${ASAN:-0}" = 1 ]; then
	dir=build-asan
	# b_lundef=false: clang/gcc sanitizers leave symbols for their runtime.
	opts+=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug)
fi
dir=${BUILD_DIR:-$dir}

# A directory without build.ninja is a failed or foreign setup: redo it.
if [ ! -f "$dir/build.ninja" ]; then
	rm -rf "$dir"
	meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >"$dir/ninja.log" 2>&1 || { cat "$dir/ninja.log"; exit 1; }
echo "build: $dir ok"
