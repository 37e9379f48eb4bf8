"""Safe against a broken registry and a killed daemon (issue 14, points 5,
7 and 8).

A stalled registry must not hold `ls` of what was listed before: an expired
listing, tag list or tag digest is served at once while one background
refresh asks again (stale-while-revalidate). A tag re-pushed through the
mount shows its new chart at once, though the kernel held the old tree. A
daemon killed in the middle of a push leaves its spool (a whole package) in
the cache dir: the next mount removes it, but never a spool another live
daemon sharing the cache dir is using.
"""
import errno
import os
import signal
import subprocess
import time

from util import copy_chart, ls, read, tmp_entries


def _timed_ls(path):
    t = time.time()
    names = ls(path)
    return names, time.time() - t


def _requests(m):
    return int(os.getxattr(m.mnt, "user.chartfs.requests"))


def test_a_stalled_registry_serves_what_was_listed_at_once(registry_factory, mount, helm4,
                                                            packages):
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, ttl=2, opts=("io_timeout=5",))
    ns, repo = m.path("charts"), m.path("charts/helm-oci-test")
    tag = os.path.join(repo, "0.1.0")
    assert ls(ns) == ["helm-oci-test"]
    listing = ls(repo)
    assert listing == ["0.1.0", "helm-oci-test-0.1.0.tgz"]
    chart_yaml = read(os.path.join(tag, "Chart.yaml"))

    os.kill(reg.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)  # past the ttl: the model's names and the kernel's
        before = _requests(m)
        for _ in range(2):
            for path, want in ((ns, ["helm-oci-test"]), (repo, listing)):
                names, took = _timed_ls(path)
                assert names == want
                assert took < 1, "ls %s took %.1f s" % (path, took)
            t = time.time()
            assert os.path.isdir(tag)
            assert read(os.path.join(tag, "Chart.yaml")) == chart_yaml
            assert time.time() - t < 1
            time.sleep(2.5)
        # One refresh per name at a time, not one per access.
        assert _requests(m) - before <= 8, _requests(m) - before
    finally:
        os.kill(reg.proc.pid, signal.SIGCONT)

    # The registry is back: the first good answer replaces the old one.
    helm4.push(packages["helm-oci-test-0.2.0"], reg.host, "charts")
    want = ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz", "helm-oci-test-0.2.0.tgz"]
    deadline = time.time() + 30
    while ls(repo) != want:
        assert time.time() < deadline, ls(repo)
        time.sleep(0.2)
    assert b"version: 0.2.0" in read(os.path.join(repo, "0.2.0", "Chart.yaml"))


def test_a_tag_repushed_through_the_mount_shows_its_new_chart(registry_factory, mount,
                                                             helm4, chart_dirs, tmp_path):
    reg = registry_factory()
    src = chart_dirs["helm-oci-test-0.1.0"]
    pkgs = {}
    for word in ("first", "second"):
        d = copy_chart(src, str(tmp_path / word / "helm-oci-test"),
                       description="the %s push" % word)
        pkgs[word] = helm4.package(d, str(tmp_path / ("pkg-" + word)))
    m = mount(reg.host, ttl=600)
    os.makedirs(m.path("charts"))
    repo = m.path("charts/helm-oci-test")
    tag, pkg = os.path.join(repo, "0.1.0"), os.path.join(repo, "helm-oci-test-0.1.0.tgz")

    subprocess.run(["cp", pkgs["first"], m.path("charts/")], check=True)
    assert b"the first push" in read(os.path.join(tag, "Chart.yaml"))
    assert "Chart.yaml" in ls(tag)

    os.unlink(pkg)
    # The kernel let go of the deleted tag's directory (dropped just after
    # the UNLINK is answered, so allow it a moment).
    deadline = time.time() + 2
    while os.path.exists(tag):
        assert time.time() < deadline, "the deleted tag is still shown"
        time.sleep(0.01)

    subprocess.run(["cp", pkgs["second"], m.path("charts/")], check=True)
    _, digest, _ = reg.manifest("charts/helm-oci-test", "0.1.0")
    assert os.getxattr(pkg, "user.oci.digest").decode() == digest
    assert os.getxattr(tag, "user.oci.digest").decode() == digest
    chart_yaml = read(os.path.join(tag, "Chart.yaml"))
    assert b"the second push" in chart_yaml, chart_yaml
    assert read(pkg) == read(pkgs["second"])

    # The same, pushed into the repository directory over the old package.
    subprocess.run(["cp", pkgs["first"], pkg], check=True)
    assert b"the first push" in read(os.path.join(tag, "Chart.yaml"))


def test_a_push_into_a_namespace_shows_in_its_listed_repository(registry_factory, mount,
                                                                 packages):
    reg = registry_factory()
    m = mount(reg.host, ttl=600)
    os.makedirs(m.path("charts"))
    repo = m.path("charts/helm-oci-test")
    subprocess.run(["cp", packages["helm-oci-test-0.1.0"], m.path("charts/")], check=True)
    assert ls(repo) == ["0.1.0", "helm-oci-test-0.1.0.tgz"]  # kept by the kernel...
    subprocess.run(["cp", packages["helm-oci-test-0.2.0"], m.path("charts/")], check=True)
    assert ls(repo) == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz",
                        "helm-oci-test-0.2.0.tgz"]  # ...but a push drops it


def _spools(cache):
    return {n for n in tmp_entries(cache) if n.startswith("spool-")}


def test_spools_of_a_killed_daemon_go_at_the_next_mount(registry_factory, mount, packages,
                                                         tmp_path):
    reg = registry_factory()
    cache = str(tmp_path / "cache")
    data = read(packages["helm-oci-test-0.1.0"])

    killed = mount(reg.host, cache_dir=cache, name="killed")
    os.makedirs(killed.path("charts"))
    dead = open(killed.path("charts", "a.tgz"), "wb")
    dead.write(data[:len(data) // 2])
    dead.flush()
    dead_spool = _spools(cache)
    assert len(dead_spool) == 1, tmp_entries(cache)

    # Another daemon on the same cache dir, in the middle of a push too.
    live = mount(reg.host, cache_dir=cache, name="live")
    os.makedirs(live.path("charts"))
    writer = open(live.path("charts", "b.tgz"), "wb")
    writer.write(data[:len(data) // 2])
    writer.flush()
    live_spool = _spools(cache) - dead_spool
    assert len(live_spool) == 1, tmp_entries(cache)

    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.mounted = False  # killed on purpose
        try:
            dead.close()
        except OSError as e:
            assert e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO), e
        subprocess.run(["fusermount3", "-u", "-z", killed.mnt], capture_output=True,
                       timeout=20)
        deadline = time.time() + 10
        while killed.alive():
            assert time.time() < deadline
            time.sleep(0.02)
        assert _spools(cache) == dead_spool | live_spool  # nothing removes it by itself

        again = mount(reg.host, cache_dir=cache, name="again")
        assert _spools(cache) == live_spool
        assert ls(again.path()) == []

        # The live daemon's push was not disturbed.
        writer.write(data[len(data) // 2:])
    finally:
        writer.close()
    assert reg.tags("charts/helm-oci-test") == ["0.1.0"]
    deadline = time.time() + 5  # the RELEASE that removes it follows close
    while _spools(cache):
        assert time.time() < deadline, _spools(cache)
        time.sleep(0.05)
