"""The read path as a user sees it: ls, cat, grep, diff, helm template,
xattrs, errors, ttl, pagination, request counts, the cache, the command line.

The `registry` fixture (conftest.py) holds charts pushed by helm v3 and v4:
charts/test/helm-oci-test 0.1.0 (v3) 0.2.0 (v4), charts/rev/helm-oci-test
the reverse, charts/test/web 1.0.0 (v4), other/web 1.0.0 (v3), and two OCI
images (charts/test:v1, other/image:latest).
"""
import datetime
import errno
import os
import shutil
import subprocess
import time

import pytest

from proxy import RegistryProxy
from util import (CHARTS, CREATED, OCI_LAYER, OCI_MANIFEST, WRITE_ERRNO, copy_chart,
                  expect_write_refused, file_sha256, free_port, sha256)

REPO = "charts/test/helm-oci-test"
# (repository, tag) of every chart in the shared registry, and who pushed it.
CHARTS_PUSHED = [
    ("charts/test/helm-oci-test", "0.1.0"),  # helm v3
    ("charts/test/helm-oci-test", "0.2.0"),  # helm v4
    ("charts/rev/helm-oci-test", "0.1.0"),   # helm v4
    ("charts/rev/helm-oci-test", "0.2.0"),   # helm v3
    ("charts/test/web", "1.0.0"),            # helm v4
    ("other/web", "1.0.0"),                  # helm v3
]
IDS = ["%s:%s" % c for c in CHARTS_PUSHED]


def ls(path):
    return sorted(os.listdir(path))


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def pkg_name(repo, tag):
    return "%s-%s.tgz" % (repo.rsplit("/", 1)[-1], tag)


# --- listing -----------------------------------------------------------------

def test_ls_every_level(shared_mount):
    m = shared_mount
    assert ls(m.mnt) == ["charts", "other"]
    assert ls(m.path("charts")) == ["rev", "test"]
    # charts/test is a namespace (helm-oci-test, web) and a repository (tag v1).
    assert ls(m.path("charts/test")) == ["helm-oci-test", "v1", "web"]
    assert ls(m.path(REPO)) == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                                "helm-oci-test-0.2.0.tgz"]
    assert ls(m.path("charts/rev/helm-oci-test")) == ls(m.path(REPO))
    assert ls(m.path("charts/test/web")) == ["1.0.0", "web-1.0.0.tgz"]
    assert ls(m.path("other")) == ["image", "web"]
    assert ls(m.path(REPO, "0.2.0")) == [".helmignore", "Chart.yaml", "README.md",
                                         "templates", "values.yaml"]
    assert ls(m.path(REPO, "0.2.0", "templates")) == [
        "NOTES.txt", "_helpers.tpl", "configmap.yaml", "deployment.yaml", "service.yaml"]


def test_file_types_and_modes(shared_mount, registry):
    m = shared_mount
    for d in ("", "charts", "charts/test", REPO, REPO + "/0.2.0", REPO + "/0.2.0/templates"):
        assert os.path.isdir(m.path(d)), d
    tgz = m.path(REPO, "helm-oci-test-0.2.0.tgz")
    assert os.path.isfile(tgz)
    assert os.stat(tgz).st_size == registry.chart_layer(REPO, "0.2.0")["size"]
    chart_yaml = os.stat(m.path(REPO, "0.2.0", "Chart.yaml"))
    assert chart_yaml.st_mode & 0o777 == 0o444
    assert chart_yaml.st_uid == os.getuid()
    # ls -l stats every entry; it must work (readdirplus) and show the package size.
    r = run("ls", "-l", m.path(REPO))
    assert r.returncode == 0 and str(os.stat(tgz).st_size) in r.stdout, r.stderr


def test_cat_chart_yaml(shared_mount):
    r = run("cat", shared_mount.path(REPO, "0.2.0", "Chart.yaml"))
    assert r.returncode == 0, r.stderr
    # helm package rewrote Chart.yaml; what it wrote is what is served.
    assert "name: helm-oci-test\n" in r.stdout and "version: 0.2.0\n" in r.stdout
    assert os.stat(shared_mount.path(REPO, "0.2.0", "Chart.yaml")).st_size == len(r.stdout)


