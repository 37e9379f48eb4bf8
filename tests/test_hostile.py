"""Hostile charts at the mount (issue 6): archives that break helm's rules,
pushed straight through the registry API (helm would refuse to make them).
Each is refused as a whole (EIO, every time), nothing escapes the cache
directory or is kept half-unpacked, and the rest of the mount keeps working.
"""
import errno
import gzip
import io
import json
import os
import secrets
import tarfile
import zipfile

import pytest

from util import (HELM_CHART, HELM_CONFIG, Registry, cache_state, expect_errno, file_sha256,
                  ls, read, run, sha256, tmp_entries)

# Unique per run: any file of this name outside the mount is an escape.
TOKEN = "chartfs-evil-" + secrets.token_hex(4)


# --- hostile charts, pushed straight through the registry API ----------------

CHART_YAML = b"apiVersion: v2\nname: evil\nversion: 0.1.0\n"
CM = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: evil\n"


def _entry(name, data=b"", type=tarfile.REGTYPE, linkname="", size=None):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = type, linkname, 0o644
    info.size = len(data) if size is None else size
    return info, data


def _tgz(entries, good=True, top="evil"):
    """tar+gzip bytes: a valid chart under `top`/ (when good) plus entries
    [(TarInfo, data or a file object)]."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        if good:
            for name, data in (("Chart.yaml", CHART_YAML), ("values.yaml", b"a: 1\n"),
                               ("templates/cm.yaml", CM)):
                t.addfile(_entry("%s/%s" % (top, name), data)[0], io.BytesIO(data))
        for info, data in entries:
            if info.isreg():
                t.addfile(info, data if hasattr(data, "read") else io.BytesIO(data))
            else:
                t.addfile(info)
    return gzip.compress(raw.getvalue(), 9, mtime=0)


class Zeros(io.RawIOBase):
    """n zero bytes, read in pieces (for bombs without 100 MiB in memory)."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def _bomb():
    # 21 files of 5 MiB (each under the per-file limit): 105 MiB of zeros,
    # over the 100 MiB per chart, in a blob of ~100 KiB.
    five = 5 * 1024 * 1024
    return _tgz([(_entry("evil/zeros%02d" % i, size=five)[0], Zeros(five)) for i in range(21)])


def _zip():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("evil/Chart.yaml", CHART_YAML)
        z.writestr("evil/templates/cm.yaml", CM)
    return out.getvalue()


def _truncated():
    data = _tgz([_entry("evil/filler.txt", secrets.token_bytes(8192))])
    return data[:len(data) // 2]


HOSTILE = {
    "dotdot": lambda: _tgz([_entry("../" + TOKEN, b"escaped\n")]),
    "dotdot-nested": lambda: _tgz([_entry("evil/../../" + TOKEN, b"escaped\n")]),
    "absolute": lambda: _tgz([_entry("/tmp/" + TOKEN, b"escaped\n")]),
    "symlink-etc": lambda: _tgz([_entry("evil/etc", type=tarfile.SYMTYPE, linkname="/etc"),
                                 _entry("evil/etc/" + TOKEN, b"escaped\n")]),
    "symlink-parent": lambda: _tgz([_entry("evil/up", type=tarfile.SYMTYPE, linkname=".."),
                                    _entry("evil/up/up/" + TOKEN, b"escaped\n")]),
    "hardlink": lambda: _tgz([_entry("evil/shadow", type=tarfile.LNKTYPE,
                                     linkname="../../etc/shadow")]),
    "fifo": lambda: _tgz([_entry("evil/fifo", type=tarfile.FIFOTYPE)]),
    "root-chart-yaml": lambda: _tgz([_entry("Chart.yaml", CHART_YAML),
                                     _entry("templates/cm.yaml", CM)], good=False),
    "big-file": lambda: _tgz([_entry("evil/big.bin", bytes(6 * 1024 * 1024))]),
    "bomb": _bomb,
    "zip": _zip,
    "truncated-gzip": _truncated,
}


@pytest.fixture(scope="module")
def hostile_registry(tmp_path_factory, helm4, packages):
    """A registry with hostile/<case>:0.1.0 for every HOSTILE case (helm's
    media types, a small config), hostile/control:0.1.0 made by the same
    builder without a hostile entry, and good/helm-oci-test:0.2.0 by helm.
    Yields (registry, {case: pushed layer bytes})."""
    reg = Registry(str(tmp_path_factory.mktemp("hostile-registry")))
    blobs = {case: make() for case, make in HOSTILE.items()}
    blobs["control"] = _tgz([])
    config = json.dumps({"apiVersion": "v2", "name": "evil", "version": "0.1.0"}).encode()
    for case, data in blobs.items():
        reg.push_artifact("hostile/" + case, "0.1.0", [(data, HELM_CHART)], config=config,
                          config_type=HELM_CONFIG)
    helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "good")
    # A good chart under a descriptor that lies about its size (the registry
    # takes the manifest as it is).
    cfg = dict(reg.push_blob("hostile/size", config), mediaType=HELM_CONFIG)
    layer = dict(reg.push_blob("hostile/size", blobs["control"]), mediaType=HELM_CHART)
    for tag, delta in (("longer", 1), ("shorter", -1)):
        reg.push_manifest("hostile/size", tag, {
            "schemaVersion": 2, "config": cfg, "layers": [dict(layer, size=layer["size"] + delta)]})
    yield reg, blobs
    reg.stop()


