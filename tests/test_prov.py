"""A chart's provenance is shown beside its package (issue 15, point 5a).

`cp x.tgz.prov` publishes helm's provenance layer; the mount shows it back
as `<repo>-<tag>.tgz.prov` when a manifest has that layer, byte for byte,
so `helm verify` of the mount's package works as on helm's own files.
"""
import errno
import os

from util import expect_errno, ls, read, run, signed_package


def test_prov_is_shown_and_helm_verify_passes(registry_factory, mount, helm4, tmp_path):
    reg = registry_factory()
    tgz, prov = signed_package(helm4, tmp_path)
    keyring = str(tmp_path / "secring.gpg")
    m = mount(reg.host)
    os.mkdir(m.path("charts"))
    for f in (tgz, prov):
        r = run("cp", f, m.path("charts/"))
        assert r.returncode == 0, r.stderr
    # A fresh mount on a cold cache: what the registry holds.
    m2 = mount(reg.host)
    repo = m2.path("charts/web")
    assert ls(repo) == ["1.0.0", "web-1.0.0.tgz", "web-1.0.0.tgz.prov"]
    pkg, sig = os.path.join(repo, "web-1.0.0.tgz"), os.path.join(repo, "web-1.0.0.tgz.prov")
    assert os.stat(sig).st_size == os.path.getsize(prov)
    assert read(sig) == read(prov)
    assert read(pkg) == read(tgz)
    r = helm4.run("verify", "--keyring", keyring, pkg, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # A package without provenance has none shown, nor by name.
    os.mkdir(m2.path("plain"))
    assert run("cp", str(tgz), m2.path("plain/")).returncode == 0
    assert ls(m2.path("plain/web")) == ["1.0.0", "web-1.0.0.tgz"]
    expect_errno(errno.ENOENT, os.stat, m2.path("plain/web/web-1.0.0.tgz.prov"))
    # The provenance copied again replaces itself: it is writable as the
    # package is, and the copy still exits 0.
    r = run("cp", prov, repo + "/")
    assert r.returncode == 0, r.stderr
    assert read(sig) == read(prov)
