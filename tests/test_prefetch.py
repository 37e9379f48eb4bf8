"""-o prefetch=N (issue 5): listing a namespace warms its repositories'
charts in the background, so the walk that follows finds them cached; off by
default, and an unmount never waits for a stalled prefetch.

The proxy in front of the shared registry counts what chartfs asks.
"""
import os
import subprocess
import time

from proxy import RegistryProxy
from util import ls, read, run

NS = "charts/test"  # repositories helm-oci-test (0.1.0, 0.2.0) and web (1.0.0)


def blob_gets(proxy):
    return sorted(p for meth, p in proxy.requests() if meth == "GET" and "/blobs/" in p)


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_listing_a_namespace_warms_its_charts(registry, mount):
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("prefetch=8",))
        assert {"helm-oci-test", "web"} <= set(ls(m.path(NS)))
        # Three charts (config blobs are never fetched): all in the background.
        wait_for(lambda: len(blob_gets(proxy)) == 3)
        wait_for(lambda: all(os.path.isdir(os.path.join(m.cache_dir, "trees", "sha256", d))
                             for d in (registry.chart_layer(NS + "/" + r, t)["digest"][7:]
                                       for r, t in (("helm-oci-test", "0.1.0"),
                                                    ("helm-oci-test", "0.2.0"),
                                                    ("web", "1.0.0")))))
        before = len(proxy.requests())
        # The walk that follows asks the registry nothing more.
        r = run("grep", "-rl", "kind: Deployment", m.path(NS))
        assert r.returncode == 0 and "helm-oci-test/0.2.0/templates/" in r.stdout, r.stdout
        assert b"name: web" in read(m.path(NS, "web/1.0.0/Chart.yaml"))
        assert len(proxy.requests()) == before, proxy.requests()[before:]


def test_off_by_default(registry, mount):
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, ttl=600)
        assert "web" in ls(m.path(NS))
        time.sleep(1)
        assert blob_gets(proxy) == []
        assert not any("/tags/list" in p and "/web/" in p for _, p in proxy.requests())


def test_unmount_does_not_wait_for_a_stalled_prefetch(registry, mount):
    with RegistryProxy(registry.host) as proxy:
        proxy.stall("/blobs/", 60, times=None, method="GET")
        m = mount(proxy.host, ttl=600, opts=("prefetch=8", "io_timeout=30"))
        assert "web" in ls(m.path(NS))
        wait_for(lambda: len(blob_gets(proxy)) >= 1)
        t = time.time()
        r = subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 0, r.stderr
        m.mounted = False
        wait_for(lambda: not m.alive(), timeout=20)
        assert time.time() - t < 10
        # Nothing half-made was left in the cache.
        assert os.listdir(os.path.join(m.cache_dir, "trees", "sha256")) == []
