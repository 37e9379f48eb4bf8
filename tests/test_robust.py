"""Robustness at the mount (issue 6): hostile or broken registries, a
registry that goes away or stalls, many concurrent readers, and a daemon
killed mid-download.

Everything runs against Debian's docker-registry and real FUSE mounts; faults
are injected by tests/proxy.py between chartfs and the registry. Each test
asserts what a user sees (errno of os calls, ls/cat/grep/helm results) and
what is left in the cache directory. The `mount` fixture fails any test
whose daemon died or whose sanitizer reported.
"""
import collections
import errno
import concurrent.futures
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time

import pytest

from proxy import RegistryProxy
from util import (CHARTS, cache_state, copy_chart, expect_errno, file_sha256, ls, member, read,
                  run, sha256, tmp_entries)

REPO = "charts/test/helm-oci-test"  # in the shared `registry` fixture
TMP_NAME = re.compile(r"^[a-z]+-[A-Za-z0-9]{6}$")  # blobcache's mkstemp/mkdtemp names


# --- hostile or broken registries, through the fault-injecting proxy ---------

@pytest.fixture
def proxied(registry, mount):
    """(proxy, mount) in front of the shared registry, with a fresh cache."""
    with RegistryProxy(registry.host) as proxy:
        yield proxy, mount(proxy.host, ttl=600)


def _layer(registry, tag="0.2.0"):
    layer = registry.chart_layer(REPO, tag)
    return layer, registry.blob(REPO, layer["digest"])


def test_blob_with_a_flipped_byte_is_eio_and_not_kept(registry, proxied):
    proxy, m = proxied
    layer, data = _layer(registry)
    proxy.flip("/blobs/" + layer["digest"], times=None)
    expect_errno(errno.EIO, read, m.path(REPO, "0.2.0", "Chart.yaml"))
    expect_errno(errno.EIO, read, m.path(REPO, "helm-oci-test-0.2.0.tgz"))
    assert proxy.count("/v2/%s/blobs/" % REPO, "GET") >= 1, proxy.requests()
    assert cache_state(m.cache_dir, layer["digest"][7:]) == (False, False)
    assert tmp_entries(m.cache_dir) == []
    # The registry heals: the next access fetches again and is served.
    proxy.clear_faults()
    assert read(m.path(REPO, "0.2.0", "Chart.yaml")) == member(data, "helm-oci-test/Chart.yaml")
    assert read(m.path(REPO, "helm-oci-test-0.2.0.tgz")) == data


def test_manifest_with_a_flipped_byte_is_eio(registry, proxied):
    proxy, m = proxied
    layer, data = _layer(registry)
    _, digest, body = registry.manifest(REPO, "0.2.0")
    proxy.flip(r"/manifests/0\.2\.0$", times=None)
    # The tag list is fine, so the tag is listed; its content is not served.
    assert "0.1.0" in ls(m.path(REPO))
    expect_errno(errno.EIO, os.listdir, m.path(REPO, "0.2.0"))
    expect_errno(errno.EIO, read, m.path(REPO, "0.2.0", "Chart.yaml"))
    expect_errno(errno.EIO, read, m.path(REPO, "helm-oci-test-0.2.0.tgz"))
    # Nothing was fetched on the word of a damaged manifest, nothing kept.
    assert proxy.count("/v2/%s/blobs/" % REPO, "GET") == 0, proxy.requests()
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0xff
    blobs = os.listdir(os.path.join(m.cache_dir, "blobs", "sha256"))
    assert sha256(bytes(flipped))[7:] not in blobs
    assert cache_state(m.cache_dir, layer["digest"][7:]) == (False, False)
    assert tmp_entries(m.cache_dir) == []
    # Other tags of the repository are served meanwhile.
    assert b"version: 0.1.0" in read(m.path(REPO, "0.1.0", "Chart.yaml"))
    proxy.clear_faults()
    assert read(m.path(REPO, "0.2.0", "Chart.yaml")) == member(data, "helm-oci-test/Chart.yaml")