@pytest.mark.parametrize("repo,tag", CHARTS_PUSHED, ids=IDS)
@pytest.mark.parametrize("puller", ["helm3", "helm4"])
def test_tag_dir_equals_helm_pull_untar(shared_mount, registry, tmp_path, request, repo, tag,
                                        puller):
    helm = request.getfixturevalue(puller)
    pulled = helm.pull_untar(registry.host, repo, tag, str(tmp_path / "pull"))
    r = run("diff", "-r", pulled, shared_mount.path(repo, tag))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("repo,tag", CHARTS_PUSHED, ids=IDS)
def test_package_is_the_chart_layer(shared_mount, registry, helm4, tmp_path, repo, tag):
    path = shared_mount.path(repo, pkg_name(repo, tag))
    with open(path, "rb") as f:
        data = f.read()
    with open(helm4.pull(registry.host, repo, tag, str(tmp_path)), "rb") as f:
        assert data == f.read(), "the .tgz differs from helm pull's"
    layer = registry.chart_layer(repo, tag)
    assert sha256(data) == layer["digest"] and len(data) == layer["size"]


def test_package_is_what_helm_packaged(shared_mount, helm3, helm4, chart_dirs):
    # 0.1.0 in charts/test was packaged and pushed by helm v3, 0.2.0 by v4.
    for helm, version in ((helm3, "0.1.0"), (helm4, "0.2.0")):
        local = helm.package(chart_dirs["helm-oci-test-" + version])
        assert file_sha256(local) == file_sha256(
            shared_mount.path(REPO, "helm-oci-test-%s.tgz" % version))


def test_helmignored_files_are_absent(shared_mount):
    assert "scratch.tmp" not in ls(shared_mount.path(REPO, "0.2.0"))
    assert os.path.exists(os.path.join(CHARTS, "helm-oci-test-0.2.0", "scratch.tmp"))


