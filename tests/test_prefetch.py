"""-o prefetch=N (issue 5): listing a namespace warms its repositories'
charts in the background, so the walk that follows finds them cached; off by
default, and an unmount never waits for a stalled prefetch.

Read-ahead (issue 19, on by default): a walk of a namespace's repositories
(grep -r, find) is followed, and what it asks for next is fetched within the
budget of model.h's MODEL_READAHEAD_*; a listing alone fetches no chart.

The proxy in front of the shared registry counts what chartfs asks.
"""
import io
import os
import subprocess
import tarfile
import time

import pytest

from proxy import RegistryProxy
from util import HELM_CHART, HELM_CONFIG, ls, read, run

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


# ---- read-ahead of a walk (issue 19; model.h MODEL_READAHEAD_*) ---------------

WALK = "walk/ns"
N_REPOS = 12   # more than the chart window (MODEL_READAHEAD_CHART_REPOS, 8)
CHART_REPOS = 8
BIG = "r03"    # its chart is over MODEL_READAHEAD_CHART_MAX (1 MiB)


def walk_chart(name, pad=0):
    """A small valid chart's .tgz (pad: random bytes in a file, so that the
    package is that much larger)."""
    files = [("Chart.yaml", b"apiVersion: v2\nname: %s\nversion: 1.0.0\n" % name.encode()),
             ("values.yaml", b"walkid: %s\n" % name.encode())]
    if pad:
        files.append(("files/pad.bin", os.urandom(pad)))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, data in files:
            info = tarfile.TarInfo("%s/%s" % (name, path))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def walk_registry(registry_factory):
    """WALK/r00 .. r11, one chart (1.0.0) each, pushed as helm does."""
    reg = registry_factory()
    for i in range(N_REPOS):
        name = "r%02d" % i
        repo = "%s/%s" % (WALK, name)
        cfg = reg.push_blob(repo, b'{"name":"%s","version":"1.0.0"}' % name.encode())
        layer = reg.push_blob(repo, walk_chart(name, 1100 * 1024 if name == BIG else 0))
        reg.push_manifest(repo, "1.0.0", {
            "schemaVersion": 2,
            "config": dict(cfg, mediaType=HELM_CONFIG),
            "layers": [dict(layer, mediaType=HELM_CHART)]})
    return reg


def repos_of(proxy, what, method="GET"):
    """The repositories of WALK that requests of kind what (/tags/list,
    /manifests/, /blobs/) asked for, one entry per request."""
    out = []
    for meth, path in proxy.requests():
        if meth == method and path.startswith("/v2/%s/" % WALK) and what in path:
            out.append(path[len("/v2/%s/" % WALK):].split("/", 1)[0])
    return sorted(out)


def names(*idx):
    return sorted("r%02d" % i for i in idx)


def test_a_walk_reads_ahead_within_its_budget(walk_registry, mount):
    with RegistryProxy(walk_registry.host) as proxy:
        m = mount(proxy.host, ttl=600)
        assert ls(m.path(WALK)) == names(*range(N_REPOS))
        # A repository entered: the next ones' tags and manifests, no chart.
        assert ls(m.path(WALK, "r00")) == ["1.0.0", "r00-1.0.0.tgz"]
        wait_for(lambda: repos_of(proxy, "/manifests/") == names(*range(N_REPOS)))
        assert repos_of(proxy, "/tags/list") == names(*range(N_REPOS))
        time.sleep(0.5)
        assert repos_of(proxy, "/blobs/") == []
        # The next one entered: a walk. The charts of this repository and
        # the next ones, CHART_REPOS in all, but none over 1 MiB.
        assert ls(m.path(WALK, "r01")) == ["1.0.0", "r01-1.0.0.tgz"]
        want = sorted(set(names(*range(1, 1 + CHART_REPOS))) - {BIG})
        wait_for(lambda: repos_of(proxy, "/blobs/") == want)
        time.sleep(1)
        assert repos_of(proxy, "/blobs/") == want, "read ahead past its budget"
        # The walk goes on and finds every chart; nothing was asked twice.
        r = run("grep", "-rl", "--exclude=*.tgz", "walkid", m.path(WALK))
        assert r.returncode == 0, r.stderr
        assert len(r.stdout.splitlines()) == N_REPOS, r.stdout
        assert repos_of(proxy, "/blobs/") == names(*range(N_REPOS))
        assert repos_of(proxy, "/manifests/") == names(*range(N_REPOS))
        assert repos_of(proxy, "/tags/list") == names(*range(N_REPOS))


def test_listing_a_namespace_fetches_no_chart(walk_registry, mount):
    with RegistryProxy(walk_registry.host) as proxy:
        m = mount(proxy.host, ttl=600)
        for path in (m.mnt, m.path("walk"), m.path(WALK)):
            r = run("ls", "-l", path)
            assert r.returncode == 0, r.stderr
        for name in names(*range(N_REPOS)):
            os.stat(m.path(WALK, name))
        time.sleep(1)
        assert repos_of(proxy, "/blobs/") == []
        assert repos_of(proxy, "/tags/list") == []


def test_readahead_0_turns_it_off(walk_registry, mount):
    with RegistryProxy(walk_registry.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("readahead=0",))
        ls(m.path(WALK))
        ls(m.path(WALK, "r00"))
        ls(m.path(WALK, "r01"))
        time.sleep(1)
        assert repos_of(proxy, "/tags/list") == names(0, 1)
        assert repos_of(proxy, "/blobs/") == []
