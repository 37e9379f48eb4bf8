#!/usr/bin/env python3
"""Write the seed corpus under tests/fuzz/corpus/<target>/ (deterministic:
fixed mtimes, gzip without a timestamp, so re-running changes nothing).

    python3 tests/fuzz/gen_corpus.py

Files it does not write (crash-*, regressions added by hand after a fuzz run)
are left alone. Chart.yaml seeds are copied from tests/unit/data/chartmeta.
"""
import base64
import gzip
import io
import json
import os
import shutil
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "0123456789abcdef" * 4
D3 = "sha256:" + "f" * 64
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROV = "application/vnd.cncf.helm.chart.provenance.v1.prov"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

CHART_YAML = b"""apiVersion: v2
name: demo
version: 0.1.0
description: A chart for the fuzzer
appVersion: "1.0"
"""


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def js(o):
    return json.dumps(o, separators=(",", ":"))


def manifests():
    helm = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": D1, "size": 117},
        "layers": [{"mediaType": HELM_CHART, "digest": D2, "size": 3762}],
        "annotations": {
            "org.opencontainers.image.created": "2024-05-01T10:00:00Z",
            "org.opencontainers.image.description": "A Helm chart",
            "org.opencontainers.image.title": "demo",
            "org.opencontainers.image.version": "0.1.0",
        },
    }
    write("manifest", "helm-chart.json", js(helm))
    prov = json.loads(js(helm))
    prov["layers"].append({"mediaType": HELM_PROV, "digest": D3, "size": 900})
    write("manifest", "helm-chart-prov.json", js(prov))
    legacy = json.loads(js(helm))
    del legacy["mediaType"]
    legacy["layers"][0]["mediaType"] = "application/tar+gzip"
    write("manifest", "helm-legacy-layer.json", js(legacy))
    write("manifest", "helm-content-type.txt",
          "Content-Type: " + OCI_MANIFEST + "; charset=utf-8\n" + js(legacy))
    two = json.loads(js(helm))
    two["layers"].append(dict(two["layers"][0], digest=D3))
    write("manifest", "two-chart-layers.json", js(two))
    foreign = json.loads(js(helm))
    foreign["layers"][0]["urls"] = ["https://example.com/x.tgz"]
    write("manifest", "foreign-layer.json", js(foreign))
    image = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": D1, "size": 1469},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": D2, "size": 2813316}],
    }
    write("manifest", "docker-image.json", js(image))
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": D1, "size": 525,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": D2, "size": 525,
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }
    write("manifest", "index.json", js(index))
    write("manifest", "index-content-type.txt",
          "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json\n"
          + js({"schemaVersion": 2, "manifests": []}))
    artifact = {"mediaType": "application/vnd.oci.artifact.manifest.v1+json",
                "artifactType": "application/vnd.example+type",
                "blobs": [{"mediaType": HELM_CHART, "digest": D2, "size": 10}]}
    write("manifest", "artifact-blobs.json", js(artifact))
    bad = {
        "bad-digest-upper.json": dict(helm, config={"mediaType": HELM_CONFIG,
                                                    "digest": D1.upper(), "size": 1}),
        "bad-digest-path.json": dict(helm, layers=[{"mediaType": HELM_CHART,
                                                    "digest": "sha256:../x", "size": 1}]),
        "bad-digest-algo.json": dict(helm, layers=[{"mediaType": HELM_CHART,
                                                    "digest": "md5:" + "a" * 32, "size": 1}]),
        "bad-size-negative.json": dict(helm, layers=[{"mediaType": HELM_CHART,
                                                      "digest": D2, "size": -1}]),
        "bad-size-float.json": dict(helm, layers=[{"mediaType": HELM_CHART,
                                                   "digest": D2, "size": 1.5}]),
        "bad-schema-version.json": dict(helm, schemaVersion=1),
        "bad-media-type-ctl.json": dict(helm, mediaType="application/x\u0001y"),
        "bad-annotations-list.json": dict(helm, annotations=["a", "b"]),
        "bad-annotation-number.json": dict(helm, annotations={"a": 1}),
        "bad-urls-string.json": dict(helm, layers=[dict(helm["layers"][0], urls="x")]),
    }
    for name, o in bad.items():
        write("manifest", name, js(o))
    write("manifest", "broken-truncated.json", js(helm)[:97])
    write("manifest", "broken-not-object.json", "[1,2,3]")
    write("manifest", "broken-nested.json", "[" * 3000 + "]" * 3000)
    write("manifest", "broken-nul.json", b'{"schemaVersion":2,"mediaType":"a\\u0000b"}')
    write("manifest", "empty.json", "")


