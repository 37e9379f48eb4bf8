"""A full cache filesystem at the mount (issue 6): ENOSPC on the cache
directory is EIO for reads, ENOSPC for writes, with a log line; never a crash.

The cache directory is on a 1 MiB tmpfs mounted by the test and filled by a
filler file after chartfs is up. chartfs runs in the foreground (-f) so its
log lines can be read. Asserted here, as a user sees it:
  - a cold chart (tag directory, a file in it, the .tgz) is EIO, the daemon
    lives, nothing half-written is left, and a log line names the cache and
    the reason;
  - once the filler is deleted the same paths are served, right, without a
    remount;
  - cp of a package into the mount fails with ENOSPC, pushes no tag, and a
    log line names the cache and the reason;
  - charts already in the cache are still served.
"""
import errno
import os
import subprocess
import time

import pytest

from util import Foreground, cache_state, member, read, sanitizer_env, sanitizer_reports, tmp_entries

REPO = "charts/test/helm-oci-test"  # in the shared `registry` fixture
PAGE = 4096
ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"


class Daemon(Foreground):
    """chartfs -f on mnt, logging to a file; the cache on a small tmpfs."""

    def __init__(self, binary, host, root, env):
        self.mnt = os.path.join(root, "mnt")
        self.cache_dir = os.path.join(root, "fs", "cache")
        self.filler = os.path.join(root, "fs", "filler")
        self.log_path = os.path.join(root, "chartfs.log")
        os.makedirs(self.mnt)
        super().__init__([binary, "-f", "-o", "plain_http,ttl=600,cache_dir=" + self.cache_dir,
                          host, self.mnt], self.mnt, self.log_path, env)

    def fill(self, room=0):
        """Fill the cache's filesystem, then free `room` bytes of it."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            block = b"\0" * (1 << 16)
            while True:
                os.write(fd, block)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)
        if room:
            os.truncate(self.filler, os.path.getsize(self.filler) - room)
        st = os.statvfs(self.cache_dir)
        assert st.f_bavail * st.f_frsize == room

    def free(self):
        os.unlink(self.filler)



@pytest.fixture
def small_cache(chartfs_bin, env, tmp_path):
    """start(host) -> a Daemon whose cache dir is on a 1 MiB tmpfs. After
    the test: unmount chartfs, then the tmpfs; fail on a dead daemon or a
    sanitizer report."""
    san = str(tmp_path / "sanitizers")
    os.makedirs(san)
    daemons, tmpfs = [], []

    def start(host):
        root = str(tmp_path / ("d%d" % len(daemons)))
        os.makedirs(os.path.join(root, "fs"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "chartfs-enospc",
                        os.path.join(root, "fs")], check=True)
        tmpfs.append(os.path.join(root, "fs"))
        daemons.append(Daemon(chartfs_bin, host, root, sanitizer_env(env, san)))
        return daemons[-1]

    yield start
    problems = [p for p in (d.stop() for d in daemons) if p]
    for fs in tmpfs:
        if subprocess.run(["umount", fs], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", fs], capture_output=True)
    problems += sanitizer_reports(san)
    assert not problems, "\n".join(problems)


def _layer(registry, tag="0.2.0"):
    layer = registry.chart_layer(REPO, tag)
    return layer["digest"][7:], registry.blob(REPO, layer["digest"])


def _cold(registry, small_cache, room=0):
    """A mount that has listed REPO (names known), its cache then filled."""
    d = small_cache(registry.host)
    assert "0.2.0" in os.listdir(d.path(REPO))
    d.fill(room)
    return d


def _errno(op, *args):
    try:
        op(*args)
    except OSError as e:
        return e.errno
    return 0


def _cp(src, dst):
    return subprocess.run(["cp", src, dst], capture_output=True, text=True, timeout=60)


def _no_tmp_left(cache_dir):
    """tmp/ empty (a FUSE release may land just after close returns)."""
    deadline = time.time() + 5
    while tmp_entries(cache_dir) and time.time() < deadline:
        time.sleep(0.05)
    return tmp_entries(cache_dir) == []


# The cache's filesystem holds nothing more, or the blob but not its tree.
ROOMS = [0, PAGE]
ROOM_IDS = ["nothing-left", "room-for-the-blob"]


def _cold_ops(d):
    """errno of listing the tag, reading a file in it, reading the package."""
    tag = d.path(REPO, "0.2.0")
    return (_errno(os.listdir, tag), _errno(read, os.path.join(tag, "Chart.yaml")),
            _errno(read, d.path(REPO, "helm-oci-test-0.2.0.tgz")))


@pytest.mark.parametrize("room", ROOMS, ids=ROOM_IDS)
def test_cold_chart_fails_and_nothing_half_written_remains(registry, small_cache, room):
    hexd, data = _layer(registry)
    assert len(data) <= PAGE
    d = _cold(registry, small_cache, room)
    listing, chart_yaml, package = _cold_ops(d)
    assert listing != 0 and chart_yaml != 0
    if room:  # the blob was written whole and verified: the package is served
        assert package == 0 and read(d.path(REPO, "helm-oci-test-0.2.0.tgz")) == data
    else:
        assert package != 0
    assert d.alive()
    # No tree; a blob only when it was written whole and verified.
    assert cache_state(d.cache_dir, hexd) == (bool(room), False)
    assert _no_tmp_left(d.cache_dir), tmp_entries(d.cache_dir)


@pytest.mark.parametrize("room", ROOMS, ids=ROOM_IDS)
def test_cold_chart_is_eio(registry, small_cache, room):
    d = _cold(registry, small_cache, room)
    want = (errno.EIO, errno.EIO, 0 if room else errno.EIO)
    got = _cold_ops(d)
    assert got == want, [errno.errorcode.get(e, e) for e in got]


@pytest.mark.parametrize("room", ROOMS, ids=ROOM_IDS)
def test_cold_chart_failure_is_logged(registry, small_cache, room):
    d = _cold(registry, small_cache, room)
    assert _cold_ops(d)[0] != 0
    lines = [l for l in d.log().splitlines() if ENOSPC_TEXT in l]
    assert any("cache" in l for l in lines), d.log()


@pytest.mark.parametrize("room", ROOMS, ids=ROOM_IDS)
def test_freeing_space_serves_the_chart_without_remount(registry, small_cache, room):
    hexd, data = _layer(registry)
    d = _cold(registry, small_cache, room)
    assert _cold_ops(d)[:2] != (0, 0)
    d.free()
    tag = d.path(REPO, "0.2.0")
    assert "Chart.yaml" in os.listdir(tag)
    assert read(os.path.join(tag, "Chart.yaml")) == member(data, "helm-oci-test/Chart.yaml")
    assert read(d.path(REPO, "helm-oci-test-0.2.0.tgz")) == data
    assert cache_state(d.cache_dir, hexd) == (True, True)
    assert d.alive()


def test_cached_charts_are_served_while_full(registry, small_cache):
    _, data = _layer(registry, "0.1.0")
    d = small_cache(registry.host)
    tag = d.path(REPO, "0.1.0")
    files = os.listdir(tag)
    assert read(os.path.join(tag, "Chart.yaml")) == member(data, "helm-oci-test/Chart.yaml")
    assert read(d.path(REPO, "helm-oci-test-0.1.0.tgz")) == data
    d.fill()
    assert os.listdir(tag) == files
    assert read(os.path.join(tag, "Chart.yaml")) == member(data, "helm-oci-test/Chart.yaml")
    assert read(d.path(REPO, "helm-oci-test-0.1.0.tgz")) == data
    assert "0.1.0" in os.listdir(d.path(REPO))
    assert d.alive()


def _full_publish(registry_factory, small_cache, packages):
    """cp of a package into a mount whose cache is full: (registry, daemon, cp result)."""
    reg = registry_factory()
    d = small_cache(reg.host)
    os.mkdir(d.path("charts"))
    d.fill()
    return reg, d, _cp(packages["helm-oci-test-0.1.0"], d.path("charts/"))


def test_cp_is_enospc_and_pushes_nothing(registry_factory, small_cache, packages):
    reg, d, r = _full_publish(registry_factory, small_cache, packages)
    assert r.returncode != 0
    assert "error writing" in r.stderr and ENOSPC_TEXT in r.stderr, r.stderr
    assert reg.tags("charts/helm-oci-test") == []
    assert d.alive()
    assert _no_tmp_left(d.cache_dir), tmp_entries(d.cache_dir)
    # Space back: the same cp publishes, without a remount.
    d.free()
    r = _cp(packages["helm-oci-test-0.1.0"], d.path("charts/"))
    assert r.returncode == 0, r.stderr
    assert reg.tags("charts/helm-oci-test") == ["0.1.0"]


def test_cp_failure_is_logged(registry_factory, small_cache, packages):
    _, d, r = _full_publish(registry_factory, small_cache, packages)
    assert r.returncode != 0
    lines = [l for l in d.log().splitlines() if ENOSPC_TEXT in l]
    assert any("cache" in l for l in lines), d.log()
    assert "not a chart package" not in d.log()
