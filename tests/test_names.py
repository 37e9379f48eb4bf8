"""Names the mount shows are the registry's (issue 15, points 2, 3, 4, 5b).

A failed push leaves nothing behind; a directory made with mkdir that never
received a chart is removable and is not kept across mounts; nothing the
registry lacks looks like a tag. A root the registry will not show without
credentials is EACCES, not empty. A tag or repository pushed from elsewhere
opens by name at once, though listings follow the ttl. An offline mount
serves what the cache holds for the host whatever the scheme flag.
"""
import base64
import errno
import json
import os
import signal
import subprocess
import time

from proxy import RegistryProxy
from util import OCI_LAYER, Registry, copy_chart, expect_errno, ls, read, run


def cp(src, dst):
    return subprocess.run(["cp", src, dst], capture_output=True, text=True)


# ---- point 2: failed pushes and typos leave nothing fake ---------------------

def test_failed_push_leaves_no_repository(registry_factory, mount, packages):
    reg = registry_factory()
    m = mount(reg.host, ttl=30, opts=("io_timeout=5", "connect_timeout=2"))
    os.mkdir(m.path("lib"))
    reg.stop()
    r = cp(packages["web-1.0.0"], m.path("lib/"))
    assert r.returncode != 0 and "Input/output error" in r.stderr, r.stderr
    assert reg.start()
    # No repository the registry does not have, however long one waits.
    assert ls(m.path("lib")) == []
    expect_errno(errno.ENOENT, os.stat, m.path("lib/web"))
    # The mkdir never received a chart: it goes.
    os.rmdir(m.path("lib"))
    assert "lib" not in ls(m.mnt)
    # The same push once the registry is back makes it, once.
    os.mkdir(m.path("lib"))
    assert cp(packages["web-1.0.0"], m.path("lib/")).returncode == 0
    assert ls(m.path("lib")) == ["web"]
    assert ls(m.path("lib/web")) == ["1.0.0", "web-1.0.0.tgz"]


def test_mkdir_is_removable_and_not_kept_across_mounts(registry_factory, mount, packages):
    reg = registry_factory()
    m = mount(reg.host)
    os.makedirs(m.path("team/new"))
    os.mkdir(m.path("typo"))
    assert ls(m.mnt) == ["team", "typo"]
    os.rmdir(m.path("typo"))
    assert ls(m.mnt) == ["team"]
    expect_errno(errno.ENOENT, os.rmdir, m.path("typo"))
    # A namespace holding a made one is not empty; then both go.
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.path("team"))
    os.rmdir(m.path("team/new"))
    os.rmdir(m.path("team"))
    assert ls(m.mnt) == []
    # What received a chart is the registry's.
    os.mkdir(m.path("apps"))
    assert cp(packages["web-1.0.0"], m.path("apps/")).returncode == 0
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.path("apps"))
    expect_errno(errno.EROFS, os.rmdir, m.path("apps/web"))
    expect_errno(errno.EROFS, os.rmdir, m.path("apps/web/1.0.0"))
    # Made directories live in memory only: a remount on the same cache
    # dir shows what the registry has.
    os.mkdir(m.path("scratch"))
    m2 = mount(reg.host, cache_dir=m.cache_dir)
    assert ls(m2.mnt) == ["apps"]


def test_cp_r_of_a_chart_dir_into_a_repository_is_refused(registry_factory, mount, packages,
                                                         chart_dirs, tmp_path):
    reg = registry_factory()
    m = mount(reg.host)
    os.mkdir(m.path("apps"))
    assert cp(packages["web-1.0.0"], m.path("apps/")).returncode == 0
    src = copy_chart(chart_dirs["web"], str(tmp_path / "mychart"))
    r = run("cp", "-r", src, m.path("apps/web/"))
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
    # Nothing that looks like a tag the registry lacks.
    assert ls(m.path("apps/web")) == ["1.0.0", "web-1.0.0.tgz"]
    expect_errno(errno.ENOENT, os.stat, m.path("apps/web/mychart"))
    lines = [l for l in m.log().splitlines() if "would be a tag" in l]
    assert len(lines) == 1 and "apps/web/mychart" in lines[0], m.log()
    # A namespace takes directories (a place to copy charts into).
    os.mkdir(m.path("apps/more"))
    assert "more" in ls(m.path("apps"))


# ---- point 3: a root unreadable for want of credentials is EACCES -------------

def _htpasswd_registry(tmp_path):
    pw = str(tmp_path / "htpasswd")
    r = subprocess.run(["htpasswd", "-Bbn", "alice", "s3cret"], check=True,
                       capture_output=True, text=True)
    with open(pw, "w") as f:
        f.write(r.stdout)
    return Registry(str(tmp_path / "authreg"),
                    extra_config="auth: {htpasswd: {realm: test, path: %s}}\n" % pw)


