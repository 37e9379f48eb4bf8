"""Replay the fuzz seed corpus (tests/fuzz/corpus/<target>/) through each
target's replay binary (build_dir/tests/fuzz/replay_<target>): every seed and
every crash a fuzz run found once stays a regression test in the normal
suite, and under ASan/UBSan in the sanitized pass (a leak counts).

Longer runs with libFuzzer itself: tests/fuzz/run.sh.
"""
import os
import re
import subprocess

import pytest

from util import ROOT, sanitizer_env, sanitizer_reports

TARGETS = ["manifest", "chart", "headers", "chartmeta", "creds"]


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_corpus(target, build_dir, tmp_path):
    binary = os.path.join(build_dir, "tests", "fuzz", "replay_" + target)
    assert os.access(binary, os.X_OK), "%s was not built" % binary
    corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    seeds = [f for f in os.listdir(corpus) if not f.startswith(".")]
    assert seeds, "empty corpus %s" % corpus
    san = tmp_path / "sanitizers"
    san.mkdir()
    r = subprocess.run([binary, corpus], env=sanitizer_env(os.environ, str(san)),
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    out = "exit %d\n--- stderr (tail)\n%s" % (r.returncode, r.stderr[-8000:])
    reports = sanitizer_reports(str(san))
    assert not reports, "\n".join(reports) + "\n" + out
    assert r.returncode == 0, out
    # Every file ran: a replay that stopped early proves nothing.
    m = re.search(r"^replay: (\d+) inputs$", r.stderr, re.M)
    assert m and int(m.group(1)) == len(seeds), out
