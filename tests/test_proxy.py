"""The test proxy itself (tests/proxy.py), against a real registry and real
helm: mount tests rely on it forwarding verbatim, paging correctly, counting
and injecting faults as it says."""
import http.client
import json
import os
import urllib.parse

from proxy import RegistryProxy


def get(host, path, headers=None):
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Link"), r.read()
    finally:
        conn.close()


def walk(host, path, key):
    """Follow Link pages from path, as a client would; returns (items, pages)."""
    items, pages, url = [], 0, path
    while url:
        st, link, body = get(host, url)
        assert st == 200, (st, body)
        items += json.loads(body)[key]
        pages += 1
        if not link:
            break
        target = link.split(";")[0].strip()[1:-1]
        assert not target.startswith("http"), "the Link is relative"
        url = urllib.parse.urljoin(url, target)
    return items, pages


def test_pages_catalog_and_tags(registry_factory):
    reg = registry_factory()
    for i in range(5):
        reg.push_artifact("ns/r%d" % i, "latest")
    for i in range(6):
        reg.push_artifact("ns/r0", "t%d" % i)
    with RegistryProxy(reg.host, page=2) as proxy:
        repos, pages = walk(proxy.host, "/v2/_catalog?n=1000", "repositories")
        assert repos == sorted(reg.catalog()) and pages == 3
        tags, pages = walk(proxy.host, "/v2/ns/r0/tags/list", "tags")
        assert tags == reg.tags("ns/r0") and len(tags) == 7 and pages == 4
        # A smaller n from the client wins; last= starts after that name.
        st, link, body = get(proxy.host, "/v2/ns/r0/tags/list?n=1&last=t3")
        assert json.loads(body) == {"name": "ns/r0", "tags": ["t4"]}
        assert "last=t4" in link and "n=1" in link
        assert get(proxy.host, "/v2/nope/tags/list")[0] == 404
        assert proxy.count("/v2/ns/r0/tags/list") == 5


def test_forwards_helm_push_and_pull(registry_factory, helm3, helm4, chart_dirs, tmp_path):
    reg = registry_factory()
    with RegistryProxy(reg.host) as proxy:
        helm4.push_chart(chart_dirs["web"], proxy.host, "charts")
        helm3.push_chart(chart_dirs["helm-oci-test-0.1.0"], proxy.host, "charts")
        assert proxy.count("/v2/charts/web/blobs/uploads/", "POST") >= 1
        assert proxy.count("/v2/charts/web/manifests/1.0.0", "PUT") == 1
        tgz = helm3.pull(proxy.host, "charts/web", "1.0.0", str(tmp_path / "pull"))
        with open(tgz, "rb") as f:
            data = f.read()
        assert data == reg.blob("charts/web", reg.chart_layer("charts/web", "1.0.0")["digest"])
        assert os.path.isdir(helm4.pull_untar(proxy.host, "charts/helm-oci-test", "0.1.0",
                                              str(tmp_path / "untar")))
    assert reg.tags("charts/web") == ["1.0.0"]


def test_faults(registry_factory):
    reg = registry_factory()
    reg.push_artifact("a/b", "v1", [(b"x" * 100000, "application/octet-stream")])
    digest = reg.manifest("a/b", "v1")[0]["layers"][0]["digest"]
    path = "/v2/a/b/blobs/" + digest
    with RegistryProxy(reg.host) as proxy:
        proxy.fail("/blobs/", status=429, times=2, headers={"Retry-After": "1"})
        assert get(proxy.host, path)[0] == 429
        assert get(proxy.host, path)[0] == 429
        st, _, body = get(proxy.host, path)
        assert st == 200 and len(body) == 100000
        proxy.cut("/blobs/", after=1000)
        conn = http.client.HTTPConnection(proxy.host, timeout=30)
        conn.request("GET", path)
        r = conn.getresponse()
        try:
            got = r.read()
            assert len(got) < 100000
        except http.client.IncompleteRead as e:
            assert len(e.partial) == 1000
        conn.close()
        assert get(proxy.host, path)[0] == 200
        assert proxy.count(path) == 5