def test_grep_across_charts(shared_mount):
    m = shared_mount
    r = run("grep", "-rl", "kind: Deployment", m.path("charts"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    found = sorted(os.path.relpath(p, m.mnt) for p in r.stdout.split())
    assert found == sorted("%s/%s/templates/deployment.yaml" % c for c in CHARTS_PUSHED
                           if c[0].startswith("charts/"))
    # The subchart is there too.
    r = run("grep", "-rl", "kind: StatefulSet", m.path("charts/test/web/1.0.0"))
    assert r.stdout.split() == [m.path("charts/test/web/1.0.0/charts/db/templates/statefulset.yaml")]


@pytest.mark.parametrize("tool", ["helm3", "helm4"])
@pytest.mark.parametrize("repo,tag", [(REPO, "0.2.0"), ("charts/rev/helm-oci-test", "0.2.0"),
                                      ("charts/test/web", "1.0.0")])
def test_helm_template_matches_oci(shared_mount, registry, request, tool, repo, tag):
    helm = request.getfixturevalue(tool)
    local = helm.template(shared_mount.path(repo, tag))
    remote = helm.template("oci://%s/%s" % (registry.host, repo), "--version", tag,
                           "--plain-http")
    assert local == remote
    assert "kind: Deployment" in local


def test_diff_between_versions(shared_mount):
    a, b = shared_mount.path(REPO, "0.1.0"), shared_mount.path(REPO, "0.2.0")
    r = run("diff", "-r", a, b)
    assert r.returncode == 1, r.stderr  # 1: differences found, not trouble
    assert "Only in %s/templates: configmap.yaml" % b in r.stdout
    assert "version: 0.2.0" in r.stdout and 'tag: "1.22"' in r.stdout


# --- metadata ----------------------------------------------------------------

@pytest.mark.parametrize("repo,tag", CHARTS_PUSHED, ids=IDS)
def test_xattrs(shared_mount, registry, repo, tag):
    man, digest, _ = registry.manifest(repo, tag)
    assert man.get("annotations"), "helm sets annotations"
    for p in (shared_mount.path(repo, tag), shared_mount.path(repo, pkg_name(repo, tag))):
        assert os.getxattr(p, "user.oci.digest").decode() == digest
        assert os.getxattr(p, "user.oci.media_type").decode() == OCI_MANIFEST
        names = set(os.listxattr(p))
        for key, value in man["annotations"].items():
            name = "user.oci.annotation." + key
            assert name in names
            assert os.getxattr(p, name).decode() == value, key
        with pytest.raises(OSError) as e:
            os.getxattr(p, "user.oci.annotation.nope")
        assert e.value.errno == errno.ENODATA


def test_xattrs_of_web_chart(shared_mount):
    # Chart.yaml annotations are copied, and <>& survive every layer of JSON.
    p = shared_mount.path("charts/test/web/1.0.0")
    get = lambda k: os.getxattr(p, "user.oci.annotation." + k).decode()
    assert get("org.opencontainers.image.title") == "web"
    assert get("org.opencontainers.image.version") == "1.0.0"
    assert get("org.opencontainers.image.description") == "A web app <b>fast</b> & small"
    assert get("org.opencontainers.image.url") == "https://example.com/web"
    assert get("org.opencontainers.image.source") == "https://github.com/example/web"
    assert get("org.opencontainers.image.authors") == "Ann Admin (ann@example.com), Bob"
    assert get("example.com/team") == "platform" and get("category") == "Web"


def test_getfattr_dump(shared_mount, registry):
    _, digest, _ = registry.manifest(REPO, "0.2.0")
    r = run("getfattr", "-d", shared_mount.path(REPO, "0.2.0"))
    assert r.returncode == 0, r.stderr
    assert 'user.oci.digest="%s"' % digest in r.stdout
    assert 'user.oci.annotation.org.opencontainers.image.title="helm-oci-test"' in r.stdout


def test_tag_mtime_is_created_annotation(shared_mount, registry):
    # The image at charts/test:v1 was pushed with created=2024-01-02T03:04:05Z.
    assert os.stat(shared_mount.path("charts/test/v1")).st_mtime == 1704164645
    for repo, tag in CHARTS_PUSHED:
        man, _, _ = registry.manifest(repo, tag)
        created = datetime.datetime.fromisoformat(man["annotations"][CREATED])
        assert int(os.stat(shared_mount.path(repo, tag)).st_mtime) == int(created.timestamp())


def test_non_chart_is_an_empty_dir(shared_mount):
    m = shared_mount
    assert ls(m.path("charts/test/v1")) == []
    assert ls(m.path("other/image")) == ["latest"]
    assert ls(m.path("other/image/latest")) == []
    assert os.getxattr(m.path("other/image/latest"), "user.oci.digest").startswith(b"sha256:")
    assert os.getxattr(m.path("charts/test/v1"), "user.oci.annotation.com.example.kind") == b"image"
    assert not os.path.exists(m.path("other/image/image-latest.tgz"))
    assert not os.path.exists(m.path("charts/test/test-v1.tgz"))


# --- errors ------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "nope", "charts/nope", "charts/test/nope/x", "charts/test/helm-oci-test/9.9.9",
    "charts/test/helm-oci-test/0.2.0/nope.yaml", "charts/test/helm-oci-test/0.2.0/templates/nope",
    "charts/test/helm-oci-test/helm-oci-test-9.9.9.tgz", "charts/test/helm-oci-test/x-0.2.0.tgz",
    "charts/test/test-v1.tgz", "other/image/latest/Chart.yaml",
])
def test_missing_path_is_enoent(shared_mount, path):
    with pytest.raises(OSError) as e:
        os.stat(shared_mount.path(path))
    assert e.value.errno == errno.ENOENT
    r = run("cat", shared_mount.path(path))
    assert r.returncode == 1 and "No such file or directory" in r.stderr


# Writes: a chart's content is the registry's, addressed by digest, so every
# write inside a tag dir, and every rename, chmod, link or xattr, is refused.
# (Publishing by cp, mkdir of a namespace and rm of a package are the write
# path's, tested in test_write.py.) All go through util.expect_write_refused.

