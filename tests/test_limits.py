"""Limits a hostile or broken registry meets at the mount (issue 14, the OCI
client's part), each against the real registry through tests/proxy.py and a
real mount:
  - a blob body longer than its descriptor is EIO at once, and never more
    than the declared size reaches cache_dir/tmp;
  - a trickling server (above the 1 KiB/s low-speed limit) cannot hold a
    reader of a small chart past io_timeout plus its size at 64 KiB/s, and a
    larger chart on a slow (but not that slow) link still arrives;
  - a tag-list page cycle (A -> B -> A) ends the listing at once, with one
    log line, and a listing of slow pages ends by its deadline (slow);
  - a stalled registry costs a repository `ls` one io_timeout, not two;
  - a chart layer declaring 2^50 bytes is no chart (no 1 PB package);
  - a low soft descriptor limit is raised to the hard one at start, and a
    descriptor shortage inside the daemon is EIO, never EMFILE.
"""
import errno
import gzip
import io
import json
import os
import resource
import secrets
import subprocess
import tarfile
import threading
import time

import pytest

from proxy import RegistryProxy
from util import (HELM_CHART, HELM_CONFIG, Foreground, Registry, cache_state, expect_errno,
                  ls, read, sanitizer_env, sanitizer_reports, tmp_entries)

IO_TIMEOUT = 2
CHART_YAML = b"apiVersion: v2\nname: %s\nversion: 0.1.0\n"