def _escapes(tmp_path):
    """Files named TOKEN anywhere an unpack could have escaped to: the test's
    own directories (cache included; mount points skipped), /tmp, /etc."""
    found = []
    for root, dirs, files in os.walk(str(tmp_path)):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(root, d))]
        found += [os.path.join(root, n) for n in files + dirs if n.startswith(TOKEN)]
    found += [p for p in ("/tmp/" + TOKEN, "/etc/" + TOKEN) if os.path.lexists(p)]
    return found


def test_hostile_control_chart_reads(hostile_registry, mount):
    # The builder makes charts chartfs serves: the refusals below are the
    # hostile entry's doing.
    reg, blobs = hostile_registry
    m = mount(reg.host)
    tag = m.path("hostile/control/0.1.0")
    assert ls(tag) == ["Chart.yaml", "templates", "values.yaml"]
    assert read(os.path.join(tag, "Chart.yaml")) == CHART_YAML


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_chart_is_refused(hostile_registry, mount, tmp_path, case):
    reg, blobs = hostile_registry
    data = blobs[case]
    digest = sha256(data)
    m = mount(reg.host)
    repo = m.path("hostile", case)
    tag = os.path.join(repo, "0.1.0")
    # Refused as a whole, every time it is asked for (never half-served).
    for _ in range(2):
        expect_errno(errno.EIO, os.listdir, tag)
        expect_errno(errno.EIO, read, os.path.join(tag, "Chart.yaml"))
    r = run("cat", os.path.join(tag, "Chart.yaml"))
    assert r.returncode == 1 and "Input/output error" in r.stderr, r.stderr
    # The rest of the mount works.
    assert ls(repo) == ["0.1.0", "%s-0.1.0.tgz" % case]
    assert "hostile" in ls(m.mnt) and "good" in ls(m.mnt)
    assert b"name: helm-oci-test" in read(m.path("good/helm-oci-test/0.2.0/Chart.yaml"))
    # The package is just the blob, byte for byte.
    assert read(os.path.join(repo, "%s-0.1.0.tgz" % case)) == data
    # Nothing unpacked, kept half, or written outside the cache.
    blob, tree = cache_state(m.cache_dir, digest[7:])
    assert blob and not tree
    assert file_sha256(os.path.join(m.cache_dir, "blobs", "sha256", digest[7:])) == digest
    assert tmp_entries(m.cache_dir) == []
    assert _escapes(tmp_path) == []
    assert m.alive()


@pytest.mark.parametrize("tag", ["longer", "shorter"])
def test_descriptor_size_that_lies_is_eio(hostile_registry, mount, tag):
    reg, blobs = hostile_registry
    digest = sha256(blobs["control"])
    m = mount(reg.host)
    expect_errno(errno.EIO, os.listdir, m.path("hostile/size", tag))
    expect_errno(errno.EIO, read, m.path("hostile/size", tag, "Chart.yaml"))
    expect_errno(errno.EIO, read, m.path("hostile/size", "size-%s.tgz" % tag))
    assert cache_state(m.cache_dir, digest[7:]) == (False, False)
    assert tmp_entries(m.cache_dir) == []
    assert ls(m.path("hostile/control/0.1.0")) == ["Chart.yaml", "templates", "values.yaml"]
