#!/usr/bin/env bash
# A longer libFuzzer run of every target (or the ones named), from the repo:
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     # default 60 s each, all five
#
# It sets up build-fuzz/ with clang (the libraries instrumented too, so the
# fuzzer sees coverage inside the parsers, not just in the harness), then
# runs each fuzz_<target> for SECONDS over a scratch copy of its seed corpus
# (the repo's corpus is never written), printing the executions and any
# crash. Crash inputs land in build-fuzz/fuzz-out/<target>/; minimize one
# with `build-fuzz/tests/fuzz/fuzz_<target> -minimize_crash=1 FILE` and add
# it to tests/fuzz/corpus/<target>/ so the suite replays it from then on.
# Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest chart headers chartmeta creds)
dir=build-fuzz
# -fsanitize=fuzzer-no-link instruments every object for coverage;
# b_sanitize puts ASan/UBSan in the libraries as well as the harness.
if [ ! -f "$dir/build.ninja" ]; then
	rm -rf "$dir"
	CC=clang meson setup "$dir" -Dfuzz=true -Db_lundef=false \
		-Db_sanitize=address,undefined -Dbuildtype=debugoptimized \
		-Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all' >/dev/null
fi
ninja -C "$dir" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >"$dir/ninja.log" 2>&1 ||
	{ cat "$dir/ninja.log"; exit 1; }

status=0
for t in "${targets[@]}"; do
	out=$dir/fuzz-out/$t
	rm -rf "$out/corpus"
	mkdir -p "$out/corpus"
	cp tests/fuzz/corpus/"$t"/* "$out/corpus/"
	# detect_leaks stays on: a leak is a bug. 8 KiB covers every seed.
	if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=8192 -timeout=25 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/" \
		"$out/corpus" >"$out/log" 2>&1; then
		res=ok
	else
		res="CRASH (see $out/log)"
		status=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log")
	echo "fuzz_$t: ${execs:-?} executions in ${secs}s: $res"
	ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null || true
done
exit $status