def test_anonymous_root_of_a_registry_wanting_credentials_is_eacces(mount, tmp_path):
    reg = _htpasswd_registry(tmp_path)
    config = tmp_path / "config.json"
    config.write_text("{}")
    try:
        # Anonymous: the mount stands.
        m = mount(reg.host, opts=("registry_config=%s" % config,))
        expect_errno(errno.EACCES, os.listdir, m.mnt)
        expect_errno(errno.EACCES, os.listdir, m.mnt)
        r = run("ls", m.mnt)
        assert r.returncode != 0 and "Permission denied" in r.stderr
        lines = [l for l in m.log().splitlines() if "listing the root is EACCES" in l]
        assert len(lines) == 1, m.log()
        # Credentials given, and SIGHUP: the root lists the catalog.
        config.write_text(json.dumps({"auths": {reg.host: {
            "auth": base64.b64encode(b"alice:s3cret").decode()}}}))
        os.kill(m.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while True:
            try:
                assert ls(m.mnt) == []  # an empty registry, now readable
                break
            except PermissionError:
                assert time.time() < deadline, "SIGHUP did not open the root"
                time.sleep(0.1)
    finally:
        reg.stop()


def test_registry_without_catalog_still_lists_what_was_visited(registry, mount):
    with RegistryProxy(registry.host, no_catalog=True) as proxy:
        m = mount(proxy.host, ttl=1)
        assert ls(m.mnt) == []  # not EACCES: the registry answers by name
        assert "0.1.0" in ls(m.path("charts/test/helm-oci-test"))
        time.sleep(1.1)  # the kernel keeps the root's listing for the ttl
        assert ls(m.mnt) == ["charts"]


# ---- point 4: what was pushed elsewhere opens by name at once -----------------

def test_pushed_elsewhere_opens_by_name_at_once(registry_factory, mount, helm4, packages,
                                                chart_dirs, tmp_path):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts/test")
    # charts/test is a namespace and a repository at once, as in the demo.
    reg.push_artifact("charts/test", "v1", [(b"image layer", OCI_LAYER)])
    m = mount(reg.host, ttl=30)
    repo = m.path("charts/test/helm-oci-test")
    assert ls(m.path("charts/test")) == ["helm-oci-test", "v1"]
    assert ls(repo) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
    # Pushed elsewhere, within the ttl: at once.
    helm4.push(packages["web-1.0.0"], reg.host, "other")
    helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "charts/test")
    assert ls(m.path("other/web")) == ["1.0.0", "web-1.0.0.tgz"]
    assert b"version: 0.2.0" in read(os.path.join(repo, "0.2.0", "Chart.yaml"))
    # Missing now (the kernel keeps the miss a moment, the daemon too).
    expect_errno(errno.ENOENT, os.stat, m.path("charts/test/web"))
    expect_errno(errno.ENOENT, os.stat, os.path.join(repo, "0.3.0"))
    helm4.push(packages["web-1.0.0"], reg.host, "charts/test")
    v3 = copy_chart(chart_dirs["helm-oci-test-0.2.0"], str(tmp_path / "v3"), version="0.3.0")
    helm4.push_chart(v3, reg.host, "charts/test")
    # A second after the miss, a repository and a tag pushed since.
    time.sleep(1.1)
    assert ls(m.path("charts/test/web")) == ["1.0.0", "web-1.0.0.tgz"]
    assert b"version: 0.3.0" in read(os.path.join(repo, "0.3.0", "Chart.yaml"))
    assert os.path.getsize(os.path.join(repo, "helm-oci-test-0.3.0.tgz")) > 0


def test_pushed_elsewhere_opens_at_once_without_a_catalog(registry_factory, mount, helm4,
                                                          packages):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    with RegistryProxy(reg.host, no_catalog=True) as proxy:
        m = mount(proxy.host, ttl=30)
        repo = m.path("charts/helm-oci-test")
        assert ls(repo) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
        helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "charts")
        assert b"version: 0.2.0" in read(os.path.join(repo, "0.2.0", "Chart.yaml"))
        helm4.push(packages["web-1.0.0"], reg.host, "charts")
        assert ls(m.path("charts/web")) == ["1.0.0", "web-1.0.0.tgz"]


def test_missing_names_ask_the_registry_once_a_second(registry_factory, mount, helm4,
                                                     packages):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=30)
        repo = m.path("charts/helm-oci-test")
        assert ls(repo) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
        proxy.reset()
        t = time.time()
        for i in range(30):
            expect_errno(errno.ENOENT, os.stat, os.path.join(repo, "9.9.%d" % i))
            expect_errno(errno.ENOENT, os.stat, m.path("charts/nope%d" % i))
        spent = time.time() - t
        allowed = int(spent) + 1
        assert proxy.count("/v2/charts/helm-oci-test/manifests/") <= allowed, proxy.requests()
        assert proxy.count("/v2/_catalog") <= allowed, proxy.requests()
        # A package copied in is looked up first: a name that can be no
        # repository asks no catalog.
        time.sleep(1.1)
        proxy.reset()
        assert cp(packages["web-1.0.0"], m.path("charts/")).returncode == 0
        assert proxy.count("/v2/_catalog") == 0, proxy.requests()


def test_a_missing_name_never_waits_for_a_stalled_registry(registry_factory, mount, helm4,
                                                            packages):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=30, opts=("io_timeout=10",))
        repo = m.path("charts/helm-oci-test")
        assert ls(repo) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
        proxy.stall("/tags/list", 8, times=None)
        proxy.stall("/_catalog", 8, times=None)
        proxy.stall("/manifests/", 8, times=None)
        t = time.time()
        expect_errno(errno.ENOENT, os.stat, os.path.join(repo, "9.9.9"))
        expect_errno(errno.ENOENT, os.stat, m.path("charts/nope"))
        assert time.time() - t < 2, "a miss waited for the stalled registry"


# ---- point 5b: offline serves the cache whatever the scheme flag --------------

def test_offline_without_plain_http_serves_the_cache(registry, mount):
    m = mount(registry.host)
    repo = m.path("charts/test/helm-oci-test")
    assert ls(repo)[:2] == ["0.1.0", "0.2.0"]
    chart = read(os.path.join(repo, "0.2.0", "Chart.yaml"))
    ls(m.mnt)
    m.unmount()
    off = mount(registry.host, opts=("offline",), cache_dir=m.cache_dir, plain_http=False)
    assert "charts" in ls(off.mnt)
    assert ls(off.path("charts/test/helm-oci-test"))[:2] == ["0.1.0", "0.2.0"]
    assert read(off.path("charts/test/helm-oci-test/0.2.0/Chart.yaml")) == chart
