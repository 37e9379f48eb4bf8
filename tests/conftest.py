"""Fixtures: a real registry seeded by real helm, and chartfs mounts."""
import os
import subprocess

import pytest

from util import CHARTS, ROOT, Helm, Mount, Registry, sanitizer_reports

BUILD = os.environ.get("CHARTFS_BUILD", "build")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests skipped in the ASan pass")


@pytest.fixture(scope="session")
def build_dir():
    d = os.path.join(ROOT, BUILD)
    assert os.path.exists(os.path.join(d, "fs", "chartfs")), "build first: scripts/build.sh"
    return d


@pytest.fixture(scope="session")
def chartfs_bin(build_dir):
    return os.path.join(build_dir, "fs", "chartfs")


def _helm(name, tmp_path_factory):
    binary = os.path.join(ROOT, ".tools", name)
    if not os.path.exists(binary):
        subprocess.run([os.path.join(ROOT, "scripts", "helm.sh")], check=True)
    return Helm(binary, str(tmp_path_factory.mktemp(name)))


@pytest.fixture(scope="session")
def helm3(tmp_path_factory):
    return _helm("helm3", tmp_path_factory)


@pytest.fixture(scope="session")
def helm4(tmp_path_factory):
    return _helm("helm4", tmp_path_factory)


@pytest.fixture(scope="session")
def packages(helm4, tmp_path_factory):
    """The example charts packaged once: name-version -> .tgz path."""
    out = str(tmp_path_factory.mktemp("packages"))
    pk = {}
    for d in sorted(os.listdir(CHARTS)):
        path = helm4.package(os.path.join(CHARTS, d), out)
        pk[os.path.basename(path)[:-4]] = path
    return pk


@pytest.fixture
def registry_factory(tmp_path):
    regs = []

    def make(**kw):
        r = Registry(str(tmp_path / ("registry%d" % len(regs))), **kw)
        regs.append(r)
        return r

    yield make
    for r in regs:
        r.stop()


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, helm3, helm4, packages):
    """A registry as a user would have it, pushed by both helm versions:
    charts/test/helm-oci-test 0.1.0 (helm v3) and 0.2.0 (helm v4),
    charts/test/web 1.0.0 (helm v4), a container image at charts/test:v1
    (so charts/test is a namespace and a repository) and other/image:latest."""
    reg = Registry(str(tmp_path_factory.mktemp("seeded")))
    helm3.push(packages["helm-oci-test-0.1.0"], reg.host, "charts/test")
    helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "charts/test")
    helm4.push(packages["web-1.0.0"], reg.host, "charts/test")
    image = [(b"not a chart layer", "application/vnd.oci.image.layer.v1.tar+gzip")]
    reg.push_artifact("charts/test", "v1", image,
                      annotations={"org.opencontainers.image.created": "2024-01-02T03:04:05Z"})
    reg.push_artifact("other/image", "latest", image)
    yield reg
    reg.stop()


@pytest.fixture
def mount(chartfs_bin, tmp_path):
    """mount(target, opts=(...), args=(...)) -> a ready Mount; unmounted after
    the test, which fails if the daemon died or a sanitizer reported."""
    mounts = []
    san = tmp_path / "sanitizers"
    san.mkdir()

    def make(target, opts=("plain_http",), args=(), cache_dir=None, check=True, name=None):
        mnt = str(tmp_path / (name or "mnt%d" % len(mounts)))
        cache = cache_dir or str(tmp_path / ("cache%d" % len(mounts)))
        m = Mount(chartfs_bin, target, mnt, cache, opts=opts, args=args,
                  sanitizer_dir=str(san), check=check)
        mounts.append(m)
        return m

    yield make
    died = [m.mnt for m in mounts if m.mounted and not m.alive()]
    for m in mounts:
        m.unmount()
    assert not died, "chartfs died while mounted: %s" % died
    reports = sanitizer_reports(str(san))
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)
