"""Run the C unit tests (build_dir/tests/unit/test_*) against a real registry.

Each binary prints TAP ("ok N - ...", "not ok N - ...") and exits non-zero
on failure; it gets a fresh registry in CHARTFS_TEST_REGISTRY and the data
directory in CHARTFS_TEST_DATA.
"""
import glob
import os
import subprocess

import pytest

from conftest import BUILD
from util import ROOT, sanitizer_env, sanitizer_reports

# The core set the project promises; any other test_* binary the build makes
# is run too.
EXPECTED = ["test_cache", "test_client", "test_creds", "test_http", "test_manifest", "test_path"]


def unit_binaries():
    d = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "tests", "unit")
    found = {os.path.basename(p) for p in glob.glob(os.path.join(d, "test_*"))
             if os.path.isfile(p) and os.access(p, os.X_OK)}
    return sorted(found | set(EXPECTED))


@pytest.mark.parametrize("name", unit_binaries())
def test_unit(name, build_dir, registry_factory, env, tmp_path):
    binary = os.path.join(build_dir, "tests", "unit", name)
    assert os.access(binary, os.X_OK), "%s was not built" % binary
    san = tmp_path / "sanitizers"
    san.mkdir()
    run_env = sanitizer_env(env, str(san))
    run_env["CHARTFS_TEST_REGISTRY"] = registry_factory().host
    run_env["CHARTFS_TEST_DATA"] = os.path.join(ROOT, "tests", "unit", "data")
    r = subprocess.run([binary], env=run_env, cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=300)
    out = "exit %d\n--- stdout\n%s\n--- stderr\n%s" % (r.returncode, r.stdout[-8000:],
                                                       r.stderr[-8000:])
    assert r.returncode == 0, out
    assert "not ok" not in r.stdout, out
    assert "ok " in r.stdout, "no TAP output\n" + out
    reports = sanitizer_reports(str(san))
    assert not reports, "\n".join(reports)
