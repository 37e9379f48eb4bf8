"""The minimal parallel client of the benchmark's far rows: what a program
that knows the protocol and keeps N requests in flight needs to fetch and
unpack every chart of a namespace (catalog, then per repository its tag
list, each tag's manifest and chart blob, on one kept-alive connection per
worker).

    minclient.py --registry HOST:PORT --ns NAMESPACE --out DIR [--parallel N]
                 [--cafile PEM]

Stdlib only: http.client in N threads.
"""
import argparse
import concurrent.futures
import http.client
import io
import json
import os
import ssl
import sys
import tarfile
import threading

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


class Client:
    def __init__(self, host, cafile):
        self.host = host
        self.ctx = ssl.create_default_context(cafile=cafile) if cafile else None
        self.local = threading.local()

    def get(self, path, accept=None):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.ctx:
                conn = http.client.HTTPSConnection(self.host, context=self.ctx, timeout=60)
            else:
                conn = http.client.HTTPConnection(self.host, timeout=60)
            self.local.conn = conn
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("GET %s: %d" % (path, r.status))
        return body


def fetch_repo(c, repo, out):
    tags = json.loads(c.get("/v2/%s/tags/list" % repo)).get("tags") or []
    for tag in tags:
        man = json.loads(c.get("/v2/%s/manifests/%s" % (repo, tag), OCI_MANIFEST))
        for layer in man.get("layers", []):
            if layer.get("mediaType") != HELM_CHART:
                continue
            tgz = c.get("/v2/%s/blobs/%s" % (repo, layer["digest"]))
            dest = os.path.join(out, repo, tag)
            os.makedirs(dest, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
                tar.extractall(dest)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True)
    ap.add_argument("--ns", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--cafile")
    a = ap.parse_args()
    c = Client(a.registry, a.cafile)
    repos = [r for r in json.loads(c.get("/v2/_catalog?n=1000"))["repositories"]
             if r.startswith(a.ns + "/")]
    with concurrent.futures.ThreadPoolExecutor(a.parallel) as ex:
        for f in [ex.submit(fetch_repo, c, r, a.out) for r in repos]:
            f.result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