def tgz(entries, top="demo"):
    """entries: list of (name, data or TarInfo modifier)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for e in entries:
            name, data = e[0], e[1]
            kind = e[2] if len(e) > 2 else tarfile.REGTYPE
            ti = tarfile.TarInfo(name)
            ti.mtime = 1714557600
            ti.mode = 0o644
            ti.type = kind
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                ti.linkname = data
                t.addfile(ti)
            elif kind == tarfile.DIRTYPE:
                ti.mode = 0o755
                t.addfile(ti)
            elif kind in (tarfile.CHRTYPE, tarfile.FIFOTYPE):
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def charts():
    ok = [("demo/Chart.yaml", CHART_YAML), ("demo/values.yaml", b"replicas: 1\n"),
          ("demo/templates/cm.yaml", b"kind: ConfigMap\nmetadata:\n  name: x\n")]
    write("chart", "valid.tgz", tgz(ok))
    write("chart", "valid-dirs.tgz", tgz([("demo/", b"", tarfile.DIRTYPE),
                                          ("demo/templates/", b"", tarfile.DIRTYPE)] + ok))
    write("chart", "valid-requirements.tgz",
          tgz(ok + [("demo/requirements.yaml", b"dependencies:\n- name: a\n  version: 1.0.0\n")]))
    # The repo's own test chart, as helm package makes it.
    src = os.path.join(ROOT, "tests", "charts", "helm-oci-test-0.1.0")
    if os.path.isdir(src):
        files = []
        for dp, _, fns in sorted(os.walk(src)):
            for fn in sorted(fns):
                p = os.path.join(dp, fn)
                files.append(("helm-oci-test/" + os.path.relpath(p, src), open(p, "rb").read()))
        write("chart", "helm-oci-test.tgz", tgz(files))
    hostile = {
        "dotdot.tgz": ok + [("demo/../x", b"x")],
        "dotdot-deep.tgz": ok + [("demo/a/../../x", b"x")],
        "absolute.tgz": ok + [("/etc/x", b"x")],
        "drive.tgz": ok + [("demo/C:/x", b"x")],
        "backslash.tgz": ok + [("demo/a\\..\\..\\x", b"x")],
        "dot-name.tgz": ok + [("demo/./.", b"x")],
        "root-chart-yaml.tgz": [("Chart.yaml", CHART_YAML)],
        "two-tops.tgz": ok + [("other/Chart.yaml", CHART_YAML)],
        "symlink.tgz": ok + [("demo/etc", "/etc", tarfile.SYMTYPE),
                             ("demo/etc/passwd", b"x")],
        "symlink-up.tgz": ok + [("demo/up", "..", tarfile.SYMTYPE)],
        "hardlink.tgz": ok + [("demo/shadow", "../../etc/shadow", tarfile.LNKTYPE)],
        "hardlink-self.tgz": ok + [("demo/self", "demo/self", tarfile.LNKTYPE)],
        "device.tgz": ok + [("demo/null", b"", tarfile.CHRTYPE)],
        "fifo.tgz": ok + [("demo/fifo", b"", tarfile.FIFOTYPE)],
        "duplicate.tgz": ok + [("demo/values.yaml", b"again: 1\n")],
        "duplicate-chart-yaml.tgz": ok + [("demo/Chart.yaml", CHART_YAML)],
        "long-component.tgz": ok + [("demo/" + "a" * 300, b"x")],
        "long-path.tgz": ok + [("demo/" + "/".join(["abcdefghij"] * 420), b"x")],
        "no-chart-yaml.tgz": [("demo/values.yaml", b"a: 1\n")],
        "empty-chart-yaml.tgz": [("demo/Chart.yaml", b"")],
        "empty-archive.tgz": [],
    }
    for name, entries in hostile.items():
        write("chart", name, tgz(entries))
    # Sizes: a bomb too big for a seed is made by the fuzzer from these.
    write("chart", "zeros-1m.tgz", tgz(ok + [("demo/zeros", bytes(1 << 20))]))
    good = tgz(ok)
    write("chart", "truncated.tgz", good[: len(good) // 2])
    bad_crc = bytearray(good)
    bad_crc[-6] ^= 0xFF
    write("chart", "bad-crc.tgz", bytes(bad_crc))
    write("chart", "trailing-garbage.tgz", good + b"garbage" * 10)
    # A bare tar is padded to 10 KiB records; the end-of-archive blocks are enough.
    write("chart", "plain-tar.tar", gzip.decompress(good)[:5120])
    write("chart", "zip.zip", b"PK\x03\x04" + bytes(26) + b"Chart.yaml")
    write("chart", "xz.tgz", b"\xfd7zXZ\x00\x00" + bytes(32))
    write("chart", "empty", b"")


def headers():
    h = {
        "basic": 'Basic realm="Registry Realm"',
        "basic-bare": "Basic",
        "bearer": 'Bearer realm="https://auth.docker.io/token",'
                  'service="registry.docker.io",scope="repository:library/nginx:pull"',
        "bearer-ghcr": 'Bearer realm="https://ghcr.io/token",service="ghcr.io",'
                       'scope="repository:acme/chart:pull"',
        "bearer-scopes": 'Bearer realm="http://127.0.0.1:5001/auth",service="registry",'
                         'scope="repository:a/b:pull,push repository:c:pull registry:catalog:*"',
        "bearer-quoted-comma": 'Bearer realm="https://a.example/t?x=1,2",service="s, t"',
        "bearer-escapes": 'Bearer realm="https://a.example/\\"q\\"",service="a\\\\b"',
        "bearer-insufficient": 'Bearer realm="https://a.example/token",service="reg",'
                               'scope="repository:x:push",error="insufficient_scope"',
        "bearer-spaces": 'bearer   realm = "https://a.example/t" ,  service=reg ,,',
        "bearer-token68": "Bearer abc.def-ghi==",
        "bearer-unterminated": 'Bearer realm="https://a.example/t',
        "bearer-http-realm": 'Bearer realm="http://evil.example:80/token",service=x',
        "bearer-relative-realm": 'Bearer realm="/token",service=x',
        "two-challenges": 'Basic realm="x", Bearer realm="https://a.example/t",service="s"',
        "negotiate": "Negotiate",
        "garbage": "\x01\x02==,,\"\"\"=\\",
        "empty": "",
        "link-relative": '</v2/_catalog?last=b&n=100>; rel="next"',
        "link-absolute": '<http://127.0.0.1:5000/v2/_catalog?last=b&n=100>; rel="next"',
        "link-foreign": '<https://evil.example/v2/_catalog?n=1>; rel="next"',
        "link-userinfo": '<http://user:pw@127.0.0.1:5000/v2/x>; rel="next"',
        "link-several": '</v2/a?n=1>; rel="prev", </v2/b?last=x&n=1>; rel=next; title="t"',
        "link-rel-list": '</v2/t/tags/list?last=1.0>; rel="first next"',
        "link-unquoted": "</v2/c?last=z>;rel=next",
        "link-malformed": '<</v2/c>>; rel="next"<',
        "link-no-gt": '</v2/c; rel="next"',
        "link-javascript": '<javascript:alert(1)>; rel="next"',
        "link-empty-target": '<>; rel="next"',
        "link-bws": '</v2/c?last=z> ; rel = "next"',
        "link-rel-quoted-param": '</v2/c>; title="x rel=next", </v2/d>; rel="prev"',
        "link-rel-twice": '</v2/c>; rel=prev; rel=next, </v2/d>; rel="last next"',
        "link-comma-in-quotes": '</v2/a>; title="a, <b>; rel=next", </v2/e>; rel="next"',
        "link-escapes": '</v2/f>; rel="ne\\xt"',
        "challenges-bearer-second": 'Basic realm="x", Bearer realm="https://a/token",'
                                    'service="s",scope="repository:a:pull"',
        "challenges-unknown-first": 'Negotiate abc==, Basic realm="r"',
        "challenges-three": 'Newauth realm="apps", type=1, title="Login", '
                            'Basic realm="simple", Bearer realm="https://t/x"',
        "challenges-stray": '=x, "q", realm=y, Basic',
    }
    for name, v in h.items():
        write("headers", name, v)


def creds():
    def b64(s):
        return base64.b64encode(s.encode()).decode()

    up = {"auth": b64("alice:pa:ss")}
    c = {
        "auths-host": {"auths": {"ghcr.io": up}},
        "auths-host-port": {"auths": {"127.0.0.1:5000": {"auth": b64("u:p")}}},
        "auths-scheme": {"auths": {"https://ghcr.io": up, "http://127.0.0.1:5000/": up}},
        "auths-scheme-path": {"auths": {"https://GHCR.io/v1/": up}},
        "auths-docker-hub": {"auths": {"https://index.docker.io/v1/": up}},
        "auths-docker-hub-aliases": {"auths": {"docker.io": {"auth": b64("a:1")},
                                               "registry-1.docker.io": {"auth": b64("b:2")}}},
        "auths-user-pass": {"auths": {"ghcr.io": {"username": "u", "password": "p"}}},
        "auths-identitytoken": {"auths": {"ghcr.io": {"auth": b64("u:"),
                                                      "identitytoken": "refresh-token"}}},
        "auths-identitytoken-only": {"auths": {"ghcr.io": {"identitytoken": "rt"}}},
        "auths-auth-and-fields": {"auths": {"ghcr.io": dict(up, username="x", password="y")}},
        "auths-empty-entry": {"auths": {"ghcr.io": {}}, "credsStore": "desktop"},
        "auths-empty-auth": {"auths": {"ghcr.io": {"auth": "", "password": "p"}}},
        "auths-bad-base64": {"auths": {"ghcr.io": {"auth": "!!!!"}}},
        "auths-bad-base64-len": {"auths": {"ghcr.io": {"auth": "dTpwx"}}},
        "auths-base64-no-colon": {"auths": {"ghcr.io": {"auth": b64("user")}}},
        "auths-base64-nul": {"auths": {"ghcr.io": {"auth": base64.b64encode(b"u\0:p").decode()}}},
        "auths-base64-pad-only": {"auths": {"ghcr.io": {"auth": "===="}}},
        "auths-base64-spaces": {"auths": {"ghcr.io": {"auth": "    dTpw"}}},
        "auths-base64-huge": {"auths": {"ghcr.io": {"auth": b64("u:" + "p" * 6000)}}},
        "auths-not-object": {"auths": {"ghcr.io": "dTpw"}},
        "auths-list": {"auths": [{"ghcr.io": up}]},
        "auths-number-fields": {"auths": {"ghcr.io": {"auth": 1, "username": 2,
                                                      "password": 3}}},
        "auths-other-host": {"auths": {"evil.example": up, "ghcr.io.evil.example": up,
                                       "evil.example/x://ghcr.io": up}},
        "auths-userinfo-key": {"auths": {"https://user@ghcr.io": up}},
        "auths-long-key": {"auths": {"ghcr.io" + "/" * 400: up, "a" * 400: up}},
        "cred-helpers": {"credHelpers": {"ghcr.io": "gcloud", "127.0.0.1:5000": "pass"},
                         "auths": {"ghcr.io": up}},
        "cred-helpers-empty": {"credHelpers": {"ghcr.io": ""}, "auths": {"ghcr.io": up}},
        "cred-helpers-path": {"credHelpers": {"ghcr.io": "../../bin/sh"}},
        "cred-helpers-number": {"credHelpers": {"ghcr.io": 7}, "credsStore": ["x"]},
        "creds-store": {"credsStore": "desktop", "auths": {"https://index.docker.io/v1/": {}}},
        "creds-store-and-helpers": {"credsStore": "osxkeychain",
                                    "credHelpers": {"https://index.docker.io/v1/": "ecr-login"},
                                    "auths": {"127.0.0.1:5000": up}},
        "full-docker": {"auths": {"https://index.docker.io/v1/": {},
                                  "ghcr.io": up},
                        "credsStore": "desktop", "currentContext": "default",
                        "plugins": {"-x-cli-hints": {"enabled": "true"}},
                        "HttpHeaders": {"User-Agent": "Docker-Client"}},
    }
    for name, o in c.items():
        write("creds", name + ".json", js(o))
    write("creds", "empty.json", "")
    write("creds", "empty-object.json", "{}")
    write("creds", "not-object.json", "[1,2,3]")
    write("creds", "truncated.json", js(c["auths-host"])[:25])
    write("creds", "nested.json", '{"auths":' + "[" * 3000 + "]" * 3000 + "}")
    write("creds", "nul-escape.json", b'{"auths":{"ghcr.io":{"username":"a\\u0000b","password":"p"}}}')
    write("creds", "duplicate-keys.json",
          '{"auths":{"ghcr.io":{"auth":"%s"},"ghcr.io":{"auth":"!"}}}' % b64("u:p"))
    write("creds", "bom.json", b"\xef\xbb\xbf" + js(c["auths-host"]).encode())
    write("creds", "key-only.txt", "https://index.docker.io/v1/")


def chartmeta():
    src = os.path.join(ROOT, "tests", "unit", "data", "chartmeta")
    for fn in sorted(os.listdir(src)):
        if fn.endswith(".yaml"):
            shutil.copyfile(os.path.join(src, fn), os.path.join(CORPUS, "chartmeta", fn))
    write("chartmeta", "x-bom.yaml", b"\xef\xbb\xbf" + CHART_YAML)
    write("chartmeta", "x-alias-bomb.yaml",
          b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
          b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n"
          + CHART_YAML)
    write("chartmeta", "x-tabs-broken.yaml", b"name: a\n\tversion: 1\n")
    write("chartmeta", "x-flow.yaml", b"{apiVersion: v2, name: f, version: 1.2.3, "
          b"keywords: [a, b], maintainers: [{name: m, email: e@x}]}\n")


if __name__ == "__main__":
    os.makedirs(os.path.join(CORPUS, "chartmeta"), exist_ok=True)
    manifests()
    charts()
    headers()
    chartmeta()
    creds()
