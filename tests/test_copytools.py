"""The tools people copy with: each publishes once and exits 0.

cp -p, install, shutil.copy2 and rsync set a file's mode and times after
closing it, and rsync, helm pull -d and helm package -d write a temporary
name and rename it into place. A registry has no modes, times or file
names, so these succeed on a file just written, change nothing, and leave
no temporary name behind (issue 15, point 1).
"""
import errno
import os
import shutil
import subprocess

import pytest

from proxy import RegistryProxy
from util import CHARTS, HELM_CHART

TOOLS = {
    "cp": lambda src, dst: ["cp", src, dst],
    "cp -p": lambda src, dst: ["cp", "-p", src, dst],
    "cp -a": lambda src, dst: ["cp", "-a", src, dst],
    "install -m 644": lambda src, dst: ["install", "-m", "644", src, dst],
    "shutil.copy": lambda src, dst: ["/usr/bin/python3", "-c",
                                     "import shutil, sys; shutil.copy(*sys.argv[1:])", src, dst],
    "shutil.copy2": lambda src, dst: ["/usr/bin/python3", "-c",
                                      "import shutil, sys; shutil.copy2(*sys.argv[1:])", src, dst],
    "rsync -a": lambda src, dst: ["rsync", "-a", src, dst],
    "cat >": lambda src, dst: ["sh", "-c", 'cat "$0" > "$1/$(basename "$0")"', src, dst],
}


@pytest.fixture
def proxied(registry_factory, mount):
    """A fresh registry behind a counting proxy, and a mount of the proxy."""
    reg = registry_factory()
    with RegistryProxy(reg.host) as proxy:
        yield reg, proxy, mount(proxy.host)


def manifest_puts(proxy, repo):
    return proxy.count("/v2/%s/manifests/" % repo, method="PUT")


def visible(m, rel):
    """What a listing of rel shows."""
    return sorted(os.listdir(m.path(rel)))


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_copy_tool_publishes_once_and_exits_0(proxied, packages, tool):
    if tool == "rsync -a" and not shutil.which("rsync"):
        pytest.skip("rsync is not installed")
    reg, proxy, m = proxied
    os.mkdir(m.path("ns"))
    src = packages["web-1.0.0"]
    for attempt in (1, 2):  # the second time, the name is the one just written
        r = subprocess.run(TOOLS[tool](src, m.path("ns")), capture_output=True, text=True)
        assert r.returncode == 0, (attempt, r.stderr)
        assert reg.tags("ns/web") == ["1.0.0"]
        assert manifest_puts(proxy, "ns/web") == attempt
    man, _, _ = reg.manifest("ns/web", "1.0.0")
    assert [l["mediaType"] for l in man["layers"]] == [HELM_CHART]
    # Only the repository: no file name of the copy, no temporary name.
    assert visible(m, "ns") == ["web"]
    assert visible(m, "ns/web") == ["1.0.0", "web-1.0.0.tgz"]


@pytest.mark.parametrize("helm_name", ["helm3", "helm4"])
def test_helm_pull_into_the_mount_publishes(proxied, packages, request, helm_name):
    """helm pull -d writes web-1.0.0.tgz<random>, chmods it, then renames it."""
    helm = request.getfixturevalue(helm_name)
    reg, proxy, m = proxied
    helm.push(packages["web-1.0.0"], reg.host, "src")
    os.mkdir(m.path("dst"))
    helm.run("pull", "oci://%s/src/web" % reg.host, "--version", "1.0.0", "--plain-http",
             "-d", m.path("dst"))
    assert reg.tags("dst/web") == ["1.0.0"]
    assert manifest_puts(proxy, "dst/web") == 1
    assert visible(m, "dst") == ["web"]
    layer = reg.chart_layer("dst/web", "1.0.0")
    assert reg.blob("dst/web", layer["digest"]) == open(packages["web-1.0.0"], "rb").read()


def test_helm_package_into_the_mount_publishes(proxied, helm4):
    reg, proxy, m = proxied
    os.mkdir(m.path("pkg"))
    helm4.run("package", os.path.join(CHARTS, "web"), "-d", m.path("pkg"))
    assert reg.tags("pkg/web") == ["1.0.0"]
    assert manifest_puts(proxy, "pkg/web") == 1
    assert visible(m, "pkg") == ["web"]


def test_rsync_of_a_signed_chart_publishes_the_provenance_too(proxied, helm4, tmp_path):
    """rsync's temporary names (.web-1.0.0.tgz.prov.XXXXXX) say nothing of
    what a file is: a provenance file is known by its content."""
    if not shutil.which("rsync") or not shutil.which("gpg"):
        pytest.skip("rsync or gpg is not installed")
    from util import signed_package
    tgz, prov = signed_package(helm4, tmp_path)
    reg, proxy, m = proxied
    os.mkdir(m.path("ns"))
    r = subprocess.run(["rsync", "-a", tgz, prov, m.path("ns")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man, _, _ = reg.manifest("ns/web", "1.0.0")
    assert len(man["layers"]) == 2
    assert visible(m, "ns") == ["web"]


def test_attribute_changes_elsewhere_stay_refused(proxied, packages):
    """Only the file a tool just wrote takes them; a package nobody is
    writing, a tag or a rename out of the upload's directory does not."""
    reg, proxy, m = proxied
    os.makedirs(m.path("ns/other"))
    src = packages["web-1.0.0"]
    assert subprocess.run(["cp", src, m.path("ns")]).returncode == 0
    pkg = m.path("ns/web/web-1.0.0.tgz")
    for op, args in ((os.chmod, (pkg, 0o600)), (os.utime, (pkg, None)),
                     (os.rename, (pkg, m.path("ns/web/web-2.0.0.tgz"))),
                     (os.rename, (m.path("ns/web-1.0.0.tgz"), m.path("ns/other/x.tgz")))):
        with pytest.raises(OSError) as e:
            op(*args)
        assert e.value.errno == errno.EROFS, op
    assert reg.tags("ns/web") == ["1.0.0"]
    # rm of the name the copy wrote forgets that name, not the tag.
    os.unlink(m.path("ns/web-1.0.0.tgz"))
    assert not os.path.exists(m.path("ns/web-1.0.0.tgz"))
    assert reg.tags("ns/web") == ["1.0.0"]


def test_a_failed_push_leaves_no_name(proxied, packages):
    reg, proxy, m = proxied
    os.mkdir(m.path("ns"))
    proxy.fail(r"/manifests/", status=500, times=10, method="PUT")
    r = subprocess.run(["cp", "-p", packages["web-1.0.0"], m.path("ns")], capture_output=True)
    assert r.returncode != 0
    assert not os.path.exists(m.path("ns/web-1.0.0.tgz"))
    assert reg.tags("ns/web") == []


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_copy_tool_into_a_repository_directory(proxied, packages, tool):
    """The README's `cp web-0.3.0.tgz /mnt/registry/charts/test/web/`, with
    every copy tool: the target is the chart's own repository."""
    if tool == "rsync -a" and not shutil.which("rsync"):
        pytest.skip("rsync is not installed")
    reg, proxy, m = proxied
    os.mkdir(m.path("into"))
    first, second = packages["helm-oci-test-0.1.0"], packages["helm-oci-test-0.2.0"]
    r = subprocess.run(TOOLS["cp"](first, m.path("into")), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    repo = m.path("into", "helm-oci-test")
    r = subprocess.run(TOOLS[tool](second, repo), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + m.log()
    assert reg.tags("into/helm-oci-test") == ["0.1.0", "0.2.0"]
    assert visible(m, "into/helm-oci-test") == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                                                "helm-oci-test-0.2.0.tgz"]