def _chart(name, noise):
    """A chart package with `noise` random (incompressible) bytes in it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for path, data in (("Chart.yaml", CHART_YAML % name.encode()),
                           ("noise.bin", secrets.token_bytes(noise))):
            info = tarfile.TarInfo("%s/%s" % (name, path))
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), 6, mtime=0)


@pytest.fixture(scope="module")
def lim(tmp_path_factory):
    """A registry with:
      lim/small:0.1.0   a chart of ~64 KiB (32 s at 2 KiB/s)
      lim/slow:0.1.0    a chart of ~512 KiB
      lim/huge:0.1.0    small's blob under a chart layer declaring 2^50 bytes
      lim/cyc:1, :2     two tags (the proxy pages them in a cycle)
      lim/stall:0.1.0   small's chart again
    Yields (registry, {name: (layer descriptor, blob bytes)})."""
    reg = Registry(str(tmp_path_factory.mktemp("limits-registry")))
    blobs = {"small": _chart("small", 64 * 1024), "slow": _chart("slow", 512 * 1024)}
    layers = {}
    for name in ("small", "slow", "stall"):
        data = blobs.get(name, blobs["small"])
        config = json.dumps({"apiVersion": "v2", "name": name, "version": "0.1.0"}).encode()
        reg.push_artifact("lim/" + name, "0.1.0", [(data, HELM_CHART)], config=config,
                          config_type=HELM_CONFIG)
        layers[name] = (reg.chart_layer("lim/" + name, "0.1.0"), data)
    cfg = dict(reg.push_blob("lim/huge", b'{"name":"huge","version":"0.1.0"}'),
               mediaType=HELM_CONFIG)
    layer = dict(reg.push_blob("lim/huge", blobs["small"]), mediaType=HELM_CHART)
    reg.push_manifest("lim/huge", "0.1.0", {
        "schemaVersion": 2, "config": cfg, "layers": [dict(layer, size=1 << 50)]})
    for tag in ("1", "2"):
        reg.push_artifact("lim/cyc", tag)
    yield reg, layers
    reg.stop()


class Daemon(Foreground):
    """chartfs -f on a directory, its log in a file; `limit` is the
    (soft, hard) RLIMIT_NOFILE it starts with."""

    def __init__(self, binary, host, root, env, opts=(), limit=None):
        self.mnt = os.path.join(root, "mnt")
        self.cache_dir = os.path.join(root, "cache")
        self.log_path = os.path.join(root, "chartfs.log")
        self.san = os.path.join(root, "san")
        os.makedirs(self.mnt)
        os.makedirs(self.san)

        def preexec():
            if limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, limit)

        o = ",".join(["plain_http", "ttl=600", "cache_dir=" + self.cache_dir, *opts])
        super().__init__([binary, "-f", "-o", o, host, self.mnt], self.mnt, self.log_path,
                         sanitizer_env(env, self.san), preexec_fn=preexec)

    def stop(self):
        problem = super().stop()
        assert problem is None, problem
        assert sanitizer_reports(self.san) == []


@pytest.fixture
def daemon(chartfs_bin, tmp_path, env):
    started = []

    def start(host, **kw):
        d = Daemon(chartfs_bin, host, str(tmp_path / ("d%d" % len(started))), env, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


class TmpWatch:
    """The most bytes cache_dir/tmp held at once while it ran (polled)."""

    def __init__(self, cache):
        self.dir, self.peak, self.stop = os.path.join(cache, "tmp"), 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            total = 0
            try:
                for n in os.listdir(self.dir):
                    try:
                        total += os.path.getsize(os.path.join(self.dir, n))
                    except OSError:
                        pass
            except OSError:
                pass
            self.peak = max(self.peak, total)
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_body_past_declared_size_is_eio_and_never_written(lim, mount):
    reg, layers = lim
    layer, data = layers["small"]
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("io_timeout=%d" % IO_TIMEOUT,))
        assert ls(m.path("lim/small")) == ["0.1.0", "small-0.1.0.tgz"]
        # The declared bytes, then 64 MiB of zeros (chunked: no length).
        proxy.extend("/blobs/" + layer["digest"], extra=64 << 20, times=None)
        with TmpWatch(m.cache_dir) as watch:
            t = time.time()
            expect_errno(errno.EIO, os.listdir, m.path("lim/small/0.1.0"))
            took = time.time() - t
        assert took < IO_TIMEOUT + 2, took
        assert watch.peak <= layer["size"], (watch.peak, layer["size"])
        assert tmp_entries(m.cache_dir) == []
        assert cache_state(m.cache_dir, layer["digest"][7:]) == (False, False)
        # The registry behaves again: the chart is served, byte for byte.
        proxy.clear_faults()
        assert read(m.path("lim/small/small-0.1.0.tgz")) == data


def test_trickling_small_chart_is_eio_within_its_deadline(lim, mount):
    reg, layers = lim
    layer, _ = layers["small"]
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("io_timeout=%d" % IO_TIMEOUT,))
        assert "0.1.0" in ls(m.path("lim/small"))
        # 2 KiB/s: above the 1 KiB/s low-speed limit, 32 s for this chart;
        # its deadline is io_timeout + 64 KiB at 64 KiB/s = 3 s.
        proxy.trickle("/blobs/" + layer["digest"], rate=2048, times=None)
        with TmpWatch(m.cache_dir) as watch:
            t = time.time()
            expect_errno(errno.EIO, os.listdir, m.path("lim/small/0.1.0"))
            took = time.time() - t
        assert took < IO_TIMEOUT + 4, took
        assert watch.peak <= layer["size"]
        assert tmp_entries(m.cache_dir) == []


def test_larger_chart_on_a_slow_link_still_arrives(lim, mount):
    reg, layers = lim
    layer, data = layers["slow"]
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("io_timeout=%d" % IO_TIMEOUT,))
        assert "0.1.0" in ls(m.path("lim/slow"))
        # ~3.2 s at 160 KiB/s, longer than io_timeout; its deadline is
        # io_timeout + 512 KiB at 64 KiB/s = 10 s.
        proxy.trickle("/blobs/" + layer["digest"], rate=160 * 1024, times=None)
        t = time.time()
        assert read(m.path("lim/slow/slow-0.1.0.tgz")) == data
        assert time.time() - t > IO_TIMEOUT
        assert b"name: slow" in read(m.path("lim/slow/0.1.0/Chart.yaml"))


def test_tag_page_cycle_ends_the_listing(lim, daemon):
    reg, _ = lim
    with RegistryProxy(reg.host) as proxy:
        # Page A links to page B, and B back to A.
        proxy.reply(r"/v2/lim/cyc/tags/list\?n=1000$", {"name": "lim/cyc", "tags": ["1"]},
                    headers={"Link": '</v2/lim/cyc/tags/list?last=1&n=1000>; rel="next"'})
        proxy.reply(r"/v2/lim/cyc/tags/list\?last=1", {"name": "lim/cyc", "tags": ["2"]},
                    headers={"Link": '</v2/lim/cyc/tags/list?n=1000>; rel="next"'})
        d = daemon(proxy.host, opts=("io_timeout=%d" % IO_TIMEOUT,))
        t = time.time()
        r = subprocess.run(["ls", d.path("lim/cyc")], capture_output=True, text=True,
                           timeout=30)
        took = time.time() - t
        assert r.returncode == 0, r.stderr
        assert set(r.stdout.split()) >= {"1", "2"}, r.stdout
        assert took < 5, took
        assert proxy.count("/v2/lim/cyc/tags/list") <= 4, proxy.requests()
        lines = [l for l in d.log().splitlines() if "already read" in l]
        assert len(lines) == 1, d.log()


def test_stalled_registry_costs_one_io_timeout(lim, mount):
    reg, _ = lim
    io_timeout = 4
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("io_timeout=%d" % io_timeout,))
        assert "stall" in ls(m.path("lim"))
        # Silent before the headers, far longer than io_timeout: before
        # one deadline for the retries, `ls` waited twice io_timeout.
        proxy.stall("/v2/lim/stall/tags/list", 60, times=None)
        t = time.time()
        with pytest.raises(OSError) as e:
            os.listdir(m.path("lim/stall"))
        took = time.time() - t
        assert e.value.errno == errno.EIO
        assert took < io_timeout * 1.5, took
        assert proxy.count("/v2/lim/stall/tags/list") == 1, proxy.requests()


def test_absurd_layer_size_is_not_a_chart(lim, mount):
    reg, _ = lim
    m = mount(reg.host, ttl=600)
    repo = m.path("lim/huge")
    # A tag directory that is not a chart: no package, nothing inside.
    assert ls(repo) == ["0.1.0"]
    assert ls(os.path.join(repo, "0.1.0")) == []
    assert all(os.stat(os.path.join(repo, n)).st_size < (1 << 40) for n in ls(repo))
    r = subprocess.run(["ls", "-lR", repo], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and str(1 << 50) not in r.stdout, r.stdout


def _nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def test_low_descriptor_limit_is_raised(registry, daemon):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 256:
        pytest.skip("the hard descriptor limit is too low to test raising to it")
    d = daemon(registry.host, limit=(64, hard))
    assert _nofile(d.proc.pid) == (hard, hard)
    # Reads keep working, many at once.
    paths = [d.path(repo, tag, "Chart.yaml")
             for repo, tag in (("charts/test/helm-oci-test", "0.1.0"),
                               ("charts/test/helm-oci-test", "0.2.0"),
                               ("charts/rev/helm-oci-test", "0.1.0"),
                               ("charts/rev/helm-oci-test", "0.2.0"),
                               ("charts/test/web", "1.0.0"), ("other/web", "1.0.0"))]
    errors = []

    def reader(p):
        try:
            for _ in range(3):
                assert b"apiVersion" in read(p)
        except (OSError, AssertionError) as e:
            errors.append((p, e))

    threads = [threading.Thread(target=reader, args=(p,)) for p in paths * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert "EMFILE" not in d.log() and "Too many open files" not in d.log()


def test_descriptor_shortage_is_eio_never_emfile(registry_factory, daemon):
    # soft = hard = 40: nothing to raise. Each package held open holds one
    # of the daemon's descriptors, so opens past the limit find none left:
    # the caller gets EIO (the daemon's shortage, with a log line), never
    # EMFILE (which would blame the caller's own table).
    reg = registry_factory()
    n = 48
    for i in range(n):
        reg.push_artifact("fd/c%d" % i, "0.1.0", [(_chart("c%d" % i, 100), HELM_CHART)],
                          config=b'{"name":"c%d"}' % i, config_type=HELM_CONFIG)
    d = daemon(reg.host, limit=(40, 40))
    held, errs = [], []
    try:
        for i in range(n):
            try:
                held.append(open(d.path("fd/c%d" % i, "c%d-0.1.0.tgz" % i), "rb"))
            except OSError as e:
                errs.append(e.errno)
        assert errs, "the limit was never reached: the test proves nothing"
        assert set(errs) == {errno.EIO}, [errno.errorcode[e] for e in errs]
    finally:
        for f in held:
            f.close()
    assert "Too many open files" in d.log()
    # Descriptors back: the same paths are served.
    assert read(d.path("fd/c%d" % (n - 1), "c%d-0.1.0.tgz" % (n - 1)))[:2] == b"\x1f\x8b"


@pytest.mark.slow
def test_slow_pages_meet_the_listing_deadline(registry_factory, mount):
    # 40 pages of one tag, each answered after 1 s: every page is within
    # its own deadline, but the listing as a whole has io_timeout plus its
    # bytes and one page cap (1 MiB) at 64 KiB/s, about 18 s, not 40.
    reg = registry_factory()
    for i in range(40):
        reg.push_artifact("lim/many", "t%02d" % i)
    with RegistryProxy(reg.host, page=1) as proxy:
        m = mount(proxy.host, ttl=600, opts=("io_timeout=%d" % IO_TIMEOUT,))
        assert "many" in ls(m.path("lim"))
        proxy.stall("/v2/lim/many/tags/list", 1, times=None)
        t = time.time()
        expect_errno(errno.EIO, os.listdir, m.path("lim/many"))
        took = time.time() - t
        assert 15 < took < 25, took
        assert proxy.count("/v2/lim/many/tags/list") < 30, proxy.requests()
