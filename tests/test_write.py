"""The write path: cp publishes what helm push would, rm deletes a tag."""
import errno
import io
import os
import shutil
import subprocess
import tarfile
import threading
import time

import pytest

from util import CHARTS, HELM_CHART, HELM_CONFIG, copy_chart, sha256, signed_package

REPO = "charts/test/helm-oci-test"


def cp(src, dst):
    """cp(1), so errors come from close(2) as a user sees them."""
    return subprocess.run(["cp", src, dst], capture_output=True, text=True)


def make_tgz(path, files):
    """A chart package written by hand: files is {name: bytes}."""
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def test_cp_publishes_what_helm_pulls(registry_factory, mount, helm3, helm4, packages, tmp_path):
    reg = registry_factory()
    m = mount(reg.host)
    os.makedirs(m.path("charts/test"))
    src = packages["helm-oci-test-0.2.0"]
    r = cp(src, m.path("charts/test/"))
    assert r.returncode == 0, r.stderr
    # Named from Chart.yaml: charts/test + chart helm-oci-test.
    assert reg.tags(REPO) == ["0.2.0"]
    assert os.listdir(m.path(REPO)) != []
    for helm in (helm3, helm4):
        out = tmp_path / os.path.basename(helm.binary)
        helm.pull(reg.host, REPO, "0.2.0", str(out))
        assert open(out / "helm-oci-test-0.2.0.tgz", "rb").read() == open(src, "rb").read()
        shown = helm.run("show", "chart", "oci://%s/%s" % (reg.host, REPO), "--version", "0.2.0",
                         "--plain-http").stdout
        assert "name: helm-oci-test" in shown
    man, _, _ = reg.manifest(REPO, "0.2.0")
    assert "mediaType" not in man
    assert man["layers"][0]["mediaType"] == HELM_CHART
    assert man["layers"][0]["digest"] == sha256(open(src, "rb").read())
    assert man["config"]["mediaType"] == HELM_CONFIG
    ann = man["annotations"]
    assert ann["org.opencontainers.image.title"] == "helm-oci-test"
    assert ann["org.opencontainers.image.version"] == "0.2.0"


@pytest.mark.parametrize("chart", ["helm-oci-test-0.1.0", "web-1.0.0"])
def test_config_blob_equals_helm_push(registry_factory, mount, helm4, packages, chart):
    reg = registry_factory()
    helm4.push(packages[chart], reg.host, "byhelm")
    m = mount(reg.host)
    os.mkdir(m.path("bychartfs"))
    assert cp(packages[chart], m.path("bychartfs/")).returncode == 0
    name, version = chart.rsplit("-", 1)
    ours, _, _ = reg.manifest("bychartfs/" + name, version)
    theirs, _, _ = reg.manifest("byhelm/" + name, version)
    assert ours["config"] == theirs["config"]
    assert ours["layers"] == theirs["layers"]
    created = "org.opencontainers.image.created"
    assert {k: v for k, v in ours["annotations"].items() if k != created} == \
        {k: v for k, v in theirs["annotations"].items() if k != created}


def test_cp_into_repository_dir_and_new_tag_listed_at_once(seeded, registry_factory, mount,
                                                         helm4, packages):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, opts=("plain_http", "ttl=600"))
    repo = m.path("charts/helm-oci-test")
    assert sorted(os.listdir(repo)) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
    assert cp(packages["helm-oci-test-0.2.0"], repo + "/").returncode == 0
    assert sorted(os.listdir(repo)) == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                                        "helm-oci-test-0.2.0.tgz"]
    assert open(os.path.join(repo, "0.2.0", "templates", "configmap.yaml")).read()


def test_mkdir_then_cp(registry_factory, mount, packages):
    reg = registry_factory()
    m = mount(reg.host)
    os.makedirs(m.path("team/new"))
    assert os.path.isdir(m.path("team/new"))
    with pytest.raises(FileExistsError):
        os.mkdir(m.path("team"))
    assert cp(packages["web-1.0.0"], m.path("team/new/")).returncode == 0
    assert reg.tags("team/new/web") == ["1.0.0"]
    assert sorted(os.listdir(m.path("team/new"))) == ["web"]