def _write_ops(m, scratch):
    """(what, op) for every kind of write into chart content."""
    tag = m.path(REPO, "0.1.0")
    chart_yaml = os.path.join(tag, "Chart.yaml")
    return [
        ("create in a tag dir", lambda: open(os.path.join(tag, "new.yaml"), "w")),
        ("create in a tag's subdir", lambda: open(os.path.join(tag, "templates", "x"), "w")),
        ("truncate a chart file", lambda: open(chart_yaml, "w")),
        ("append to a chart file", lambda: open(chart_yaml, "a")),
        ("open a chart file read-write", lambda: open(chart_yaml, "r+")),
        ("truncate(2) a chart file", lambda: os.truncate(chart_yaml, 0)),
        ("touch an existing file", lambda: os.utime(chart_yaml)),
        ("chmod", lambda: os.chmod(chart_yaml, 0o644)),
        ("mkdir in a tag dir", lambda: os.mkdir(os.path.join(tag, "d"))),
        ("rm a chart file", lambda: os.unlink(chart_yaml)),
        ("rmdir a chart's subdir", lambda: os.rmdir(os.path.join(tag, "templates"))),
        ("rmdir a tag", lambda: os.rmdir(m.path("other/image/latest"))),
        ("rename a chart file", lambda: os.rename(chart_yaml, chart_yaml + ".x")),
        ("rename a tag", lambda: os.rename(tag, m.path(REPO, "0.1.1"))),
        ("rename a package", lambda: os.rename(m.path(REPO, "helm-oci-test-0.1.0.tgz"),
                                               m.path(REPO, "helm-oci-test-0.1.1.tgz"))),
        ("symlink", lambda: os.symlink("/etc/passwd", os.path.join(tag, "link"))),
        ("hard link", lambda: os.link(chart_yaml, os.path.join(tag, "link"))),
        ("setxattr", lambda: os.setxattr(tag, "user.x", b"1")),
        ("cp into a tag dir", lambda: shutil.copyfile(scratch, os.path.join(tag, "x.yaml"))),
    ]


def test_writes_are_refused(registry_factory, helm3, chart_dirs, mount, tmp_path):
    # A registry of its own: should a write get through, nothing shared changes.
    reg = registry_factory()
    helm3.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts/test")
    reg.push_artifact("other/image", "latest")
    m = mount(reg.host)
    before = ls(m.path(REPO, "0.1.0"))
    scratch = tmp_path / "scratch.yaml"
    scratch.write_text("a: 1\n")
    failures = []
    for what, op in _write_ops(m, str(scratch)):
        try:
            expect_write_refused(op)
        except AssertionError as e:
            failures.append("%s: %s" % (what, e))
    assert not failures, "\n".join(failures)
    assert reg.tags("charts/test/helm-oci-test") == ["0.1.0"]
    assert ls(m.path(REPO, "0.1.0")) == before


@pytest.mark.parametrize("cmd", [
    ["touch", "{tag}/new"],
    ["touch", "{tag}/Chart.yaml"],
    ["mkdir", "{tag}/dir"],
    ["rm", "{tag}/values.yaml"],
    ["cp", "{scratch}", "{tag}/"],
], ids=["touch-new", "touch-existing", "mkdir", "rm", "cp"])
def test_shell_writes_are_refused(registry_factory, helm3, chart_dirs, mount, tmp_path, cmd):
    reg = registry_factory()
    helm3.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts/test")
    m = mount(reg.host)
    scratch = tmp_path / "notes.txt"
    scratch.write_text("hello\n")
    r = run(*[c.format(tag=m.path(REPO, "0.1.0"), scratch=scratch) for c in cmd])
    assert r.returncode != 0
    assert os.strerror(WRITE_ERRNO) in r.stderr, r.stderr


# --- freshness, pagination, requests, cache ----------------------------------

def test_ttl_refresh(registry_factory, mount, helm4, chart_dirs):
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, ttl=1)
    assert ls(m.mnt) == ["charts"]
    assert ls(m.path("charts/helm-oci-test")) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
    assert not os.path.exists(m.path("charts/helm-oci-test/0.2.0"))
    helm4.push_chart(chart_dirs["helm-oci-test-0.2.0"], reg.host, "charts")
    helm4.push_chart(chart_dirs["web"], reg.host, "charts")
    time.sleep(2)
    assert ls(m.path("charts/helm-oci-test")) == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                                                  "helm-oci-test-0.2.0.tgz"]
    assert ls(m.path("charts")) == ["helm-oci-test", "web"]
    assert "version: 0.2.0" in open(m.path("charts/helm-oci-test/0.2.0/Chart.yaml")).read()


