"""Every registry under one mount (issue 7): `chartfs MOUNTPOINT` with no
REGISTRY makes the first directory level the registry host.

Two real registries on loopback, spoken to over HTTP because they are named
in -o plain_http_hosts (no -o plain_http). A user sees the hosts of their
credentials config plus those visited, reads and greps charts of both, pushes
with cp and deletes with rm into one of them, and gets ENOENT, fast, for a
name that is no registry host.
"""
import errno
import json
import os
import shutil
import subprocess
import time

import pytest

from util import Mounts, expect_errno, isolated_env, ls, read, run

REPO = "charts/test/helm-oci-test"


@pytest.fixture
def mount(chartfs_bin, tmp_path):
    """The usual mount fixture, but with credentials config of its own: the
    root lists the hosts of that config, and other tests log in to
    registries in the shared one."""
    mounts = Mounts(chartfs_bin, str(tmp_path / "mounts"), isolated_env(str(tmp_path / "home")))
    yield mounts.mount
    problems = mounts.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def two(registry, registry_factory, helm4, packages, mount, tmp_path):
    """(mount, host a, host b, registry b): a is the shared registry, b a
    fresh one holding web 1.0.0 under team/; the config names a and Docker
    Hub."""
    b = registry_factory()
    helm4.push(packages["web-1.0.0"], b.host, "team")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
        "http://%s" % registry.host: {}}}))
    m = mount(None, plain_http=False, ttl=600,
              opts=("plain_http_hosts=%s,%s" % (registry.host, b.host),
                    "registry_config=%s" % config))
    return m, registry.host, b.host, b


def test_root_lists_config_hosts_then_visited(two):
    m, a, b, _ = two
    assert ls(m.mnt) == sorted([a, "registry-1.docker.io"])
    # Looking a host up makes it visited: listed from then on.
    assert ls(m.path(b)) == ["team"]
    assert ls(m.mnt) == sorted([a, b, "registry-1.docker.io"])
    assert os.stat(m.path(b)).st_mode & 0o040000


def test_read_both_registries(two, registry, packages):
    m, a, b, reg_b = two
    assert "helm-oci-test" in ls(m.path(a, "charts/test"))
    assert b"version: 0.2.0" in read(m.path(a, REPO, "0.2.0", "Chart.yaml"))
    assert ls(m.path(b, "team/web")) == ["1.0.0", "web-1.0.0.tgz"]
    assert read(m.path(b, "team/web/web-1.0.0.tgz")) == read(packages["web-1.0.0"])
    # The same chart on two registries is the same tree.
    r = run("diff", "-r", m.path(a, "charts/test/web/1.0.0"), m.path(b, "team/web/1.0.0"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("grep", "-rl", "kind: Deployment", m.path(b))
    assert r.returncode == 0 and "team/web/1.0.0/templates/" in r.stdout, r.stdout + r.stderr
    # Each host's directory tells its registry; the root has none of its own.
    assert os.getxattr(m.path(b), "user.chartfs.registry") == ("http://" + b).encode()
    assert "user.chartfs.registry" not in os.listxattr(m.mnt)
    assert int(os.getxattr(m.mnt, "user.chartfs.requests")) > 0
    assert os.getxattr(m.mnt, "user.chartfs.cache_dir") == m.cache_dir.encode()


def test_publish_and_delete_through_a_host(two, helm4, packages, tmp_path):
    m, a, b, reg_b = two
    r = run("cp", packages["helm-oci-test-0.1.0"], m.path(b, "team/"))
    assert r.returncode == 0, r.stderr
    assert "0.1.0" in reg_b.tags("team/helm-oci-test")
    assert "helm-oci-test-0.1.0.tgz" in ls(m.path(b, "team/helm-oci-test"))
    out = str(tmp_path / "pulled")
    pulled = helm4.pull(b, "team/helm-oci-test", "0.1.0", out)
    assert read(pulled) == read(packages["helm-oci-test-0.1.0"])
    os.unlink(m.path(b, "team/helm-oci-test/helm-oci-test-0.1.0.tgz"))
    assert "0.1.0" not in reg_b.tags("team/helm-oci-test")
    # A host is no directory to make or to publish into.
    expect_errno(errno.EPERM, os.mkdir, m.path("new.example"))
    with pytest.raises(OSError) as e:
        shutil.copy(packages["web-1.0.0"], m.mnt)
    assert e.value.errno == errno.EPERM


def test_names_that_are_no_registry(two):
    m, a, b, _ = two
    t = time.time()
    # Not shaped like a host: no network at all.
    for name in (".git", "charts", "autorun.inf.", "UPPER.example", "-x.io"):
        expect_errno(errno.ENOENT, os.stat, m.path(name))
    # Shaped like one, but nothing answers there (a closed port; a host
    # that speaks HTTPS only is no registry at an http port either).
    expect_errno(errno.ENOENT, os.listdir, m.path("127.0.0.1:1"))
    assert time.time() - t < 10
    assert "127.0.0.1:1" not in ls(m.mnt)
    # The rest of the mount is fine.
    assert ls(m.path(b, "team")) == ["web"]
    assert m.alive()


def test_host_outside_plain_http_hosts_is_spoken_to_over_https(registry, mount):
    m = mount(None, plain_http=False, ttl=600)
    # The registry answers plain HTTP only: over HTTPS it is no registry.
    expect_errno(errno.ENOENT, os.listdir, m.path(registry.host))
    assert ls(m.mnt) == []
    m2 = mount(None, ttl=600, name="all-plain")  # -o plain_http: every host
    assert "charts" in ls(m2.path(registry.host))


def test_fstab_source_none_is_every_registry(registry, chartfs_bin, env, tmp_path):
    """fstab needs a source: "none" mounts every registry."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    path_env = dict(env, PATH=os.path.dirname(chartfs_bin) + ":" + env["PATH"])
    r = subprocess.run(["/sbin/mount.fuse3", "none", str(mnt), "-t", "chartfs", "-o",
                        "plain_http,_netdev,cache_dir=%s" % (tmp_path / "cache")],
                       env=path_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        assert "charts" in ls(str(mnt / registry.host))
        with open("/proc/mounts") as f:
            line = [l for l in f if " %s " % mnt in l][0]
        assert line.split()[:3] == ["chartfs", str(mnt), "fuse.chartfs"]
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