@pytest.mark.parametrize("kind", ["garbage", "plain-tar", "no-chart-yaml", "root-chart-yaml",
                                  "not-semver", "no-name", "empty"])
def test_invalid_package_is_refused_at_close(registry_factory, mount, tmp_path, kind):
    reg = registry_factory()
    m = mount(reg.host)
    f = str(tmp_path / "bad.tgz")
    chart = b"apiVersion: v2\nname: bad\nversion: 1.0.0\n"
    if kind == "garbage":
        open(f, "wb").write(b"this is not a chart\n" * 10)
    elif kind == "plain-tar":
        with tarfile.open(f, "w") as t:
            info = tarfile.TarInfo("bad/Chart.yaml")
            info.size = len(chart)
            t.addfile(info, io.BytesIO(chart))
    elif kind == "no-chart-yaml":
        make_tgz(f, {"bad/values.yaml": b"a: 1\n"})
    elif kind == "root-chart-yaml":
        make_tgz(f, {"Chart.yaml": chart})
    elif kind == "not-semver":
        make_tgz(f, {"bad/Chart.yaml": b"apiVersion: v2\nname: bad\nversion: latest\n"})
    elif kind == "no-name":
        make_tgz(f, {"bad/Chart.yaml": b"apiVersion: v2\nversion: 1.0.0\n"})
    else:
        open(f, "wb").close()
    os.mkdir(m.path("ns"))
    r = cp(f, m.path("ns/"))
    assert r.returncode != 0
    assert "Invalid argument" in r.stderr
    st, _, body = reg.request("GET", "/v2/_catalog")
    assert b'"repositories":[]' in body


def test_overwrite_replaces_and_immutable_refuses(registry_factory, mount, helm4, tmp_path):
    reg = registry_factory()
    m = mount(reg.host)
    src = CHARTS + "/helm-oci-test-0.1.0"
    a = helm4.package(src, str(tmp_path / "a"))
    b_dir = copy_chart(src, str(tmp_path / "b-src"), description="changed")
    b = helm4.package(b_dir, str(tmp_path / "b"))
    os.mkdir(m.path("charts"))
    assert cp(a, m.path("charts/")).returncode == 0
    first = reg.manifest("charts/helm-oci-test", "0.1.0")[1]
    assert cp(b, m.path("charts/helm-oci-test/")).returncode == 0
    second = reg.manifest("charts/helm-oci-test", "0.1.0")[1]
    assert first != second
    m2 = mount(reg.host, opts=("plain_http", "immutable"))
    r = cp(a, m2.path("charts/helm-oci-test/"))
    assert r.returncode != 0 and "File exists" in r.stderr
    assert reg.manifest("charts/helm-oci-test", "0.1.0")[1] == second


def test_overwrite_after_reads(registry_factory, mount, helm4, tmp_path):
    """cp over an existing package after reads of it publishes it, a broken
    one fails at close and leaves the tag alone (a read-write mount keeps
    OPEN for this, see fs/ll.c)."""
    reg = registry_factory()
    src = CHARTS + "/helm-oci-test-0.1.0"
    a = helm4.package(src, str(tmp_path / "a"))
    helm4.push(a, reg.host, "charts")
    b_dir = copy_chart(src, str(tmp_path / "b-src"), description="changed")
    b = helm4.package(b_dir, str(tmp_path / "b"))
    m = mount(reg.host)
    pkg = m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz")
    assert open(pkg, "rb").read() == open(a, "rb").read()
    assert "description" in open(m.path("charts/helm-oci-test/0.1.0/Chart.yaml")).read()
    first = reg.manifest("charts/helm-oci-test", "0.1.0")[1]

    r = cp(b, pkg)
    assert r.returncode == 0, r.stderr
    second = reg.manifest("charts/helm-oci-test", "0.1.0")[1]
    assert second != first
    assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(open(b, "rb").read())
    assert "description: changed" in helm4.run(
        "show", "chart", "oci://%s/charts/helm-oci-test" % reg.host, "--version", "0.1.0",
        "--plain-http").stdout

    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a chart at all")
    r = cp(str(bad), pkg)
    assert r.returncode != 0
    assert reg.manifest("charts/helm-oci-test", "0.1.0")[1] == second
    # And the next overwrite starts afresh, not after the failed bytes.
    assert cp(a, pkg).returncode == 0
    assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(open(a, "rb").read())