def test_tag_moved_within_ttl_is_not_seen_then_is(registry_factory, mount, helm4, chart_dirs,
                                                  tmp_path):
    # A tag re-pushed with new content: the old digest is trusted for ttl,
    # then the new one is served.
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, ttl=1)
    before = open(m.path("charts/helm-oci-test/0.1.0/values.yaml")).read()
    changed = copy_chart(chart_dirs["helm-oci-test-0.1.0"], str(tmp_path / "helm-oci-test"))
    with open(os.path.join(changed, "values.yaml"), "a") as f:
        f.write("extra: true\n")
    helm4.push(helm4.package(changed, str(tmp_path / "pkg")), reg.host, "charts")
    time.sleep(2)
    after = open(m.path("charts/helm-oci-test/0.1.0/values.yaml")).read()
    assert after == before + "extra: true\n"


def test_pagination(registry_factory, mount):
    reg = registry_factory()
    repos = ["ns/r%d" % i for i in range(6)]
    for r in repos:
        reg.push_artifact(r, "latest")
    tags = ["t%d" % i for i in range(7)]
    for t in tags:
        reg.push_artifact("ns/r0", t)
    with RegistryProxy(reg.host, page=2) as proxy:
        m = mount(proxy.host)
        assert ls(m.mnt) == ["ns"]
        assert ls(m.path("ns")) == [r.split("/")[1] for r in repos]
        assert ls(m.path("ns/r0")) == sorted(["latest"] + tags)
        # 6 repositories in pages of 2: 3 requests (+1 if the client asks
        # past the end); 8 tags: 4 (+1).
        assert proxy.count("/v2/_catalog") in (3, 4), proxy.requests()
        assert proxy.count("/v2/ns/r0/tags/list") in (4, 5), proxy.requests()
        assert any("last=" in p for _, p in proxy.requests() if "/tags/list" in p)


def test_cold_chart_read_is_two_requests_warm_is_none(registry, mount):
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, ttl=600)
        ls(m.mnt)  # the catalog: not part of a chart read
        proxy.reset()
        with open(m.path(REPO, "0.2.0", "Chart.yaml")) as f:
            f.read()
        assert proxy.count("/v2/%s/manifests/" % REPO, "GET") == 1, proxy.requests()
        assert proxy.count("/v2/%s/blobs/" % REPO, "GET") == 1, proxy.requests()
        assert proxy.count() == 2, proxy.requests()
        proxy.reset()
        with open(m.path(REPO, "0.2.0", "Chart.yaml")) as f:
            f.read()
        run("grep", "-r", "image:", m.path(REPO, "0.2.0"))
        with open(m.path(REPO, "helm-oci-test-0.2.0.tgz"), "rb") as f:
            f.read()
        assert proxy.count() == 0, proxy.requests()


def test_cache_holds_blobs_by_digest(registry, mount, tmp_path):
    cache = str(tmp_path / "cache")
    m = mount(registry.host, cache_dir=cache)
    run("cat", m.path(REPO, "0.1.0", "Chart.yaml"))
    with open(m.path(REPO, "helm-oci-test-0.2.0.tgz"), "rb") as f:
        data = f.read()
    blobs = os.path.join(cache, "blobs", "sha256")
    names = set(os.listdir(blobs))
    for tag in ("0.1.0", "0.2.0"):
        assert registry.chart_layer(REPO, tag)["digest"][7:] in names
    for n in names:  # every blob is named by the sha256 of its bytes
        assert file_sha256(os.path.join(blobs, n)) == "sha256:" + n
    assert sha256(data)[7:] in names
    tmp = os.path.join(cache, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def test_warm_cache_survives_remount(registry, mount, tmp_path):
    cache = str(tmp_path / "cache")
    m = mount(registry.host, cache_dir=cache)
    first = open(m.path(REPO, "0.1.0", "values.yaml")).read()
    assert m.unmount() is None
    with RegistryProxy(registry.host) as proxy:
        m2 = mount(proxy.host, cache_dir=cache, name="again")
        assert open(m2.path(REPO, "0.1.0", "values.yaml")).read() == first
        assert proxy.count("/v2/%s/blobs/" % REPO) == 0, proxy.requests()


@pytest.mark.parametrize("ttl", [600, 1])
def test_remount_within_ttl_asks_nothing(registry, mount, tmp_path, ttl):
    """Names fetched by one mount are trusted by the next for the rest of the
    ttl (they are kept in the cache dir with their fetch time)."""
    cache = str(tmp_path / "cache")
    opts = ("plain_http", "ttl=%d" % ttl)
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, opts=opts, cache_dir=cache)
        listing = ls(m.path(REPO))
        values = open(m.path(REPO, "0.2.0", "values.yaml")).read()
        m.unmount()
        time.sleep(2 if ttl == 1 else 0)
        proxy.reset()
        m2 = mount(proxy.host, opts=opts, cache_dir=cache, name="again")
        assert ls(m2.mnt) == ["charts", "other"]
        assert ls(m2.path(REPO)) == listing
        assert open(m2.path(REPO, "0.2.0", "values.yaml")).read() == values
        if ttl == 600:
            # Only the mount's own check that the registry answers.
            assert proxy.count() == proxy.count("/v2/_catalog") + 1 == 1, proxy.requests()
        else:
            # Expired: asked again (catalog, tags, manifests), blobs still cached.
            assert proxy.count("/v2/_catalog") == 1
            assert proxy.count("/v2/%s/tags/list" % REPO) == 1
            assert proxy.count("/v2/%s/blobs/" % REPO) == 0


