"""Reads through a pull-through mirror, writes to the origin (-o mirror).

Real components only: an origin docker-registry (distribution 2.8) with
charts pushed by helm, and a second docker-registry in proxy mode
(`proxy: {remoteurl: ...}`) as the mirror. Counting proxies (tests/proxy.py)
stand in front of each: one between chartfs and the origin (what chartfs
itself asks the origin), one between the mirror and the origin (what the
mirror asks it), one between chartfs and the mirror (faults: a corrupt
blob, a lagging tag list).
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from proxy import RegistryProxy
from util import CHARTS, Registry, file_sha256

WEB = "charts/test/web"
OCI_TEST = "charts/test/helm-oci-test"
USER, PASSWORD = "alice", "origin-Pa55"
MIRROR_USER, MIRROR_PASSWORD = "bob", "mirror-Pa55"
FAILED = re.compile(r"mirror \S+ failed \(")


def htpasswd(path, user, password):
    r = subprocess.run(["htpasswd", "-Bbn", user, password], check=True,
                       capture_output=True, text=True)
    with open(path, "w") as f:
        f.write(r.stdout)
    return path


def read(path):
    with open(path) as f:
        return f.read()


def source(path):
    return os.getxattr(path, "user.chartfs.source").decode()


def blob_gets(proxy):
    return sum(1 for m, p in proxy.requests() if m == "GET" and "/blobs/sha256:" in p)


def name_reads(proxy):
    """Tag lists and manifests asked: what a mirror takes off the origin."""
    return [(m, p) for m, p in proxy.requests() if "/tags/list" in p or "/manifests/" in p]


class Site:
    """origin <- to_origin (chartfs) ; origin <- upstream <- mirror <- to_mirror (chartfs)."""

    def __init__(self, tmp_path, helm, origin_auth=None, mirror_auth=None):
        self.origin = Registry(str(tmp_path / "origin"))
        for d in ("helm-oci-test-0.1.0", "web"):
            helm.push_chart(os.path.join(CHARTS, d), self.origin.host, "charts/test")
        self.guarded = None
        if origin_auth:
            # The same storage served a second time, behind a password, for
            # chartfs; the mirror keeps its own way in (distribution's proxy
            # logs in to token realms only, not to a Basic upstream).
            os.makedirs(str(tmp_path / "guarded"))
            os.symlink(os.path.join(self.origin.dir, "data"),
                       str(tmp_path / "guarded" / "data"))
            self.guarded = Registry(
                str(tmp_path / "guarded"),
                extra_config="auth: {htpasswd: {realm: origin, path: %s}}\n" % (
                    htpasswd(str(tmp_path / "origin.htpasswd"), *origin_auth)))
        self.to_origin = RegistryProxy((self.guarded or self.origin).host)
        self.upstream = RegistryProxy(self.origin.host)
        proxy = "proxy: {remoteurl: 'http://%s'}\n" % self.upstream.host
        if mirror_auth:
            proxy += "auth: {htpasswd: {realm: mirror, path: %s}}\n" % htpasswd(
                str(tmp_path / "mirror.htpasswd"), *mirror_auth)
        self.mirror = Registry(str(tmp_path / "mirror"), extra_config=proxy)
        self.to_mirror = RegistryProxy(self.mirror.host)

    def reset(self):
        for p in (self.to_origin, self.upstream, self.to_mirror):
            p.reset()

    def close(self):
        for p in (self.to_origin, self.upstream, self.to_mirror):
            p.stop()
        self.mirror.stop()
        self.origin.stop()
        if self.guarded:
            self.guarded.stop()


@pytest.fixture
def site(tmp_path, helm4):
    s = Site(tmp_path, helm4)
    yield s
    s.close()


def mount_mirrored(mount, site, mirror=None, **kw):
    return mount(site.to_origin.host,
                 opts=("mirror=http://%s" % (mirror or site.to_mirror.host),) + kw.pop("opts", ()),
                 **kw)


def chart_bytes(site, repo, tag):
    layer = site.origin.chart_layer(repo, tag)
    return layer["digest"], site.origin.blob(repo, layer["digest"])


def test_cold_read_goes_through_the_mirror(site, mount):
    site.reset()
    m = mount_mirrored(mount, site)
    assert sorted(os.listdir(m.path(WEB))) == ["1.0.0", "web-1.0.0.tgz"]
    assert "name: web" in read(m.path(WEB, "1.0.0", "Chart.yaml"))
    digest, want = chart_bytes(site, WEB, "1.0.0")
    with open(m.path(WEB, "web-1.0.0.tgz"), "rb") as f:
        assert f.read() == want
    assert "name: helm-oci-test" in read(m.path(OCI_TEST, "0.1.0", "Chart.yaml"))
    # Who served each manifest, for a user to see.
    assert source(m.path(WEB, "1.0.0")) == site.to_mirror.host
    assert source(m.path(OCI_TEST, "0.1.0")) == site.to_mirror.host
    # chartfs asked the origin its ping and its catalog, nothing else...
    asked = [p.split("?")[0] for _, p in site.to_origin.requests()]
    assert set(asked) <= {"/v2/", "/v2/_catalog"}, asked
    assert "/v2/_catalog" in asked
    # ...and the mirror everything a read needs; the origin's blobs went
    # to the mirror's proxy (distribution 2.8 fetches an uncached blob twice).
    assert blob_gets(site.to_mirror) == 2
    assert 2 <= blob_gets(site.upstream) <= 6
    assert site.to_mirror.count("/v2/_catalog") == 0
    assert not FAILED.search(m.log())

    # A second machine (its own cache) costs the origin no blob at all.
    site.reset()
    m2 = mount_mirrored(mount, site)
    with open(m2.path(WEB, "web-1.0.0.tgz"), "rb") as f:
        assert f.read() == want
    assert blob_gets(site.upstream) == 0
    assert blob_gets(site.to_origin) == 0


def test_mirror_stopped_mid_use_falls_back_at_once(site, mount):
    m = mount(site.to_origin.host, ttl=0, opts=("mirror=http://%s" % site.mirror.host,))
    assert "name: web" in read(m.path(WEB, "1.0.0", "Chart.yaml"))
    assert source(m.path(WEB, "1.0.0")) == site.mirror.host
    site.reset()
    site.mirror.stop()  # its port now refuses connections
    start = time.monotonic()
    assert "name: helm-oci-test" in read(m.path(OCI_TEST, "0.1.0", "Chart.yaml"))
    assert time.monotonic() - start < 5, "the fallback waited for a timeout"
    assert source(m.path(OCI_TEST, "0.1.0")) == site.to_origin.host
    # The mount keeps working: listings (ttl=0 asks each time), reads.
    for _ in range(3):
        assert sorted(os.listdir(m.path(WEB))) == ["1.0.0", "web-1.0.0.tgz"]
        assert "0.1.0" in os.listdir(m.path(OCI_TEST))
    digest, want = chart_bytes(site, OCI_TEST, "0.1.0")
    with open(m.path(OCI_TEST, "helm-oci-test-0.1.0.tgz"), "rb") as f:
        assert f.read() == want
    assert blob_gets(site.to_origin) == 1
    # One line for the failover, not one per request.
    failed = FAILED.findall(m.log())
    assert len(failed) == 1, m.log()
    assert "reading from %s" % site.to_origin.host in m.log()


@pytest.mark.slow
def test_a_mirror_back_after_its_backoff_is_used_again(site, mount):
    m = mount(site.to_origin.host, ttl=0, opts=("mirror=http://%s" % site.mirror.host,))
    site.mirror.stop()
    assert "name: web" in read(m.path(WEB, "1.0.0", "Chart.yaml"))
    site.mirror.start()
    time.sleep(31)  # MIRROR_BACKOFF_MS
    site.reset()
    assert "name: helm-oci-test" in read(m.path(OCI_TEST, "0.1.0", "Chart.yaml"))
    assert source(m.path(OCI_TEST, "0.1.0")) == site.mirror.host
    assert name_reads(site.to_origin) == []
    assert len(FAILED.findall(m.log())) == 1
    assert len(re.findall(r"mirror \S+ answers again", m.log())) == 1


@pytest.mark.parametrize("what", ["blob", "manifest"])
def test_a_mirror_serving_wrong_bytes_costs_a_fallback(site, mount, what):
    """The mirror's answer has one byte flipped (same length, same headers):
    the reader gets the origin's bytes, never the mirror's."""
    site.to_mirror.flip("/blobs/sha256:" if what == "blob" else "/manifests/", times=None)
    m = mount_mirrored(mount, site)
    digest, want = chart_bytes(site, WEB, "1.0.0")
    site.reset()
    with open(m.path(WEB, "web-1.0.0.tgz"), "rb") as f:
        got = f.read()
    assert got == want
    assert "name: web" in read(m.path(WEB, "1.0.0", "Chart.yaml"))
    assert file_sha256(m.path(WEB, "web-1.0.0.tgz")) == digest
    assert blob_gets(site.to_origin) == 1
    if what == "manifest":
        assert source(m.path(WEB, "1.0.0")) == site.to_origin.host
    log = m.log()
    assert len(FAILED.findall(log)) == 1, log
    if what == "blob":
        assert "hashing to" in log


def test_push_and_delete_land_on_the_origin_and_show_at_once(site, mount, packages):
    """The mirror's tag list lags (a doctored, stale answer, as a caching
    mirror may give for its own cache time): a push or delete through the
    mount still shows at once, and nothing is written to the mirror."""
    m = mount_mirrored(mount, site, ttl=30)
    assert os.listdir(m.path(OCI_TEST)) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
    site.to_mirror.reply(r"^/v2/%s/tags/list" % OCI_TEST,
                         {"name": OCI_TEST, "tags": ["0.1.0"]})
    site.reset()
    shutil.copy(packages["helm-oci-test-0.2.0"], m.path("charts/test/"))
    assert site.origin.tags(OCI_TEST) == ["0.1.0", "0.2.0"]
    assert sorted(os.listdir(m.path(OCI_TEST))) == [
        "0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz", "helm-oci-test-0.2.0.tgz"]
    assert "version: 0.2.0" in read(m.path(OCI_TEST, "0.2.0", "Chart.yaml"))
    assert source(m.path(OCI_TEST, "0.2.0")) == site.to_origin.host
    writes = [r for r in site.to_mirror.requests() if r[0] in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == []
    assert site.to_origin.count("/v2/%s/manifests/0.2.0" % OCI_TEST, method="PUT") == 1

    site.to_mirror.clear_faults()
    site.to_mirror.reply(r"^/v2/%s/tags/list" % OCI_TEST,
                         {"name": OCI_TEST, "tags": ["0.1.0", "0.2.0"]})
    os.unlink(m.path(OCI_TEST, "helm-oci-test-0.1.0.tgz"))
    assert site.origin.tags(OCI_TEST) == ["0.2.0"]
    assert sorted(os.listdir(m.path(OCI_TEST))) == ["0.2.0", "helm-oci-test-0.2.0.tgz"]
    with pytest.raises(FileNotFoundError):
        os.unlink(m.path(OCI_TEST, "helm-oci-test-0.1.0.tgz"))
    assert [r for r in site.to_mirror.requests() if r[0] == "DELETE"] == []


def test_origin_and_mirror_each_get_their_own_credentials(tmp_path, helm4, mount):
    s = Site(tmp_path, helm4, origin_auth=(USER, PASSWORD),
             mirror_auth=(MIRROR_USER, MIRROR_PASSWORD))
    try:
        def config(mirror_password):
            path = str(tmp_path / ("config-%s.json" % mirror_password))
            auth = lambda u, p: {"username": u, "password": p}
            with open(path, "w") as f:
                json.dump({"auths": {s.to_origin.host: auth(USER, PASSWORD),
                                     s.to_mirror.host: auth(MIRROR_USER, mirror_password)}}, f)
            os.chmod(path, 0o600)
            return path

        s.reset()
        m = mount_mirrored(mount, s, opts=("registry_config=" + config(MIRROR_PASSWORD),))
        assert "name: web" in read(m.path(WEB, "1.0.0", "Chart.yaml"))
        assert source(m.path(WEB, "1.0.0")) == s.to_mirror.host, m.log()
        assert name_reads(s.to_origin) == [] and blob_gets(s.to_origin) == 0
        assert blob_gets(s.to_mirror) == 1
        assert not FAILED.search(m.log())
        # SIGHUP reads the mirror's credentials again, as the origin's.
        good = config(MIRROR_PASSWORD)
        os.replace(config("wrong"), good)
        os.kill(m.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "SIGHUP: credentials" not in m.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "name: helm-oci-test" in read(m.path(OCI_TEST, "0.1.0", "Chart.yaml"))
        assert source(m.path(OCI_TEST, "0.1.0")) == s.to_origin.host
        assert len(FAILED.findall(m.log())) == 1 and "401" in m.log(), m.log()
        # The origin's password is never the mirror's: with a wrong one for
        # the mirror, the mirror refuses (one line) and the origin serves.
        s.reset()
        m2 = mount_mirrored(mount, s, opts=("registry_config=" + config("wrong"),))
        assert "name: web" in read(m2.path(WEB, "1.0.0", "Chart.yaml"))
        assert source(m2.path(WEB, "1.0.0")) == s.to_origin.host
        assert blob_gets(s.to_mirror) == 0
        failed = FAILED.findall(m2.log())
        assert len(failed) == 1 and "401" in m2.log(), m2.log()
        assert PASSWORD not in m2.log() and MIRROR_PASSWORD not in m2.log()
    finally:
        s.close()


def test_every_registry_mount_takes_mirrors_per_origin(site, mount):
    """-o mirror=ORIGIN=MIRROR[/PREFIX]; a mirror lacking what the origin has
    (404: here a wrong prefix) costs a fallback and one line."""
    m = mount(None, opts=("plain_http_hosts=%s" % site.to_origin.host,
                          "mirror=%s=http://%s" % (site.to_origin.host, site.to_mirror.host)),
              plain_http=False)
    web = m.path(site.to_origin.host, WEB)
    assert "name: web" in read(os.path.join(web, "1.0.0", "Chart.yaml"))
    assert source(os.path.join(web, "1.0.0")) == site.to_mirror.host
    assert name_reads(site.to_origin) == []

    m2 = mount(site.to_origin.host, opts=("mirror=http://%s/nope" % site.to_mirror.host,))
    assert "name: web" in read(m2.path(WEB, "1.0.0", "Chart.yaml"))
    assert "name: helm-oci-test" in read(m2.path(OCI_TEST, "0.1.0", "Chart.yaml"))
    assert source(m2.path(WEB, "1.0.0")) == site.to_origin.host
    assert site.to_mirror.count("/v2/nope/charts/test/web/") >= 1
    log = m2.log()
    assert len(re.findall(r"mirror \S+/nope has no", log)) == 1, log
    assert not FAILED.search(log)


@pytest.mark.parametrize("target,value,said", [
    ("127.0.0.1:5000", "bad host!", "is no [http://]HOST"),
    ("127.0.0.1:5000", "127.0.0.1:5001/Upper", "is no [http://]HOST"),
    ("127.0.0.1:5000", "ghcr.io=m.example", "is for ghcr.io"),
    (None, "m.example", "needs the registry the mirror is for"),
])
def test_a_mirror_option_that_names_no_mirror_fails_the_mount(mount, target, value, said):
    m = mount(target, opts=("mirror=" + value,), check=False)
    assert not m.mounted
    assert said in m.result.stderr, m.result.stderr
