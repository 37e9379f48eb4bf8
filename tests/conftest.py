"""Fixtures: real registries seeded by real helm, and chartfs mounts.

Session-scoped where tests only read (one registry pushed once, one shared
mount); per-test registries and mounts where state matters (ttl, caches,
request counts, writes).
"""
import os
import subprocess

import pytest

from util import CHARTS, OCI_LAYER, ROOT, TOOLS, Helm, Mounts, Registry, isolated_env

BUILD = os.environ.get("CHARTFS_BUILD", "build")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests, skipped in the ASan/UBSan pass")


@pytest.fixture(scope="session")
def build_dir():
    d = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
    assert os.path.isdir(d), "no build at %s: run scripts/build.sh" % d
    return d


@pytest.fixture(scope="session")
def chartfs_bin(build_dir):
    b = os.path.join(build_dir, "fs", "chartfs")
    assert os.access(b, os.X_OK), "%s missing: run scripts/build.sh" % b
    return b


def _helm(name, tmp_path_factory):
    binary = os.path.join(TOOLS, name)
    if not os.access(binary, os.X_OK):
        subprocess.run([os.path.join(ROOT, "scripts", "helm.sh")], check=True)
    return Helm(binary, str(tmp_path_factory.mktemp(name)))


@pytest.fixture(scope="session")
def helm3(tmp_path_factory):
    return _helm("helm3", tmp_path_factory)


@pytest.fixture(scope="session")
def helm4(tmp_path_factory):
    return _helm("helm4", tmp_path_factory)


@pytest.fixture(scope="session")
def chart_dirs():
    """name -> source dir of the example charts (tests/charts/)."""
    return {d: os.path.join(CHARTS, d) for d in sorted(os.listdir(CHARTS))}


@pytest.fixture(scope="session")
def packages(helm4, chart_dirs):
    """The example charts packaged once by helm v4: "name-version" -> .tgz."""
    out = {}
    for d in chart_dirs.values():
        path = helm4.package(d)
        out[os.path.basename(path)[:-len(".tgz")]] = path
    return out


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """The environment chartfs runs in: no user config or credentials."""
    return isolated_env(str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def registry_factory(tmp_path):
    """make() -> a fresh, empty Registry, stopped after the test."""
    regs = []

    def make(**kw):
        r = Registry(str(tmp_path / ("registry%d" % len(regs))), **kw)
        regs.append(r)
        return r

    yield make
    for r in regs:
        r.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory, helm3, helm4, chart_dirs):
    """The registry most read tests share, as a user would have it, pushed
    by both helm versions:
      charts/test/helm-oci-test  0.1.0 by helm v3, 0.2.0 by helm v4
      charts/rev/helm-oci-test   0.1.0 by helm v4, 0.2.0 by helm v3
      charts/test/web            1.0.0 by helm v4 (subchart, <>& in description)
      other/web                  1.0.0 by helm v3
      charts/test:v1             an OCI image: charts/test is a namespace and a repository
      other/image:latest         an OCI image
    Tests must not change it (use registry_factory for that)."""
    reg = Registry(str(tmp_path_factory.mktemp("registry")))
    v1, v2, web = (chart_dirs[n] for n in ("helm-oci-test-0.1.0", "helm-oci-test-0.2.0", "web"))
    helm3.push_chart(v1, reg.host, "charts/test")
    helm4.push_chart(v2, reg.host, "charts/test")
    helm4.push_chart(v1, reg.host, "charts/rev")
    helm3.push_chart(v2, reg.host, "charts/rev")
    helm4.push_chart(web, reg.host, "charts/test")
    helm3.push_chart(web, reg.host, "other")
    reg.push_artifact("charts/test", "v1", [(b"image layer", OCI_LAYER)],
                      annotations={"org.opencontainers.image.created": "2024-01-02T03:04:05Z",
                                   "com.example.kind": "image"})
    reg.push_artifact("other/image", "latest")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def seeded(registry):
    """Older name of `registry`."""
    return registry


def _finish(mounts):
    problems = mounts.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def mount(chartfs_bin, tmp_path, env):
    """mount(target, ttl=30, opts=(), args=(), cache_dir=None, check=True)
    -> a ready util.Mount of `chartfs -o plain_http,cache_dir=..,ttl=..`.
    Unmounted after the test, which fails if the daemon died, would not exit,
    or a sanitizer wrote a report."""
    mounts = Mounts(chartfs_bin, str(tmp_path / "mounts"), env)
    yield mounts.mount
    _finish(mounts)


@pytest.fixture(scope="module")
def shared_mount(chartfs_bin, registry, tmp_path_factory, env):
    """One mount of `registry` for a module's tests that only read (long
    ttl: nothing changes under it). Its checks (crash, sanitizer reports)
    show as an error of the module's last test."""
    mounts = Mounts(chartfs_bin, str(tmp_path_factory.mktemp("shared")), env)
    yield mounts.mount(registry.host, ttl=600)
    _finish(mounts)