def test_cut_blob_is_eio_and_not_kept(registry, proxied):
    proxy, m = proxied
    layer, data = _layer(registry)
    proxy.cut("/blobs/" + layer["digest"], after=len(data) // 2, times=None)
    t = time.time()
    expect_errno(errno.EIO, read, m.path(REPO, "0.2.0", "Chart.yaml"))
    assert time.time() - t < 15
    assert cache_state(m.cache_dir, layer["digest"][7:]) == (False, False)
    assert tmp_entries(m.cache_dir) == []
    proxy.clear_faults()
    assert read(m.path(REPO, "helm-oci-test-0.2.0.tgz")) == data


@pytest.mark.parametrize("status,times,where", [
    (500, 3, "blob"), (503, 3, "blob"), (503, 2, "manifest"), (502, 2, "tags"),
])
def test_transient_errors_are_retried(registry, proxied, status, times, where):
    proxy, m = proxied
    layer, data = _layer(registry)
    pattern = {"blob": "/blobs/" + layer["digest"], "manifest": r"/manifests/0\.2\.0$",
               "tags": "/%s/tags/list" % REPO}[where]
    proxy.fail(pattern, status=status, times=times, method="GET")
    if where == "tags":
        assert ls(m.path(REPO))[:2] == ["0.1.0", "0.2.0"]
    assert read(m.path(REPO, "0.2.0", "Chart.yaml")) == member(data, "helm-oci-test/Chart.yaml")
    hits = sum(1 for meth, p in proxy.requests() if meth == "GET" and re.search(pattern, p))
    assert hits == times + 1, proxy.requests()


def test_429_with_retry_after_is_honoured(registry, proxied):
    proxy, m = proxied
    layer, data = _layer(registry)
    proxy.fail("/blobs/" + layer["digest"], status=429, times=1, method="GET",
               headers={"Retry-After": "1"})
    t = time.time()
    assert read(m.path(REPO, "helm-oci-test-0.2.0.tgz")) == data
    assert 0.9 <= time.time() - t < 10
    assert proxy.count("/v2/%s/blobs/" % REPO, "GET") == 2, proxy.requests()


def test_hostile_tag_names_are_not_listed(registry, proxied):
    proxy, m = proxied
    good = registry.tags(REPO)
    bad = ["..", ".", "../x", "a/b", "x" * 129, "-dash", ".hidden", "a\\b", ""]
    proxy.reply("/v2/%s/tags/list" % REPO, {"name": REPO, "tags": good + bad}, method="GET")
    want = sorted(good + ["helm-oci-test-%s.tgz" % t for t in good])
    assert ls(m.path(REPO)) == want
    # ls -a sees "." and ".." once each: no tag posing as either.
    r = run("ls", "-a1", m.path(REPO), env=dict(os.environ, LC_ALL="C"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [".", ".."] + want
    assert ls(m.path(REPO, "0.1.0"))  # the good tags are served
    for name in ("x" * 129, "-dash", ".hidden", "a\\b"):
        with pytest.raises(OSError) as e:
            os.stat(m.path(REPO, name))
        assert e.value.errno in (errno.ENOENT, errno.ENAMETOOLONG), (name, e.value)
    assert not any("/manifests/" in p and not p.endswith(tuple(good))
                   for _, p in proxy.requests()), proxy.requests()


# --- the registry goes away --------------------------------------------------

def test_registry_stopped_during_use(registry_factory, mount, helm4, packages):
    reg = registry_factory()
    for p in ("helm-oci-test-0.1.0", "helm-oci-test-0.2.0", "web-1.0.0"):
        helm4.push(packages[p], reg.host, "charts")
    m = mount(reg.host, ttl=1)
    repo = m.path("charts/helm-oci-test")
    listing = ls(repo)
    assert listing == ["0.1.0", "0.2.0", "helm-oci-test-0.1.0.tgz", "helm-oci-test-0.2.0.tgz"]
    cached = read(m.path("charts/helm-oci-test/0.1.0/values.yaml"))
    pkg = read(m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz"))
    reg.stop()

    # Cached content is still served, cold content fails fast.
    assert read(m.path("charts/helm-oci-test/0.1.0/values.yaml")) == cached
    t = time.time()
    expect_errno(errno.EIO, read, m.path("charts/helm-oci-test/0.2.0/Chart.yaml"))
    assert time.time() - t < 30
    t = time.time()
    expect_errno(errno.EIO, os.listdir, m.path("charts/web/1.0.0"))
    assert time.time() - t < 30
    # Past the ttl: stale-if-error for the tag list and tag -> digest.
    time.sleep(2)
    assert ls(repo) == listing
    assert read(m.path("charts/helm-oci-test/0.1.0/values.yaml")) == cached
    assert read(m.path("charts/helm-oci-test/helm-oci-test-0.1.0.tgz")) == pkg
    assert m.alive()

    # Service resumes by itself.
    reg.restart()
    assert b"version: 0.2.0" in read(m.path("charts/helm-oci-test/0.2.0/Chart.yaml"))
    assert "Chart.yaml" in ls(m.path("charts/web/1.0.0"))

    # Unmounting never waits for the registry.
    reg.stop()
    t = time.time()
    r = subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    assert time.time() - t < 5
    m.mounted = False
    deadline = time.time() + 20
    while m.alive() and time.time() < deadline:
        time.sleep(0.05)
    assert not m.alive(), "chartfs did not exit after fusermount3 -u"
    assert not os.path.ismount(m.mnt)


def _help(chartfs_bin):
    r = run(chartfs_bin, "--help")
    return r.stdout + r.stderr


@pytest.mark.slow
def test_stalled_registry_is_eio_not_a_hang(chartfs_bin, registry, mount):
    if "io_timeout" not in _help(chartfs_bin):
        pytest.skip("needs -o io_timeout")
    layer, data = _layer(registry)
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, ttl=600, opts=("io_timeout=3",))
        assert "0.2.0" in ls(m.path(REPO))
        # Silent before the headers.
        proxy.stall("/blobs/" + layer["digest"], 60, times=None)
        box = {}

        def stalled_read():
            t = time.time()
            try:
                read(m.path(REPO, "0.2.0", "Chart.yaml"))
                box["errno"] = 0
            except OSError as e:
                box["errno"] = e.errno
            box["seconds"] = time.time() - t

        reader = threading.Thread(target=stalled_read)
        reader.start()
        time.sleep(0.5)
        # The rest of the mount answers meanwhile.
        t = time.time()
        assert b"version: 0.1.0" in read(m.path(REPO, "0.1.0", "Chart.yaml"))
        assert "0.2.0" in ls(m.path(REPO))
        assert time.time() - t < 3 and reader.is_alive()
        reader.join(30)
        assert box.get("errno") == errno.EIO, box
        assert box["seconds"] < 15, box
        # Silent in the middle of the body.
        proxy.clear_faults()
        proxy.stall("/blobs/" + layer["digest"], 60, times=None, after=len(data) // 2)
        t = time.time()
        expect_errno(errno.EIO, read, m.path(REPO, "helm-oci-test-0.2.0.tgz"))
        # Not a hang (the stall is 60 s): the kernel reads a page again
        # after a failed readahead, so this is two READs of two 3 s attempts
        # each, about 13 s; 15 was too tight for a loaded CI machine.
        assert time.time() - t < 30
        assert cache_state(m.cache_dir, layer["digest"][7:]) == (False, False)
        proxy.clear_faults()
        assert read(m.path(REPO, "helm-oci-test-0.2.0.tgz")) == data


# --- the daemon killed mid-download ------------------------------------------

def test_sigkill_during_download_leaves_nothing_half_committed(registry, mount, tmp_path):
    layer, data = _layer(registry)
    hexd = layer["digest"][7:]
    cache = str(tmp_path / "cache")
    with RegistryProxy(registry.host) as proxy:
        m = mount(proxy.host, ttl=600, cache_dir=cache)
        assert "0.2.0" in ls(m.path(REPO))
        proxy.stall("/blobs/" + layer["digest"], 5, after=len(data) // 2)
        reader = subprocess.Popen(["cat", m.path(REPO, "0.2.0", "Chart.yaml")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while proxy.count("/v2/%s/blobs/%s" % (REPO, layer["digest"]), "GET") == 0:
            assert time.time() < deadline, "the download never started"
            time.sleep(0.02)
        time.sleep(0.5)  # half the body is in chartfs's temp file
        in_flight = [n for n in tmp_entries(cache)
                     if os.path.isfile(os.path.join(cache, "tmp", n))]
        assert len(in_flight) == 1 and 0 < os.path.getsize(
            os.path.join(cache, "tmp", in_flight[0])) < len(data), in_flight
        os.kill(m.pid, signal.SIGKILL)
        m.mounted = False  # killed on purpose
        assert reader.wait(10) != 0
        subprocess.run(["fusermount3", "-u", "-z", m.mnt], capture_output=True, timeout=20)
        assert not os.path.ismount(m.mnt)
        # Nothing half-committed: no blob, no tree; leftovers only as temp names.
        assert cache_state(cache, hexd) == (False, False)
        for name in tmp_entries(cache):
            assert TMP_NAME.match(name), name
        for sub in ("blobs/sha256", "trees/sha256"):
            for name in os.listdir(os.path.join(cache, sub)):
                assert re.fullmatch("[0-9a-f]{64}", name), (sub, name)
        for name in os.listdir(os.path.join(cache, "blobs", "sha256")):
            path = os.path.join(cache, "blobs", "sha256", name)
            assert file_sha256(path) == "sha256:" + name, "blob %s is damaged" % name

        # A new daemon on the same cache serves the chart.
        proxy.clear_faults()
        m2 = mount(proxy.host, ttl=600, cache_dir=cache, name="again")
        assert read(m2.path(REPO, "0.2.0", "Chart.yaml")) == member(
            data, "helm-oci-test/Chart.yaml")
        assert read(m2.path(REPO, "helm-oci-test-0.2.0.tgz")) == data
        assert cache_state(cache, hexd) == (True, True)


# --- many readers ------------------------------------------------------------

EXTRA = [("helm-oci-test", "helm-oci-test-0.2.0", "1.0.%d" % i) for i in range(10)] + \
        [("web", "web", "2.0.%d" % i) for i in range(10)]
REMOVED = ("extra/helm-oci-test", "1.0.9")
ADDED = ("extra/web", "2.0.99")


def _norm_ls_lr(text, root):
    """ls -lR output without what differs between a mount and a local copy
    (modes, owners, dates, block totals, directory sizes)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("total "):
            continue
        if line.endswith(":") and line.startswith(root):
            out.append("DIR " + line[len(root):])
            continue
        f = line.split(None, 8)
        out.append("%s %s %s" % (f[0][0], f[4] if f[0][0] == "-" else "", f[8]))
    return out


def _local_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        out += [os.path.relpath(os.path.join(d, f), root) for f in sorted(files)]
    return out


@pytest.mark.slow
def test_many_readers_cold_and_warm_with_writer(registry_factory, mount, helm4, packages,
                                                tmp_path):
    t_setup = time.time()
    reg = registry_factory()
    pool = concurrent.futures.ThreadPoolExecutor(8)
    extra_pkgs = list(pool.map(
        lambda e: helm4.package(copy_chart(os.path.join(CHARTS, e[1]),
                                           str(tmp_path / "src" / ("%s-%s" % (e[0], e[2])) / e[0]),
                                           version=e[2]),
                                str(tmp_path / "pkg")), EXTRA + [("web", "web", ADDED[1])]))
    added_pkg = extra_pkgs.pop()
    pushes = [(packages[p], "charts/test") for p in
              ("helm-oci-test-0.1.0", "helm-oci-test-0.2.0", "web-1.0.0")]
    pushes += [(p, "extra") for p in extra_pkgs]
    list(pool.map(lambda a: helm4.push(a[0], reg.host, a[1]), pushes))
    charts = [("charts/test/helm-oci-test", "0.1.0"), ("charts/test/helm-oci-test", "0.2.0"),
              ("charts/test/web", "1.0.0")] + [("extra/" + n, v) for n, _, v in EXTRA]
    # The reference: what helm pull --untar makes of each.
    local = dict(zip(charts, pool.map(
        lambda c: helm4.pull_untar(reg.host, c[0], c[1], str(tmp_path / "local" / c[0] / c[1])),
        charts)))
    expect = {}
    for c, d in local.items():
        files = _local_files(d)
        expect[c] = {
            "files": files,
            "cat": b"".join(read(os.path.join(d, f)) for f in files),
            "grep": sorted(l[len(d):] for l in run("grep", "-rn", "name", d).stdout.splitlines()),
            "ls": _norm_ls_lr(run("ls", "-lR", d, env=dict(os.environ, LC_ALL="C")).stdout, d),
            "template": None,
        }
    for c, out in zip(charts, pool.map(lambda c: helm4.template(local[c]), charts)):
        expect[c]["template"] = out
    for c, e in expect.items():  # the comparisons below compare something
        assert "Chart.yaml" in e["files"] and e["grep"] and e["ls"], (c, e)
        assert "kind: Deployment" in e["template"], c
    layers = {c: reg.chart_layer(*c)["digest"] for c in charts}
    setup = time.time() - t_setup

    errors, seen_enoent = [], collections.Counter()
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, ttl=1)
        env = dict(helm4.env, LC_ALL="C")

        def check(c, kind):
            d = m.path(*c)
            removed = c == REMOVED
            if kind == "cat":
                r = subprocess.run(["cat"] + [os.path.join(d, f) for f in expect[c]["files"]],
                                   capture_output=True, timeout=120)
                ok, got, err = r.returncode == 0, r.stdout, r.stderr.decode()
                same = got == expect[c]["cat"]
            else:
                cmd = {"grep": ["grep", "-rn", "name", d], "ls": ["ls", "-lR", d],
                       "template": [helm4.binary, "template", "r", d]}[kind]
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
                ok, err = r.returncode == 0 and r.stderr == "", r.stderr
                if kind == "grep":
                    got = sorted(l[len(d):] for l in r.stdout.splitlines())
                    same = got == expect[c]["grep"]
                elif kind == "ls":
                    got = _norm_ls_lr(r.stdout, d)
                    same = got == expect[c]["ls"]
                else:
                    same = r.stdout == expect[c]["template"]
            if ok and same:
                return
            # The removed chart may vanish mid-walk: ENOENT, however the
            # tool words it ("No such file", helm's "no such file",
            # "not found", "Chart.yaml file is missing").
            low = err.lower()
            if removed and not ok and ("no such file" in low or "not found" in low or
                                       "is missing" in low):
                seen_enoent[kind] += 1
                return
            errors.append("%s %s:%s rc=%d same=%s: %s" % (kind, c[0], c[1], r.returncode,
                                                         same, err[:300]))

        def writer():
            try:
                time.sleep(0.5)
                r = run("cp", added_pkg, m.path("extra/"))
                if r.returncode:
                    errors.append("cp: " + r.stderr)
                time.sleep(0.5)
                os.unlink(m.path(REMOVED[0], "helm-oci-test-%s.tgz" % REMOVED[1]))
            except Exception as e:  # noqa: BLE001 - reported as a test failure
                errors.append("writer: %r" % e)

        def round_(with_writer):
            # Tasks in chart order: the kinds of one chart (and a second cat)
            # run at once in different threads, so cold charts are read
            # concurrently.
            q = queue.Queue()
            for c in charts:
                for kind in ("cat", "ls", "grep", "template", "cat"):
                    q.put((c, kind))

            def reader():
                while True:
                    try:
                        c, kind = q.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        check(c, kind)
                    except Exception as e:  # noqa: BLE001
                        errors.append("%s %s: %r" % (kind, c, e))

            threads = [threading.Thread(target=reader) for _ in range(16)]
            if with_writer:
                threads.append(threading.Thread(target=writer))
            t = time.time()
            for th in threads:
                th.start()
            for th in threads:
                th.join(180)
            assert not any(th.is_alive() for th in threads), "a reader hung"
            return time.time() - t

        cold = round_(True)
        gets = collections.Counter(p.split("?")[0].rsplit("/", 1)[-1]
                                   for meth, p in proxy.requests()
                                   if meth == "GET" and "/blobs/sha256:" in p)
        warm = round_(False)
        assert errors == [], "\n".join(errors)
        # One download per cold chart (the removed one may not have been read
        # before it went); none at all when warm.
        for c in charts:
            want = (0, 1) if c == REMOVED else (1,)
            assert gets[layers[c]] in want, (c, gets[layers[c]])
        assert max(gets.values()) == 1, gets
        gets2 = collections.Counter(p.split("?")[0].rsplit("/", 1)[-1]
                                    for meth, p in proxy.requests()
                                    if meth == "GET" and "/blobs/sha256:" in p)
        assert gets2 == gets, "warm reads downloaded again"
        # The writer's work is visible, and the removed tag is gone.
        assert ADDED[1] in reg.tags(ADDED[0]) and REMOVED[1] not in reg.tags(REMOVED[0])
        time.sleep(1.1)
        assert ADDED[1] in ls(m.path(ADDED[0]))
        assert REMOVED[1] not in ls(m.path(REMOVED[0]))
        assert read(m.path(ADDED[0], "web-%s.tgz" % ADDED[1])) == read(added_pkg)
        assert b"version: %s" % ADDED[1].encode() in read(m.path(*ADDED, "Chart.yaml"))
        print("many readers: setup %.1fs, cold %.1fs, warm %.1fs, enoent %s"
              % (setup, cold, warm, dict(seen_enoent)))


# --- doctored manifests, served by the proxy ---------------------------------

def _doctored(registry, kind, recorder_host):
    man, _, _ = registry.manifest(REPO, "0.2.0")
    if kind == "huge":
        man["annotations"] = {"pad": "x" * (5 * 1024 * 1024)}
    elif kind == "nested":
        return b'{"schemaVersion": 2, "layers": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    elif kind == "two-charts":
        man["layers"] = man["layers"] * 2
    elif kind == "no-chart":
        man["layers"] = []
    elif kind == "wrong-config":
        man["config"] = dict(man["config"], mediaType="application/vnd.oci.image.config.v1+json")
    else:  # "urls": a foreign layer, on a host that records what it is asked
        man["layers"][0] = dict(man["layers"][0], digest=sha256(b"elsewhere"),
                                urls=["http://%s/v2/elsewhere" % recorder_host])
    return json.dumps(man).encode()


@pytest.mark.parametrize("kind,want", [
    ("huge", errno.EIO), ("nested", errno.EIO),
    # Not a chart by helm's rules: an empty tag directory, no package.
    ("two-charts", []), ("no-chart", []), ("wrong-config", []), ("urls", []),
])
def test_doctored_manifest(registry, proxied, kind, want):
    proxy, m = proxied
    with RegistryProxy(registry.host) as recorder:
        body = _doctored(registry, kind, recorder.host)
        proxy.reply(r"/manifests/0\.2\.0$", body,
                    content_type="application/vnd.oci.image.manifest.v1+json")
        if isinstance(want, int):
            expect_errno(want, os.listdir, m.path(REPO, "0.2.0"))
        else:
            assert ls(m.path(REPO, "0.2.0")) == want
            assert "helm-oci-test-0.2.0.tgz" not in ls(m.path(REPO))
            # The manifest's metadata is still there for a user to read.
            assert os.getxattr(m.path(REPO, "0.2.0"), "user.oci.digest") == \
                sha256(body).encode()
        # No blob fetched on its word, nothing from the foreign host.
        assert not any("/blobs/" in p for _, p in proxy.requests()), proxy.requests()
        assert recorder.requests() == []
        # The rest of the repository is served.
        assert b"version: 0.1.0" in read(m.path(REPO, "0.1.0", "Chart.yaml"))
        assert m.alive()
