#!/usr/bin/env bash
# The chartfs benchmark (not a test): installs, fetches helm, builds, then
# runs tests/bench/bench.py, which starts its own registry, pushes 50 charts
# with helm (generated once into .tools/bench-corpus) and 1000 small ones by
# API (for the RSS row), and prints a Markdown table.
#   tests/bench/bench.sh [--runs N] [--cold-runs N] [--only ROW] [--far]
# --far: the rows with the registry 25 ms away each way (tests/bench/delayproxy.py).
# BUILD_DIR=dir benchmarks another build directory (see scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh >/dev/null
scripts/helm.sh
scripts/build.sh >/dev/null
exec /usr/bin/python3 tests/bench/bench.py --build "${BUILD_DIR:-build}" "$@"
