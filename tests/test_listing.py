"""Large chart directories (issue 14, point 4): a listing is gathered once
per listing pass and served by offset (fs/ll.c, fs/inodes.c), so `ls` grows
linearly with the entries; and the cache counts what a tree of many empty
files really costs (cache/evict.c), so such charts cannot pass cache_max
unseen."""
import io
import os
import stat
import subprocess
import tarfile
import threading
import time

import pytest


def big_chart(path, name, n, version="1.0.0", sub=0):
    """A helm chart package written by hand: Chart.yaml and templates/ with
    n empty files (and sub empty directories' worth of files under
    templates/sub/), under a top folder named after the chart."""
    chart_yaml = ("apiVersion: v2\nname: %s\nversion: %s\ntype: application\n"
                  % (name, version)).encode()
    with tarfile.open(path, "w:gz", compresslevel=1) as t:
        info = tarfile.TarInfo("%s/Chart.yaml" % name)
        info.size = len(chart_yaml)
        t.addfile(info, io.BytesIO(chart_yaml))
        for i in range(n):
            t.addfile(tarfile.TarInfo("%s/templates/f%06d.yaml" % (name, i)))
        for i in range(sub):
            t.addfile(tarfile.TarInfo("%s/templates/d%03d/x.yaml" % (name, i)))
    return path


def push(m, pkg, ns="big"):
    os.makedirs(m.path(ns), exist_ok=True)
    r = subprocess.run(["cp", pkg, m.path(ns) + "/"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def templates(m, name, version="1.0.0", ns="big"):
    return m.path(ns, name, version, "templates")


def expected(n, sub=0):
    return sorted(["f%06d.yaml" % i for i in range(n)] + ["d%03d" % i for i in range(sub)])


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory):
    work = tmp_path_factory.mktemp("pkgs")
    return {
        "small": big_chart(str(work / "small.tgz"), "small", 3000, sub=20),
        "k10": big_chart(str(work / "k10.tgz"), "k10", 10000),
        "k40": big_chart(str(work / "k40.tgz"), "k40", 40000),
        "k20": big_chart(str(work / "k20.tgz"), "k20", 20000),
    }


def timed_listdir(path):
    t = time.monotonic()
    names = os.listdir(path)
    return time.monotonic() - t, names


def test_listing_time_grows_linearly(registry_factory, mount, pkgs):
    reg = registry_factory()
    m = mount(reg.host)
    for k in ("k10", "k40"):
        push(m, pkgs[k])
    times = {}
    for k, n in (("k10", 10000), ("k40", 40000)):
        # Unpacked first (reading Chart.yaml), so only the listing is timed.
        assert b"name: " + k.encode() in open(os.path.join(templates(m, k), "..",
                                                          "Chart.yaml"), "rb").read()
        times[k], names = timed_listdir(templates(m, k))
        assert sorted(names) == expected(n)
    # Linear: 4x the entries, about 4x the time; gathering the whole
    # listing for every chunk made it 16x (7.7 s against 0.5 s here).
    assert times["k40"] < 8 * times["k10"] + 0.5, times


def check_entries(d, n, sub):
    """ls -f (names and d_type: READDIR after the first chunk) and ls -l
    (READDIRPLUS): every name once, with its type."""
    r = subprocess.run(["ls", "-f", d], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = [x for x in r.stdout.split("\n") if x and x not in (".", "..")]
    assert len(names) == len(set(names))
    assert sorted(names) == expected(n, sub)
    with os.scandir(d) as it:
        types = {e.name: e.is_dir(follow_symlinks=False) for e in it}
    assert sorted(types) == expected(n, sub)
    assert sorted(k for k, v in types.items() if v) == ["d%03d" % i for i in range(sub)]
    r = subprocess.run(["ls", "-l", d], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()[1:]  # "total N"
    assert len(lines) == n + sub
    assert sum(1 for x in lines if x.startswith("d")) == sub
    assert sum(1 for x in lines if x.startswith("-r--r--r--")) == n
    assert sorted(x.split()[-1] for x in lines) == expected(n, sub)
    st = os.lstat(os.path.join(d, "f000000.yaml"))
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0


def test_every_name_listed_once_with_its_type(registry_factory, mount, pkgs, tmp_path):
    # (ttl 0 asks the registry at every LOOKUP: ls -l of 3,000 names takes
    # minutes there, whatever the listing does.)
    reg = registry_factory()
    cache = str(tmp_path / "cache")
    m = mount(reg.host, name="w")  # a cache of its own: it listed before the push
    push(m, pkgs["small"])
    # A mount of its own per way of listing: the kernel keeps a chart's
    # listings, so a second listing in one mount never reaches chartfs.
    for first in ("names", "attributes"):
        r = mount(reg.host, cache_dir=cache, name=first)
        d = templates(r, "small")
        if first == "attributes":
            subprocess.run(["ls", "-l", d], capture_output=True, check=True)
        check_entries(d, 3000, 20)
    # A namespace directory, which follows the ttl: listed whole too.
    assert os.listdir(m.path("big")) == ["small"]


@pytest.mark.parametrize("ttl", [30, 0])
def test_concurrent_listers_see_whole_listings(registry_factory, mount, pkgs, tmp_path, ttl):
    reg = registry_factory()
    cache = str(tmp_path / "cache")
    w = mount(reg.host, name="w")
    push(w, pkgs["k20"])
    want = expected(20000)
    for round_ in range(2):
        m = mount(reg.host, ttl=ttl, cache_dir=cache, name="r%d%d" % (ttl, round_))
        d = templates(m, "k20")
        results, errors = [], []

        def lister(long):
            try:
                if long:
                    # READDIRPLUS all along (stat follows). With ttl 0 a
                    # stat the listing did not answer is a LOOKUP that asks
                    # the registry: only the types there.
                    with os.scandir(d) as it:
                        results.append(sorted(e.name for e in it
                                              if (e.stat().st_size == 0 if ttl else
                                                  not e.is_dir())))
                else:
                    results.append(sorted(os.listdir(d)))
            except OSError as e:
                errors.append(e)

        threads = [threading.Thread(target=lister, args=(i % 2 == 1,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(results) == 6
        for r in results:
            assert r == want


def cached(cache, kind, name):
    d = os.path.join(cache, kind, "sha256")
    return os.path.exists(os.path.join(d, name))


def test_empty_files_count_against_cache_max(registry_factory, mount, helm4, chart_dirs,
                                             pkgs, tmp_path):
    from util import sha256
    reg = registry_factory()
    helm4.push_chart(chart_dirs["helm-oci-test-0.2.0"], reg.host, "charts")
    w = mount(reg.host, name="w")
    push(w, pkgs["k20"])
    cache = str(tmp_path / "cache")
    m = mount(reg.host, opts=("cache_max=1M",), cache_dir=cache)
    small = m.path("charts/helm-oci-test/0.2.0/Chart.yaml")
    assert open(small).read()
    trees = os.listdir(os.path.join(cache, "trees", "sha256"))
    assert len(trees) == 1
    time.sleep(1.1)  # recency is an mtime: the small chart is older
    # 20,000 empty files count 20,000 * 4.5 KiB (90 MB), far over 1M: the
    # older chart goes, the new one (just made) stays.
    assert os.path.exists(os.path.join(templates(m, "k20"), "f019999.yaml"))
    digest = sha256(open(pkgs["k20"], "rb").read())[len("sha256:"):]
    assert cached(cache, "trees", digest)
    assert not cached(cache, "trees", trees[0]), "the older chart's tree was not evicted"
    assert sorted(os.listdir(templates(m, "k20"))) == expected(20000)
