"""What the kernel may cache, and when it must let go (fs/ll.c, issue 5).

chartfs lets the kernel keep a chart's entries, attributes, pages and
listings for good, and names above the charts for the ttl. These tests check
the user never sees the price: a tag moved to another digest shows its new
tree after the ttl, whichever way it was looked at before (ls -l, a cached
listing, an open file); inode numbers come from digests, so they are the same
across remounts and change when the content does; a listing cached by the
kernel takes a push through the mount at once, and SIGHUP drops it.
"""
import os
import signal
import subprocess
import time

from util import copy_chart, ls


def test_moved_tag_shows_its_new_tree_after_the_ttl(registry_factory, mount, helm4,
                                                    chart_dirs, tmp_path):
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, ttl=1)
    repo = m.path("charts/helm-oci-test")
    tag = os.path.join(repo, "0.1.0")
    # Every way the kernel could hold on to the old tree: attributes by
    # READDIRPLUS, the tag's listing, a file's attributes and pages, and a
    # missing name.
    os.system("ls -l %s >/dev/null" % repo)
    old_names = ls(tag)
    old_ino = os.stat(tag).st_ino
    old_values = open(os.path.join(tag, "values.yaml")).read()
    assert not os.path.exists(os.path.join(tag, "NOTES.md"))

    changed = copy_chart(chart_dirs["helm-oci-test-0.1.0"], str(tmp_path / "helm-oci-test"))
    with open(os.path.join(changed, "values.yaml"), "a") as f:
        f.write("extra: true\n")
    with open(os.path.join(changed, "NOTES.md"), "w") as f:
        f.write("new\n")
    helm4.push(helm4.package(changed, str(tmp_path / "pkg")), reg.host, "charts")
    time.sleep(2.2)

    os.system("ls -l %s >/dev/null" % repo)  # the new digest comes by READDIRPLUS
    assert ls(tag) == sorted(old_names + ["NOTES.md"])
    assert open(os.path.join(tag, "values.yaml")).read() == old_values + "extra: true\n"
    assert os.path.getsize(os.path.join(tag, "values.yaml")) == len(old_values) + 12
    assert open(os.path.join(tag, "NOTES.md")).read() == "new\n"
    assert os.stat(tag).st_ino != old_ino


def test_inode_numbers_come_from_digests(registry_factory, mount, helm4, chart_dirs):
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts")
    helm4.push_chart(chart_dirs["helm-oci-test-0.2.0"], reg.host, "charts")
    names = ["charts", "charts/helm-oci-test", "charts/helm-oci-test/0.1.0",
             "charts/helm-oci-test/0.1.0/Chart.yaml", "charts/helm-oci-test/0.2.0/Chart.yaml",
             "charts/helm-oci-test/helm-oci-test-0.1.0.tgz"]
    first = mount(reg.host)
    inos = [os.stat(first.path(n)).st_ino for n in names]
    # READDIR's d_ino agrees with stat.
    with os.scandir(first.path("charts/helm-oci-test/0.1.0")) as it:
        for e in it:
            assert e.inode() == os.stat(e.path).st_ino, e.name
    second = mount(reg.host, name="second")
    assert [os.stat(second.path(n)).st_ino for n in names] == inos
    assert len(set(inos)) == len(inos)


def test_push_through_the_mount_is_listed_at_once(registry_factory, mount, packages):
    reg = registry_factory()
    m = mount(reg.host, ttl=600)
    os.makedirs(m.path("team/new"))
    assert ls(m.path("team")) == ["new"]
    assert ls(m.path("team/new")) == []  # the kernel keeps this for the ttl...
    r = subprocess.run(["cp", packages["web-1.0.0"], m.path("team/new/")])
    assert r.returncode == 0
    assert ls(m.path("team/new")) == ["web"]  # ...but a push drops it
    assert ls(m.path("team/new/web")) == ["1.0.0", "web-1.0.0.tgz"]
    assert ls(m.path("team")) == ["new"]


def test_sighup_drops_cached_listings(registry_factory, mount, helm4, chart_dirs):
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.1.0"], reg.host, "charts")
    m = mount(reg.host, ttl=600)
    assert ls(m.path("charts")) == ["helm-oci-test"]
    helm4.push_chart(chart_dirs["web"], reg.host, "charts")
    assert ls(m.path("charts")) == ["helm-oci-test"]  # trusted for the ttl
    os.kill(m.pid, signal.SIGHUP)
    deadline = time.time() + 5
    while ls(m.path("charts")) != ["helm-oci-test", "web"]:
        assert time.time() < deadline, ls(m.path("charts"))
        time.sleep(0.05)


def test_a_chart_listing_and_a_lookup_give_the_same_attributes(registry_factory, mount,
                                                               helm4, chart_dirs):
    """A chart's listing carries full attributes (so a first walk costs no
    LOOKUP per file); they must be the very ones a lookup gives."""
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.2.0"], reg.host, "charts")
    rel = "charts/helm-oci-test/0.2.0"

    def attrs(st):
        return (st.st_ino, st.st_mode, st.st_size, st.st_nlink, st.st_uid, st.st_mtime)

    listed = {}
    first = mount(reg.host)
    for d, dirs, files in os.walk(first.path(rel)):  # READDIRPLUS, then stat from it
        for name in dirs + files:
            p = os.path.join(d, name)
            listed[os.path.relpath(p, first.path(rel))] = attrs(os.lstat(p))
    first.unmount()
    assert "Chart.yaml" in listed and "templates" in listed

    second = mount(reg.host)  # a fresh kernel: each name looked up on its own
    looked_up = {name: attrs(os.lstat(os.path.join(second.path(rel), name)))
                 for name in listed}
    assert looked_up == listed