def test_remount_checks_the_kept_manifests(registry, mount, tmp_path):
    """The manifests a listing fetched are kept in the cache dir, one file
    per repository; one altered there is not believed but fetched again."""
    cache = str(tmp_path / "cache")
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, cache_dir=cache)
        listing = ls(m.path(REPO))
        values = open(m.path(REPO, "0.2.0", "values.yaml")).read()
        m.unmount()
        meta = os.path.join(cache, "meta")
        packs = [os.path.join(meta, f) for f in os.listdir(meta)
                 if "schemaVersion" in open(os.path.join(meta, f)).read()]
        assert len(packs) == 1, packs
        text = open(packs[0]).read()
        # The same manifests to a parser, but not the bytes the digests name.
        altered = text.replace('\\"schemaVersion\\":2', '\\"schemaVersion\\": 2')
        assert altered != text
        open(packs[0], "w").write(altered)
        proxy.reset()
        m2 = mount(proxy.host, cache_dir=cache, name="again")
        assert ls(m2.path(REPO)) == listing
        assert open(m2.path(REPO, "0.2.0", "values.yaml")).read() == values
        assert proxy.count("/v2/%s/manifests/" % REPO) >= 1, proxy.requests()
        assert proxy.count("/v2/%s/blobs/" % REPO) == 0, proxy.requests()


def _digest(path):
    try:
        return os.getxattr(path, "user.oci.digest").decode()
    except OSError as e:
        return "errno %d" % e.errno