def test_rm_deletes_that_tag(registry_factory, mount, helm3, packages):
    reg = registry_factory()
    helm3.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    helm3.push(packages["helm-oci-test-0.2.0"], reg.host, "charts")
    m = mount(reg.host, opts=("plain_http", "ttl=600"))
    repo = m.path("charts/helm-oci-test")
    os.unlink(os.path.join(repo, "helm-oci-test-0.1.0.tgz"))
    assert reg.tags("charts/helm-oci-test") == ["0.2.0"]
    assert sorted(os.listdir(repo)) == ["0.2.0", "helm-oci-test-0.2.0.tgz"]
    with pytest.raises(FileNotFoundError):
        os.unlink(os.path.join(repo, "helm-oci-test-0.1.0.tgz"))


def test_rm_refuses_when_another_tag_shares_the_digest(registry_factory, mount, helm4, packages):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    _, digest, body = reg.manifest("charts/helm-oci-test", "0.1.0")
    st, _, _ = reg.request("PUT", "/v2/charts/helm-oci-test/manifests/stable", body=body,
                           headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert st == 201
    m = mount(reg.host)
    with pytest.raises(OSError) as e:
        os.unlink(m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz"))
    assert e.value.errno == errno.EBUSY
    assert sorted(reg.tags("charts/helm-oci-test")) == ["0.1.0", "stable"]
    # The log line names the tag that shares the digest.
    refused = [l for l in m.log().splitlines() if "delete charts/helm-oci-test:0.1.0" in l]
    assert len(refused) == 1 and "tag stable share" in refused[0], m.log()


def test_rm_with_deletes_disabled(registry_factory, mount, helm4, packages):
    reg = registry_factory(delete=False)
    helm4.push(packages["web-1.0.0"], reg.host, "charts")
    m = mount(reg.host)
    with pytest.raises(OSError) as e:
        os.unlink(m.path("charts/web/web-1.0.0.tgz"))
    assert e.value.errno == errno.EPERM
    assert reg.tags("charts/web") == ["1.0.0"]


def test_concurrent_cp(registry_factory, mount, packages):
    reg = registry_factory()
    m = mount(reg.host)
    os.mkdir(m.path("c"))
    results = []
    threads = [threading.Thread(target=lambda p=p: results.append(cp(p, m.path("c/"))))
               for p in (packages["web-1.0.0"], packages["helm-oci-test-0.1.0"],
                         packages["helm-oci-test-0.2.0"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert reg.tags("c/web") == ["1.0.0"]
    assert sorted(reg.tags("c/helm-oci-test")) == ["0.1.0", "0.2.0"]


def test_registry_down_fails_cp_and_leaves_no_tag(registry_factory, mount, packages):
    reg = registry_factory()
    m = mount(reg.host)
    os.mkdir(m.path("charts"))
    reg.stop()
    r = cp(packages["web-1.0.0"], m.path("charts/"))
    assert r.returncode != 0
    assert "Input/output error" in r.stderr
    reg.restart()
    assert reg.tags("charts/web") == []
    assert cp(packages["web-1.0.0"], m.path("charts/")).returncode == 0
    assert reg.tags("charts/web") == ["1.0.0"]


@pytest.mark.parametrize("order", ["prov-after", "prov-before"])
def test_provenance_joins_its_chart(registry_factory, mount, helm4, tmp_path, order):
    if not shutil.which("gpg"):
        pytest.skip("gpg is not installed")
    tgz, prov = signed_package(helm4, tmp_path)
    reg = registry_factory()
    helm4.push(tgz, reg.host, "byhelm")  # helm push of the pair
    m = mount(reg.host)
    os.mkdir(m.path("charts"))
    first, second = (tgz, prov) if order == "prov-after" else (prov, tgz)
    assert cp(first, m.path("charts/")).returncode == 0
    assert cp(second, m.path("charts/")).returncode == 0
    ours, _, _ = reg.manifest("charts/web", "1.0.0")
    theirs, _, _ = reg.manifest("byhelm/web", "1.0.0")
    assert ours["layers"] == theirs["layers"]
    assert [l["mediaType"] for l in ours["layers"]].count(
        "application/vnd.cncf.helm.chart.provenance.v1.prov") == 1
    out = tmp_path / "pulled"
    out.mkdir()
    helm4.run("pull", "oci://%s/charts/web" % reg.host, "--version", "1.0.0", "--prov",
              "-d", str(out), "--plain-http")
    assert open(out / "web-1.0.0.tgz.prov", "rb").read() == open(prov, "rb").read()


@pytest.mark.parametrize("fault", ["blob-post-503", "blob-put-500", "manifest-put-500"])
def test_failed_push_leaves_no_tag(registry_factory, mount, packages, fault):
    from proxy import RegistryProxy
    reg = registry_factory()
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host)
        os.mkdir(m.path("charts"))
        if fault == "blob-put-500":
            proxy.fail(r"/blobs/uploads/", status=500, times=10, method="PUT")
        elif fault == "manifest-put-500":
            proxy.fail(r"/manifests/", status=500, times=10, method="PUT")
        else:
            proxy.fail(r"/blobs/uploads/", status=503, times=10, method="POST")
        r = cp(packages["web-1.0.0"], m.path("charts/"))
        assert r.returncode != 0
        assert reg.tags("charts/web") == []
        proxy.clear_faults()
        assert cp(packages["web-1.0.0"], m.path("charts/")).returncode == 0
        assert reg.tags("charts/web") == ["1.0.0"]


def pushed_and_changed(reg, helm, tmp_path):
    """helm-oci-test 0.1.0 pushed by helm to reg as charts/helm-oci-test,
    and a package of the same version with another description: (a, b)."""
    src = CHARTS + "/helm-oci-test-0.1.0"
    a = helm.package(src, str(tmp_path / "a"))
    helm.push(a, reg.host, "charts")
    return a, helm.package(copy_chart(src, str(tmp_path / "b-src"), description="changed"),
                           str(tmp_path / "b"))


def test_write_after_a_push_leaves_the_published_bytes_alone(registry_factory, mount, packages):
    """A close of a duplicate pushes; writes through the descriptor still
    open do not reach what was pushed or the cached blob it is served from."""
    reg = registry_factory()
    m = mount(reg.host)
    os.mkdir(m.path("charts"))
    data = open(packages["web-1.0.0"], "rb").read()
    fd = os.open(m.path("charts", "web-1.0.0.tgz"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.close(os.dup(fd))  # the push
        assert reg.chart_layer("charts/web", "1.0.0")["digest"] == sha256(data)
        os.pwrite(fd, b"X" * 64, 100)  # same size, other bytes
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)  # pushes the changed bytes, which are no chart
    assert e.value.errno == errno.EINVAL
    assert open(m.path("charts/web/web-1.0.0.tgz"), "rb").read() == data
    assert reg.chart_layer("charts/web", "1.0.0")["digest"] == sha256(data)


def test_a_readers_close_does_not_end_an_overwrite(registry_factory, mount, helm4, tmp_path):
    """A reader of a package being overwritten (another process) closing
    meanwhile neither pushes the half-written file nor ends the upload."""
    reg = registry_factory()
    a, b = pushed_and_changed(reg, helm4, tmp_path)
    data = open(b, "rb").read()
    m = mount(reg.host)
    pkg = m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz")
    assert open(pkg, "rb").read() == open(a, "rb").read()  # no OPEN from now on
    fd = os.open(pkg, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data[:100])
        subprocess.run(["cat", pkg], capture_output=True, check=False)
        os.write(fd, data[100:])
    finally:
        os.close(fd)
    assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(data)


def test_truncate_of_a_package_opened_for_writing(registry_factory, mount, helm4, tmp_path):
    """ftruncate(2) before the first write (Python's truncate(), rsync
    --inplace) works on a package opened without O_TRUNC."""
    reg = registry_factory()
    a, b = pushed_and_changed(reg, helm4, tmp_path)
    m = mount(reg.host)
    pkg = m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz")
    open(pkg, "rb").read()
    with open(pkg, "r+b") as f:
        f.truncate(0)
        f.write(open(b, "rb").read())
    assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(
        open(b, "rb").read())


@pytest.mark.parametrize("name,limit", [("x-1.0.0.tgz", 100 << 20), ("x-1.0.0.tgz.prov", 1 << 20)])
def test_writes_past_what_could_be_published_are_efbig(registry_factory, mount, name, limit):
    reg = registry_factory()
    m = mount(reg.host)
    os.mkdir(m.path("charts"))
    fd = os.open(m.path("charts", name), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"x", limit)
        assert e.value.errno == errno.EFBIG
        with pytest.raises(OSError) as e:
            os.ftruncate(fd, limit + 1)
        assert e.value.errno == errno.EFBIG
        # What came before the refused write is not published either.
        os.pwrite(fd, b"x", 0)
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)
    assert e.value.errno == errno.EFBIG
    assert reg.tags("charts/x") == []


def test_provenance_with_the_registry_down_fails(registry_factory, mount, helm4, tmp_path):
    """A provenance file waits for its chart only when the registry says
    the chart is not there; an unreachable registry is an error at close."""
    if not shutil.which("gpg"):
        pytest.skip("gpg is not installed")
    tgz, prov = signed_package(helm4, tmp_path)
    reg = registry_factory()
    m = mount(reg.host)
    os.mkdir(m.path("charts"))
    assert cp(tgz, m.path("charts/")).returncode == 0
    reg.stop()
    try:
        r = cp(prov, m.path("charts/"))
    finally:
        reg.restart()
    assert r.returncode != 0
    assert [l["mediaType"] for l in reg.manifest("charts/web", "1.0.0")[0]["layers"]] == [
        HELM_CHART]
    assert cp(prov, m.path("charts/")).returncode == 0
    assert len(reg.manifest("charts/web", "1.0.0")[0]["layers"]) == 2


def test_direct_io_overwrite_in_parallel_writes(registry_factory, mount, helm4, tmp_path):
    """An O_DIRECT overwrite larger than max_write reaches the daemon as
    WRITEs in parallel (async direct I/O): all of them land in one upload."""
    reg = registry_factory()
    src = copy_chart(CHARTS + "/helm-oci-test-0.1.0", str(tmp_path / "big-src"))
    with open(os.path.join(src, "blob.bin"), "wb") as f:
        f.write(os.urandom(3 << 20))  # incompressible: a 3 MiB package
    a = helm4.package(src, str(tmp_path / "a"))
    helm4.push(a, reg.host, "charts")
    m = mount(reg.host)
    pkg = m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz")
    for i in range(3):
        with open(os.path.join(src, "values.yaml"), "a") as f:
            f.write("round: %d\n" % i)
        data = open(helm4.package(src, str(tmp_path / ("r%d" % i))), "rb").read()
        open(pkg, "rb").read(1)
        fd = os.open(pkg, os.O_WRONLY | os.O_TRUNC | os.O_DIRECT)
        try:
            assert os.write(fd, data) == len(data)
        finally:
            os.close(fd)
        assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(data)


def test_shell_redirection_publishes_and_only_an_empty_file_warns(registry_factory, chartfs_bin,
                                                                  helm4, env, tmp_path):
    """`cat pkg > mnt/ns/pkg.tgz`: bash opens, dup2s and closes its own fd
    before cat writes, so the first close sees an empty file. That close
    fails quietly; the last one publishes. A file closed empty for good is
    one warning."""
    reg = registry_factory()
    pkg = helm4.package(CHARTS + "/helm-oci-test-0.1.0", str(tmp_path / "p"))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log_path = tmp_path / "chartfs.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([chartfs_bin, "-f", "-o", "plain_http,cache_dir=%s"
                                 % (tmp_path / "cache"), reg.host, str(mnt)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while not os.path.ismount(str(mnt)):
            assert proc.poll() is None and time.time() < deadline, open(log_path).read()
            time.sleep(0.02)
        os.mkdir(str(mnt / "ns"))
        r = subprocess.run(["bash", "-c", 'cat "$1" > "$2"', "-", pkg,
                            str(mnt / "ns" / os.path.basename(pkg))])
        assert r.returncode == 0
        assert reg.tags("ns/helm-oci-test") == ["0.1.0"]
        r = subprocess.run(["bash", "-c", ': > "$1"', "-", str(mnt / "ns" / "empty.tgz")])
        st, _, body = reg.request("GET", "/v2/_catalog")
        assert b'"repositories":["ns/helm-oci-test"]' in body, body
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
        proc.wait(timeout=20)
    log = open(log_path).read()
    warned = [line for line in log.splitlines() if "closed empty" in line]
    assert len(warned) == 1 and "empty.tgz" in warned[0], log
    assert "is not a chart package" not in log, log


OVERWRITTEN = "charts/helm-oci-test/helm-oci-test-0.1.0.tgz"


def test_an_overwrite_survives_a_read_of_it_in_between(registry_factory, mount, helm4,
                                                       tmp_path):
    """The writer itself reads the package halfway and closes that reader:
    the overwrite goes on, and its own close publishes the whole file."""
    reg = registry_factory()
    _, b = pushed_and_changed(reg, helm4, tmp_path)
    data = open(b, "rb").read()
    m = mount(reg.host)
    pkg = m.path(OVERWRITTEN)
    open(pkg, "rb").read()
    fd = os.open(pkg, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, data[:100])
    with open(pkg, "rb") as f:
        f.read(1)
    os.write(fd, data[100:])
    os.close(fd)
    assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(data)


def test_an_overwrite_by_two_processes_in_turn(registry_factory, mount, helm4, tmp_path):
    """(cat head; cat tail) > pkg: the first cat's exit closes its copy of
    the descriptor; the shell's last close publishes head and tail."""
    reg = registry_factory()
    _, b = pushed_and_changed(reg, helm4, tmp_path)
    data = open(b, "rb").read()
    (tmp_path / "h").write_bytes(data[:len(data) // 2])
    (tmp_path / "t").write_bytes(data[len(data) // 2:])
    m = mount(reg.host)
    open(m.path(OVERWRITTEN), "rb").read()
    r = subprocess.run(["bash", "-c", '(cat "$1"; cat "$2") > "$3"', "-", str(tmp_path / "h"),
                        str(tmp_path / "t"), m.path(OVERWRITTEN)])
    assert r.returncode == 0
    assert reg.chart_layer("charts/helm-oci-test", "0.1.0")["digest"] == sha256(data)


def test_a_childs_close_does_not_take_the_parents_error(registry_factory, mount, helm4,
                                                        tmp_path):
    """A child writes garbage into the package and exits; the parent's own
    close still fails (EINVAL), for an overwrite as for a new file."""
    reg = registry_factory()
    pushed_and_changed(reg, helm4, tmp_path)
    m = mount(reg.host)
    for path, flags in [(m.path("charts/new-1.0.0.tgz"), os.O_CREAT),
                        (m.path(OVERWRITTEN), 0)]:
        open(m.path(OVERWRITTEN), "rb").read()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | flags, 0o644)
        subprocess.run(["sh", "-c", "printf notachart"], stdout=fd)
        with pytest.raises(OSError) as e:
            os.close(fd)
        assert e.value.errno == errno.EINVAL, path
    assert reg.tags("charts/helm-oci-test") == ["0.1.0"]
