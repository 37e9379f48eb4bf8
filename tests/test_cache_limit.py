"""-o cache_max keeps the cache bounded; several daemons share one cache."""
import os
import subprocess
import threading

import pytest

from util import copy_chart


def du(path):
    """Bytes the cache's blobs and trees take (what cache_max bounds)."""
    total = 0
    for sub in ("blobs", "trees"):
        for d, _, files in os.walk(os.path.join(path, sub)):
            for f in files:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
    return total


@pytest.fixture(scope="module")
def many(tmp_path_factory, helm4, chart_dirs):
    """12 versions of the example chart, pushed into one registry."""
    from util import Registry
    work = tmp_path_factory.mktemp("many")
    reg = Registry(str(work / "registry"))
    for i in range(12):
        src = copy_chart(chart_dirs["helm-oci-test-0.2.0"], str(work / ("src%d" % i)),
                         version="1.%d.0" % i)
        helm4.push(helm4.package(src, str(work / "pk")), reg.host, "charts")
    yield reg
    reg.stop()


def test_bounded_cache_while_grepping_everything(many, mount, tmp_path):
    cache = str(tmp_path / "cache")
    m = mount(many.host, opts=("plain_http", "cache_max=100K"), cache_dir=cache)
    repo = m.path("charts/helm-oci-test")
    for _ in range(2):  # the second pass refetches what was evicted
        r = subprocess.run(["grep", "-rl", "--exclude=*.tgz", "kind: Deployment", repo],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        assert len(r.stdout.split()) == 12
        # Bounded: at most the bound plus the chart being read.
        assert du(cache) <= 100 * 1024 + 64 * 1024, du(cache)
    assert int(os.getxattr(m.mnt, "user.chartfs.cache_misses")) > 12


def test_two_daemons_share_one_cache(many, mount, tmp_path):
    cache = str(tmp_path / "cache")
    a = mount(many.host, cache_dir=cache, name="a")
    b = mount(many.host, cache_dir=cache, name="b")
    results = {}

    def grep(m):
        r = subprocess.run(["grep", "-r", "--exclude=*.tgz", "image:", m.path("charts")],
                           capture_output=True, text=True)
        results[m.mnt] = (r.returncode, sorted(l.split(":", 1)[1] for l in r.stdout.splitlines()))

    threads = [threading.Thread(target=grep, args=(m,)) for m in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[a.mnt] == results[b.mnt]
    assert results[a.mnt][0] == 0 and len(results[a.mnt][1]) >= 12
    # Nothing half-made: every blob is complete (its name is its sha256).
    import hashlib
    blobs = os.path.join(cache, "blobs", "sha256")
    for name in os.listdir(blobs):
        with open(os.path.join(blobs, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name