def test_a_remount_shows_this_mounts_deletes_and_pushes(registry_factory, mount, helm4,
                                                       packages, tmp_path):
    """Names are trusted across a remount for the ttl, but not those this
    mount changed: a deleted package does not come back, a pushed one is
    there."""
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "charts")
    cache = str(tmp_path / "cache")
    opts = ("plain_http", "ttl=600")
    m = mount(reg.host, opts=opts, cache_dir=cache)
    assert "0.1.0" in ls(m.path("charts/helm-oci-test"))
    os.unlink(m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz"))
    m.unmount()
    m = mount(reg.host, opts=opts, cache_dir=cache, name="again")
    assert ls(m.path("charts/helm-oci-test")) == ["0.2.0", "helm-oci-test-0.2.0.tgz"]
    r = subprocess.run(["cp", packages["helm-oci-test-0.1.0"], m.path("charts/")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m.unmount()
    m = mount(reg.host, opts=opts, cache_dir=cache, name="third")
    assert ls(m.path("charts/helm-oci-test"))[:2] == ["0.1.0", "0.2.0"]


def test_a_daemon_keeps_the_manifests_another_listed(registry_factory, mount, tmp_path):
    """Two daemons share a cache dir. One lists a repository (with a new tag)
    and leaves its snapshot; the other, still trusting an older listing,
    rewrites the manifests it refetched: the newer snapshot's stay."""
    reg = registry_factory()
    reg.push_artifact("ns/app", "v1", [(b"one", OCI_LAYER)])
    reg.push_artifact("ns/app", "bad", [(b"bad", OCI_LAYER)])
    cache = str(tmp_path / "cache")
    with RegistryProxy(reg.host) as proxy:
        # A manifest chartfs cannot read: refetched at every listing.
        proxy.reply(r"/manifests/bad$", b'{"schemaVersion":1,"name":"ns/app"}',
                    content_type="application/vnd.docker.distribution.manifest.v1+json")
        first = mount(proxy.host, opts=("plain_http", "ttl=600"), cache_dir=cache, name="a0")
        assert ls(first.path("ns/app")) == ["bad", "v1"]
        first.unmount()
        a = mount(proxy.host, opts=("plain_http", "ttl=600"), cache_dir=cache, name="a")
        assert os.getxattr(a.path("ns/app"), "user.oci.tag_count") == b"2"  # the snapshot
        v2 = reg.push_artifact("ns/app", "v2", [(b"two", OCI_LAYER)])
        time.sleep(2)
        b = mount(proxy.host, opts=("plain_http", "ttl=1"), cache_dir=cache, name="b")
        assert ls(b.path("ns/app")) == ["bad", "v1", "v2"]
        b.unmount()
        ls(a.path("ns/app"))
        a.unmount()
        host = proxy.host
    reg.stop()
    c = mount(host, opts=("plain_http", "offline"), cache_dir=cache, name="off")
    assert _digest(c.path("ns/app/v2")) == v2


def test_registry_without_catalog(registry, mount):
    with RegistryProxy(registry.host, no_catalog=True) as proxy:
        m = mount(proxy.host)
        assert ls(m.path(REPO))[:2] == ["0.1.0", "0.2.0"]
        assert open(m.path(REPO, "0.1.0", "Chart.yaml")).read().startswith("apiVersion")


# --- the command line --------------------------------------------------------

def test_version_and_help(chartfs_bin):
    r = run(chartfs_bin, "--version")
    assert r.returncode == 0 and "chartfs" in r.stdout + r.stderr
    r = run(chartfs_bin, "--help")
    out = r.stdout + r.stderr
    assert r.returncode == 0
    for opt in ("plain_http", "cache_dir=", "ttl="):
        assert opt in out, opt


def test_bad_usage_fails(chartfs_bin, tmp_path):
    r = run(chartfs_bin)
    assert r.returncode != 0 and r.stderr
    r = run(chartfs_bin, "-o", "ttl=soon", "127.0.0.1:1", str(tmp_path))
    assert r.returncode != 0 and "ttl" in r.stderr


def test_dead_registry_fails_the_mount(chartfs_bin, tmp_path, env):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    host = "127.0.0.1:%d" % free_port()  # nothing listens there
    t = time.time()
    r = subprocess.run([chartfs_bin, "-o", "plain_http,cache_dir=%s" % (tmp_path / "c"), host,
                        str(mnt)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0
    assert host in r.stderr, r.stderr
    assert time.time() - t < 30
    assert not os.path.ismount(str(mnt))


def test_man_page_documents_every_option(chartfs_bin):
    import re
    help_text = run(chartfs_bin, "--help").stdout
    # chartfs's own options: the block after "chartfs options:", before FUSE's.
    own = help_text.split("chartfs options:", 1)[-1].split("\n\n", 1)[0]
    opts = set(re.findall(r"-o (\w+)", own))
    with open(os.path.join(CHARTS, "..", "..", "man", "chartfs.1")) as f:
        man = f.read()
    man_opts = set(re.findall(r"\\-o\\? (\w+)", man))
    assert opts and opts <= man_opts, opts - man_opts
    # And the other way round: every option the man page lists under
    # "chartfs options" (a .B/.BI line) is one --help prints.
    section = man.split(".SS chartfs options", 1)[1].split(".SS", 1)[0]
    listed = set(re.findall(r"^\.BI? \\-o\\? (\w+)", section, re.M))
    assert listed and listed <= opts, listed - opts


def test_read_only_mount_serves_charts_without_handles(registry, mount, helm4, tmp_path):
    """-o ro: no OPEN/FLUSH/RELEASE round trips (the kernel is told there is
    nothing to open), yet every file reads as helm pulls it."""
    m = mount(registry.host, opts=("plain_http", "ro"))
    pulled = helm4.pull_untar(registry.host, REPO, "0.2.0", str(tmp_path / "pull"))
    r = subprocess.run(["diff", "-r", pulled, m.path(REPO, "0.2.0")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    pkg = m.path(REPO, "helm-oci-test-0.2.0.tgz")
    data = open(pkg, "rb").read()
    assert len(data) == os.stat(pkg).st_size and data[:2] == b"\x1f\x8b"
    r = subprocess.run(["grep", "-rl", "kind: Deployment", m.path("charts")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    with pytest.raises(OSError) as e:
        open(m.path(REPO, "0.2.0", "Chart.yaml"), "a")
    assert e.value.errno == errno.EROFS


def test_signature_tags_are_hidden_unless_asked(registry_factory, mount):
    reg = registry_factory()
    image = [(b"layer", "application/vnd.oci.image.layer.v1.tar")]
    digest = reg.push_artifact("apps/web", "1.0.0", image)
    sig = "sha256-%s.sig" % digest[7:]
    reg.push_artifact("apps/web", sig, [(b"sig", "application/vnd.dev.cosign.simplesigning.v1+json")])
    m = mount(reg.host)
    assert ls(m.path("apps/web")) == ["1.0.0"]
    assert os.path.isdir(m.path("apps/web", sig))  # still reachable by name
    m2 = mount(reg.host, opts=("plain_http", "show_signatures"))
    assert ls(m2.path("apps/web")) == ["1.0.0", sig]


def test_offline_mount_serves_the_cache(registry_factory, mount, helm4, chart_dirs, tmp_path):
    """-o offline: what earlier mounts fetched is served without the registry."""
    reg = registry_factory()
    helm4.push(helm4.package(chart_dirs["helm-oci-test-0.1.0"]), reg.host, "charts")
    helm4.push(helm4.package(chart_dirs["helm-oci-test-0.2.0"]), reg.host, "charts")
    cache = str(tmp_path / "cache")
    m = mount(reg.host, opts=("plain_http", "ttl=1"), cache_dir=cache)
    repo = m.path("charts/helm-oci-test")
    listing = ls(repo)
    values = open(os.path.join(repo, "0.1.0", "values.yaml")).read()
    m.unmount()
    reg.stop()
    m2 = mount(reg.host, opts=("plain_http", "offline"), cache_dir=cache, name="offline")
    assert ls(m2.path("charts/helm-oci-test")) == listing
    assert open(m2.path("charts/helm-oci-test/0.1.0/values.yaml")).read() == values
    with pytest.raises(OSError) as e:  # never fetched
        open(m2.path("charts/helm-oci-test/0.2.0/values.yaml")).read()
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        os.mkdir(m2.path("charts/new"))
    assert e.value.errno == errno.EROFS


def test_repository_and_root_counters(registry, mount):
    m = mount(registry.host)
    tags = [t for t in ls(m.path(REPO)) if not t.endswith(".tgz")]
    assert os.getxattr(m.path(REPO), "user.oci.tag_count") == str(len(tags)).encode()
    assert "user.oci.tag_count" in os.listxattr(m.path(REPO))
    open(m.path(REPO, "0.1.0", "values.yaml")).read()
    assert int(os.getxattr(m.mnt, "user.chartfs.cache_misses")) >= 1
    assert int(os.getxattr(m.mnt, "user.chartfs.cache_hits")) >= 0


def test_ls_l_probes_ask_nothing(registry, mount):
    """`ls -l` asks every entry for security.selinux and system.posix_acl_*.
    chartfs has none of those: they are ENODATA at once, even on a tag whose
    ttl has run out, without a registry request. (Through descriptors opened
    before: a path walk after the ttl rightly asks again.)"""
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, ttl=1)
        tag_dir = m.path(REPO, "0.2.0")
        open(os.path.join(tag_dir, "Chart.yaml")).read()
        fds = [os.open(p, os.O_RDONLY) for p in (
            tag_dir, m.path(REPO, "helm-oci-test-0.2.0.tgz"), m.path(REPO))]
        try:
            time.sleep(1.5)
            proxy.reset()
            for fd in fds:
                for name in ("security.selinux", "system.posix_acl_access"):
                    with pytest.raises(OSError) as e:
                        os.getxattr(fd, name)
                    assert e.value.errno == errno.ENODATA, (fd, name)
            assert proxy.count() == 0, proxy.requests()
            # The tag's own attributes still follow its ttl.
            assert os.getxattr(fds[0], "user.oci.digest").startswith(b"sha256:")
        finally:
            for fd in fds:
                os.close(fd)
