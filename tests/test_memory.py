"""The daemon's memory stays flat as repositories grow (issue 19): a tag keeps
a compact record of its manifest (model.h), not the parsed JSON, and a big
listing gives its transient documents back (MODEL_TRIM_AFTER,
MODEL_MALLOC_ARENAS). The bound is the issue's: 16 MiB of VmRSS a second
after `ls -l` of a repository of 4,000 tags (37 MB before).
"""
import concurrent.futures
import json
import os
import time

import pytest

from util import CREATED, HELM_CHART, HELM_CONFIG, run

N_TAGS = 4000
RSS_GOAL_KIB = 16 * 1024
REPO = "mem/big"


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def sanitized(chartfs_bin):
    with open(chartfs_bin, "rb") as f:
        return b"__asan_init" in f.read()


def seed(reg, n):
    """n tags, each helm's manifest of one chart with its own version
    annotation (so its own digest), pushed by API 16 at a time."""
    cfg = reg.push_blob(REPO, b'{"name":"big","version":"1.0.0","apiVersion":"v2"}')
    layer = reg.push_blob(REPO, b"\x1f\x8b not read by a listing")

    def push(i):
        man = {"schemaVersion": 2,
               "config": {"mediaType": HELM_CONFIG, "digest": cfg["digest"],
                          "size": cfg["size"]},
               "layers": [{"mediaType": HELM_CHART, "digest": layer["digest"],
                           "size": layer["size"]}],
               "annotations": {CREATED: "2024-01-01T00:00:00Z",
                               "org.opencontainers.image.description":
                                   "A chart with many versions, as some repositories have",
                               "org.opencontainers.image.title": "big",
                               "org.opencontainers.image.version": "1.0.%d" % i}}
        reg.push_manifest(REPO, "1.0.%d" % i, json.dumps(man).encode())
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(push, range(n)))


@pytest.mark.slow
def test_listing_4000_tags_stays_within_16_mib(registry_factory, mount, chartfs_bin):
    if sanitized(chartfs_bin):
        pytest.skip("a sanitized daemon's memory says nothing of chartfs's")
    reg = registry_factory()
    seed(reg, N_TAGS)
    m = mount(reg.host, ttl=600)
    r = run("ls", "-l", m.path(REPO), timeout=300)
    assert r.returncode == 0, r.stderr
    # Each tag: its directory and its package.
    assert len(r.stdout.splitlines()) == 2 * N_TAGS + 1
    assert "big-1.0.3999.tgz" in r.stdout
    time.sleep(1)
    rss = vm_rss_kib(m.pid)
    print("VmRSS %.1f MiB a second after listing %d tags" % (rss / 1024.0, N_TAGS))
    assert rss <= RSS_GOAL_KIB, "VmRSS %.1f MiB after listing %d tags" % (rss / 1024.0,
                                                                          N_TAGS)
    # What a listing shows is still there: the created date, and the
    # annotations as xattrs.
    tag = m.path(REPO, "1.0.17")
    assert time.gmtime(os.stat(tag).st_mtime)[:3] == (2024, 1, 1)
    assert os.getxattr(tag, "user.oci.annotation.org.opencontainers.image.version") \
        == b"1.0.17"
    assert "user.oci.annotation.org.opencontainers.image.title" in os.listxattr(tag)
