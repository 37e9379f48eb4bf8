"""The read path as a user sees it: ls, cat, grep, diff, helm template, xattrs."""
import errno
import os
import subprocess
import time

import pytest

from util import CHARTS, HELM_CHART, Proxy, copy_chart, sha256

REPO = "charts/test/helm-oci-test"


def ls(path):
    return sorted(os.listdir(path))


def test_layout(seeded, mount):
    m = mount(seeded.host)
    assert ls(m.mnt) == ["charts", "other"]
    assert ls(m.path("charts")) == ["test"]
    # charts/test is a namespace (two repositories) and a repository (tag v1).
    assert ls(m.path("charts/test")) == ["helm-oci-test", "v1", "web"]
    assert ls(m.path(REPO)) == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                                "helm-oci-test-0.2.0.tgz"]
    assert ls(m.path("charts/test/web")) == ["1.0.0", "web-1.0.0.tgz"]
    assert os.path.isdir(m.path(REPO, "0.2.0"))
    assert os.path.isfile(m.path(REPO, "helm-oci-test-0.2.0.tgz"))


def test_cat_chart_yaml(seeded, mount):
    m = mount(seeded.host)
    with open(m.path(REPO, "0.2.0", "Chart.yaml")) as f:
        text = f.read()
    # helm package rewrites Chart.yaml; what it wrote is what we serve.
    assert "name: helm-oci-test\n" in text and "version: 0.2.0\n" in text
    st = os.stat(m.path(REPO, "0.2.0", "Chart.yaml"))
    assert st.st_size == len(text) and st.st_mode & 0o777 == 0o444
    assert st.st_uid == os.getuid()


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])  # pushed by helm v3 / v4
@pytest.mark.parametrize("puller", ["helm3", "helm4"])
def test_diff_against_helm_pull(seeded, mount, tmp_path, request, version, puller):
    helm = request.getfixturevalue(puller)
    m = mount(seeded.host)
    helm.pull_untar(seeded.host, REPO, version, str(tmp_path / "pull"))
    r = subprocess.run(["diff", "-r", str(tmp_path / "pull" / "helm-oci-test"),
                        m.path(REPO, version)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    # .helmignore'd files stay out; hidden files helm keeps stay in.
    assert os.path.exists(m.path(REPO, version, "templates", "deployment.yaml"))


def test_package_is_the_layer_blob(seeded, mount, packages):
    m = mount(seeded.host)
    data = open(m.path(REPO, "helm-oci-test-0.2.0.tgz"), "rb").read()
    assert data == open(packages["helm-oci-test-0.2.0"], "rb").read()
    man, _, _ = seeded.manifest(REPO, "0.2.0")
    layer = [l for l in man["layers"] if l["mediaType"] == HELM_CHART][0]
    assert sha256(data) == layer["digest"]
    assert os.stat(m.path(REPO, "helm-oci-test-0.2.0.tgz")).st_size == layer["size"]


def test_grep_across_charts(seeded, mount):
    m = mount(seeded.host)
    r = subprocess.run(["grep", "-rl", "kind: Deployment", m.path("charts")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    found = sorted(os.path.relpath(p, m.mnt) for p in r.stdout.split())
    assert found == [
        "charts/test/helm-oci-test/0.1.0/templates/deployment.yaml",
        "charts/test/helm-oci-test/0.2.0/templates/deployment.yaml",
        "charts/test/web/1.0.0/templates/deployment.yaml",
    ]
    assert r.stderr == ""


@pytest.mark.parametrize("tool", ["helm3", "helm4"])
def test_helm_template_matches_oci(seeded, mount, request, tool):
    helm = request.getfixturevalue(tool)
    m = mount(seeded.host)
    for repo, version in ((REPO, "0.2.0"), ("charts/test/web", "1.0.0")):
        local = helm.template(m.path(repo, version))
        remote = helm.template("oci://%s/%s" % (seeded.host, repo), "--version", version,
                               "--plain-http")
        assert local == remote
        assert "kind: Deployment" in local


def test_diff_between_versions(seeded, mount):
    m = mount(seeded.host)
    r = subprocess.run(["diff", "-r", m.path(REPO, "0.1.0"), m.path(REPO, "0.2.0")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "Only in %s: configmap.yaml" % m.path(REPO, "0.2.0", "templates") in r.stdout
    assert "version: 0.2.0" in r.stdout


def test_xattrs(seeded, mount):
    m = mount(seeded.host)
    _, digest, _ = seeded.manifest(REPO, "0.2.0")
    for p in (m.path(REPO, "0.2.0"), m.path(REPO, "helm-oci-test-0.2.0.tgz")):
        assert os.getxattr(p, "user.oci.digest").decode() == digest
        assert os.getxattr(p, "user.oci.media_type") == b"application/vnd.oci.image.manifest.v1+json"
        assert os.getxattr(p, "user.oci.annotation.org.opencontainers.image.version") == b"0.2.0"
        assert os.getxattr(p, "user.oci.annotation.org.opencontainers.image.title") == b"helm-oci-test"
        names = os.listxattr(p)
        assert "user.oci.annotation.org.opencontainers.image.created" in names
    with pytest.raises(OSError) as e:
        os.getxattr(m.path(REPO, "0.2.0"), "user.oci.nope")
    assert e.value.errno == errno.ENODATA
    # getfattr -d, the way a user reads them
    r = subprocess.run(["getfattr", "-d", m.path(REPO, "0.2.0")], capture_output=True, text=True)
    assert 'user.oci.digest="%s"' % digest in r.stdout
    root = os.getxattr(m.mnt, "user.chartfs.registry").decode()
    assert root == "http://" + seeded.host


def test_tag_mtime_is_created_annotation(seeded, mount):
    m = mount(seeded.host)
    # The image at charts/test:v1 was pushed with created=2024-01-02T03:04:05Z.
    assert os.stat(m.path("charts/test/v1")).st_mtime == 1704164645
    man, _, _ = seeded.manifest(REPO, "0.2.0")
    created = man["annotations"]["org.opencontainers.image.created"]
    t = time.mktime(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert os.stat(m.path(REPO, "0.2.0")).st_mtime == t


def test_non_chart_is_an_empty_dir(seeded, mount):
    m = mount(seeded.host)
    assert ls(m.path("charts/test/v1")) == []
    assert ls(m.path("other/image")) == ["latest"]
    assert ls(m.path("other/image/latest")) == []
    assert os.getxattr(m.path("other/image/latest"), "user.oci.digest").startswith(b"sha256:")
    assert not os.path.exists(m.path("other/image/image-latest.tgz"))


@pytest.mark.parametrize("path", [
    "nope", "charts/nope", "charts/test/helm-oci-test/9.9.9",
    "charts/test/helm-oci-test/0.2.0/nope.yaml",
    "charts/test/helm-oci-test/helm-oci-test-9.9.9.tgz",
    "charts/test/test-v1.tgz",
])
def test_enoent(seeded, mount, path):
    m = mount(seeded.host)
    with pytest.raises(FileNotFoundError):
        os.stat(m.path(path))


def test_tag_content_is_read_only(seeded, mount):
    m = mount(seeded.host)
    f = m.path(REPO, "0.2.0", "Chart.yaml")
    for op in (lambda: open(f, "w"), lambda: open(f, "a"), lambda: os.unlink(f),
               lambda: os.rename(f, f + ".x"), lambda: open(m.path(REPO, "0.2.0", "new"), "w"),
               lambda: os.mkdir(m.path(REPO, "0.2.0", "d")), lambda: os.chmod(f, 0o777)):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EROFS


def test_read_only_mount(seeded, mount):
    m = mount(seeded.host, opts=("plain_http", "ro"))
    for op in (lambda: open(m.path("charts", "x.tgz"), "w"), lambda: os.mkdir(m.path("new")),
               lambda: os.unlink(m.path(REPO, "helm-oci-test-0.1.0.tgz"))):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EROFS
    assert sorted(seeded.tags(REPO)) == ["0.1.0", "0.2.0"]


def test_ttl_refresh(registry_factory, mount, helm4, packages, tmp_path):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, opts=("plain_http", "ttl=1"))
    assert ls(m.path("charts/helm-oci-test")) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
    helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "charts")
    helm4.push(packages["web-1.0.0"], reg.host, "charts")
    time.sleep(2.2)
    assert "0.2.0" in ls(m.path("charts/helm-oci-test"))
    assert ls(m.path("charts")) == ["helm-oci-test", "web"]


def test_pagination(registry_factory, mount, helm4, tmp_path):
    reg = registry_factory()
    image = [(b"layer", "application/vnd.oci.image.layer.v1.tar")]
    repos = ["ns/r%d" % i for i in range(5)]
    for r in repos:
        reg.push_artifact(r, "latest", image)
    for i in range(7):
        reg.push_artifact("ns/r0", "t%d" % i, image)
    proxy = Proxy(reg.host, page=2)
    try:
        m = mount(proxy.host)
        assert ls(m.path("ns")) == ["r0", "r1", "r2", "r3", "r4"]
        assert ls(m.path("ns/r0")) == ["latest"] + ["t%d" % i for i in range(7)]
        assert proxy.count("/v2/_catalog") == 3
        assert proxy.count("/v2/ns/r0/tags/list") == 4
    finally:
        proxy.stop()


def test_requests_per_chart_read(seeded, mount):
    proxy = Proxy(seeded.host)
    try:
        m = mount(proxy.host, opts=("plain_http", "ttl=60"))
        ls(m.mnt)
        proxy.reset()
        open(m.path(REPO, "0.2.0", "Chart.yaml")).read()
        assert proxy.count("/v2/%s/manifests/" % REPO) == 1
        assert proxy.count("/v2/%s/blobs/" % REPO) == 1
        assert proxy.count() == 2
        proxy.reset()
        open(m.path(REPO, "0.2.0", "Chart.yaml")).read()
        open(m.path(REPO, "0.2.0", "values.yaml")).read()
        subprocess.run(["grep", "-r", "image", m.path(REPO, "0.2.0")], capture_output=True)
        assert proxy.count() == 0
        assert int(os.getxattr(m.mnt, "user.chartfs.requests")) > 0
    finally:
        proxy.stop()


def test_registry_without_catalog(seeded, mount):
    proxy = Proxy(seeded.host, no_catalog=True)
    try:
        m = mount(proxy.host)
        assert ls(m.mnt) == []
        assert ls(m.path(REPO)) == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                                    "helm-oci-test-0.2.0.tgz"]
        assert open(m.path(REPO, "0.1.0", "Chart.yaml")).read().startswith("apiVersion")
        assert ls(m.mnt) == ["charts"]
    finally:
        proxy.stop()


def test_cache_holds_blobs_by_digest(seeded, mount, tmp_path):
    cache = str(tmp_path / "cache")
    m = mount(seeded.host, cache_dir=cache)
    data = open(m.path(REPO, "helm-oci-test-0.1.0.tgz"), "rb").read()
    blob = os.path.join(cache, "blobs", "sha256", sha256(data)[7:])
    assert open(blob, "rb").read() == data
    assert os.listdir(os.path.join(cache, "tmp")) == []


def test_warm_cache_survives_remount(seeded, mount, tmp_path):
    cache = str(tmp_path / "cache")
    m = mount(seeded.host, cache_dir=cache)
    first = open(m.path(REPO, "0.1.0", "values.yaml")).read()
    m.unmount()
    proxy = Proxy(seeded.host)
    try:
        m2 = mount(proxy.host, cache_dir=cache, name="again")
        assert open(m2.path(REPO, "0.1.0", "values.yaml")).read() == first
        assert proxy.count("/v2/%s/blobs/" % REPO) == 0
    finally:
        proxy.stop()


def test_cli(chartfs_bin, tmp_path):
    r = subprocess.run([chartfs_bin, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "chartfs version" in r.stdout
    r = subprocess.run([chartfs_bin, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "-o plain_http" in r.stdout and "-o ttl=SECONDS" in r.stdout
    r = subprocess.run([chartfs_bin], capture_output=True, text=True)
    assert r.returncode != 0 and "usage" in r.stderr
    r = subprocess.run([chartfs_bin, "-o", "ttl=soon", "127.0.0.1:1", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "ttl" in r.stderr


def test_dead_registry_fails_the_mount(chartfs_bin, tmp_path):
    from util import free_port
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    t = time.time()
    r = subprocess.run([chartfs_bin, "-o", "plain_http,cache_dir=%s" % (tmp_path / "c"),
                        "127.0.0.1:%d" % free_port(), str(mnt)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "does not answer" in r.stderr
    assert time.time() - t < 30
    assert not os.path.ismount(str(mnt))


def test_man_page_documents_every_option(chartfs_bin):
    import re
    help_text = subprocess.run([chartfs_bin, "--help"], capture_output=True, text=True).stdout
    opts = set(re.findall(r"-o (\w+)", help_text.split("chartfs options:")[1].split("\n\n")[0]))
    man = open(os.path.join(os.path.dirname(__file__), "..", "man", "chartfs.1")).read()
    man_opts = set(re.findall(r"\\-o\\? (\w+)", man))
    assert opts and opts <= man_opts, opts - man_opts
