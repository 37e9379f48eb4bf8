"""Run the C unit tests (tests/unit/*.c) against a real registry."""
import os
import subprocess

import pytest

UNITS = ["test_path", "test_manifest", "test_chartmeta", "test_cache", "test_client"]


@pytest.mark.parametrize("name", UNITS)
def test_unit(name, build_dir, registry_factory):
    env = dict(os.environ)
    env["CHARTFS_TEST_DATA"] = os.path.join(os.path.dirname(__file__), "unit", "data")
    if name == "test_client":
        env["CHARTFS_TEST_REGISTRY"] = registry_factory().host
    r = subprocess.run([os.path.join(build_dir, "tests", "unit", name)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "not ok" not in r.stdout
