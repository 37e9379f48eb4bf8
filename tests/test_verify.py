"""Only what trusted keys signed is shown (issue 17, "Verify").

-o verify_key=FILE[:FILE] shows a chart tag only when a cosign signature by
one of the keys covers its manifest digest, in either format cosign writes:
the tag scheme (sha256-<hex>.sig, simple signing) and Sigstore bundles
attached as OCI 1.1 referrers. -o keyring=FILE does the same with helm
provenance. A tag no key verifies is left out of listings and EACCES by
name, with one log line saying why.

Every signature here is made by an implementation chartfs did not write:
Python's `cryptography` for the tag scheme (the payload as cosign's Go code
serializes it), the Sigstore project's @sigstore/sign (node) for bundles,
`helm package --sign` for provenance. Charts are pushed by real helm to a
real registry (distribution 2.8, which has no referrers API: bundles go
through the referrers tag schema there, and through tests/proxy.py's
referrers mode for the API).
"""
import base64
import errno
import glob
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from proxy import RegistryProxy
from util import (CHARTS, OCI_IMAGE_CONFIG, OCI_MANIFEST, ROOT, TOOLS, copy_chart,
                  expect_errno, ls, read, run, sha256, signed_package)

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIG_ANN = "dev.cosignproject.cosign/signature"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
PREDICATE = "https://sigstore.dev/cosign/sign/v1"
XATTR = "user.chartfs.verified"
SIGSTORE = os.path.join(TOOLS, "sigstore", "node_modules")

NO_SIG = "no signature"
OTHER_KEY = "signed by another key"
OTHER_DIGEST = "signature for another digest"
BAD_SIG = "bad signature"
BROKEN = "broken signature or provenance"


# --- keys (cryptography) ----------------------------------------------------

class Key:
    """An ECDSA P-256 key pair, as `cosign generate-key-pair` makes."""

    def __init__(self):
        self.priv = ec.generate_private_key(ec.SECP256R1())
        pub = self.priv.public_key()
        self.pub_pem = pub.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        der = pub.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.fpr = "sha256:" + hashlib.sha256(der).hexdigest()
        self.priv_pem = self.priv.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())

    def sign(self, data):
        """base64 of the ASN.1 DER ECDSA-SHA256 signature, as cosign stores it."""
        return base64.b64encode(self.priv.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def key_file(tmp_path, name, *keys):
    path = tmp_path / name
    path.write_bytes(b"".join(k.pub_pem for k in keys))
    return str(path)


# --- cosign's tag scheme ------------------------------------------------------

def simple_signing_payload(host, repo, digest):
    """The payload as sigstore's Go code writes it (encoding/json, key order
    of its structs)."""
    return ('{"critical":{"identity":{"docker-reference":"%s/%s"},"image":'
            '{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},'
            '"optional":null}' % (host, repo, digest)).encode()


def push_tag_signatures(reg, repo, digest, layers):
    """Push sha256-<hex>.sig for digest: layers is [(payload, base64 signature)],
    one image-manifest layer each, as cosign v2 writes them."""
    descs = []
    for payload, sig in layers:
        d = reg.push_blob(repo, payload)
        descs.append(dict(d, mediaType=SIMPLESIGNING, annotations={COSIGN_SIG_ANN: sig}))
    config = json.dumps({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
        "config": {}}).encode()
    man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": dict(reg.push_blob(repo, config), mediaType=OCI_IMAGE_CONFIG),
           "layers": descs}
    return reg.push_manifest(repo, "sha256-%s.sig" % digest[7:], man)


def cosign_sign(reg, repo, digest, key, payload_digest=None, tamper=False):
    payload = simple_signing_payload(reg.host, repo, payload_digest or digest)
    sig = key.sign(payload)
    if tamper:
        raw = bytearray(base64.b64decode(sig))
        raw[-3] ^= 0x01
        sig = base64.b64encode(bytes(raw)).decode()
    return payload, sig


# --- Sigstore bundles (@sigstore/sign) ----------------------------------------

def make_bundle(tmp_path, key, host, repo, digest):
    """A cosign v3 bundle for digest, made by @sigstore/sign in node."""
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": "%s/%s" % (host, repo),
                              "digest": {"sha256": digest[7:]}}],
                 "predicateType": PREDICATE, "predicate": {}}
    st = tmp_path / ("statement-%s.json" % digest[7:19])
    st.write_text(json.dumps(statement))
    kp = tmp_path / ("bundle-key-%s.pem" % key.fpr[7:19])
    kp.write_bytes(key.priv_pem)
    env = dict(os.environ, NODE_PATH=SIGSTORE)
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "sigstore_bundle.js"), str(kp),
                        str(st)], capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def tamper_bundle(bundle):
    """The same bundle with one bit of its signature flipped."""
    doc = json.loads(bundle)
    sig = doc["dsseEnvelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(sig["sig"]))
    raw[-3] ^= 0x01
    sig["sig"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(doc).encode()


def push_bundle(reg, repo, subject_digest, bundle):
    """Attach bundle to the manifest subject_digest as cosign v3 does on a
    registry without the referrers API: a referrer manifest pushed by
    digest, and its descriptor added to the referrers tag schema index
    (tag sha256-<hex>)."""
    _, _, subject = reg.manifest(repo, subject_digest)
    empty = dict(reg.push_blob(repo, b"{}"), mediaType=OCI_EMPTY)
    layer = dict(reg.push_blob(repo, bundle), mediaType=BUNDLE)
    ann = {"dev.sigstore.bundle.content": "dsse-envelope",
           "dev.sigstore.bundle.predicateType": PREDICATE,
           "org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
    man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
                      "config": empty, "layers": [layer],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest,
                                  "size": len(subject)},
                      "annotations": ann}).encode()
    ref = reg.push_manifest(repo, sha256(man), man)
    tag = "sha256-" + subject_digest[7:]
    st, _, body = reg.request("GET", "/v2/%s/manifests/%s" % (repo, tag),
                              headers={"Accept": OCI_INDEX})
    index = json.loads(body) if st == 200 else {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": ref, "size": len(man),
                               "artifactType": BUNDLE, "annotations": ann})
    reg.push_manifest(repo, tag, index, media_type=OCI_INDEX)
    return ref


# --- charts ----------------------------------------------------------------

def push_versions(helm, reg, tmp_path, versions, namespace="charts"):
    """Push web at each version with real helm: {version: manifest digest}."""
    out = {}
    for v in versions:
        src = copy_chart(os.path.join(CHARTS, "web"), str(tmp_path / ("web-" + v)), version=v)
        helm.push(helm.package(src, str(tmp_path / "pkg")), reg.host, namespace)
        out[v] = reg.manifest(namespace + "/web", v)[1]
    return out


def verdict_lines(m, repo, tag, digest):
    """The log lines saying why repo:tag was refused."""
    head = "verify: %s:%s (%s): " % (repo, tag, digest)
    return [l.split(head, 1)[1] for l in m.log().splitlines() if head in l]


def expect_refused(m, repo, tag, digest, why):
    """tag of repo is refused by name (its dir, package and files) with one
    log line giving why."""
    base = m.path(repo)
    for p in (os.path.join(base, tag), os.path.join(base, "web-%s.tgz" % tag),
              os.path.join(base, tag, "Chart.yaml")):
        expect_errno(errno.EACCES, os.stat, p)
    expect_errno(errno.EACCES, open, os.path.join(base, "web-%s.tgz" % tag), "rb")
    assert verdict_lines(m, repo, tag, digest) == [why], m.log()


@pytest.fixture
def keys():
    return Key(), Key()


# --- the tag scheme -----------------------------------------------------------

def test_tag_scheme_shows_only_what_the_key_signed(registry_factory, mount, helm4, tmp_path,
                                                  keys):
    a, b = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path,
                      ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5", "1.0.6"])
    push_tag_signatures(reg, repo, d["1.0.0"], [cosign_sign(reg, repo, d["1.0.0"], a)])
    # 1.0.1: no signature at all.
    push_tag_signatures(reg, repo, d["1.0.2"], [cosign_sign(reg, repo, d["1.0.2"], b)])
    # A good signature by the key, over a payload naming another chart.
    push_tag_signatures(reg, repo, d["1.0.3"],
                        [cosign_sign(reg, repo, d["1.0.3"], a, payload_digest=d["1.0.0"])])
    push_tag_signatures(reg, repo, d["1.0.4"],
                        [cosign_sign(reg, repo, d["1.0.4"], a, tamper=True)])
    # Several signatures, one good.
    push_tag_signatures(reg, repo, d["1.0.5"], [cosign_sign(reg, repo, d["1.0.5"], b),
                                                cosign_sign(reg, repo, d["1.0.5"], a)])
    # Signed by the key, but the payload is no simple-signing document.
    junk = b"not json"
    push_tag_signatures(reg, repo, d["1.0.6"], [(junk, a.sign(junk))])
    # The same chart in another repository, its signature in charts/ only.
    helm4.push(str(tmp_path / "pkg" / "web-1.0.0.tgz"), reg.host, "copy")
    assert reg.manifest("copy/web", "1.0.0")[1] == d["1.0.0"]

    m = mount(reg.host, opts=("verify_key=" + key_file(tmp_path, "a.pub", a),))
    shown = ["1.0.0", "1.0.5", "web-1.0.0.tgz", "web-1.0.5.tgz"]
    assert ls(m.path(repo)) == shown
    r = run("ls", "-l", m.path(repo))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert sorted(l.split()[-1] for l in r.stdout.splitlines()[1:]) == shown
    r = run("find", m.path("charts"), "-maxdepth", "2")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert sorted(os.path.relpath(p, m.mnt) for p in r.stdout.split()) == [
        "charts", "charts/web"] + ["charts/web/" + n for n in shown]
    assert ls(m.path("copy/web")) == []
    # What is shown reads as the registry has it; the attribute names the
    # mechanism and the key.
    assert read(m.path(repo, "web-1.0.0.tgz")) == reg.blob(
        repo, reg.chart_layer(repo, "1.0.0")["digest"])
    assert b"name: web" in read(m.path(repo, "1.0.5", "Chart.yaml"))
    for p in (m.path(repo, "1.0.0"), m.path(repo, "web-1.0.0.tgz")):
        assert os.getxattr(p, XATTR).decode() == "cosign-tag " + a.fpr
        assert XATTR in os.listxattr(p)

    expect_refused(m, repo, "1.0.1", d["1.0.1"], NO_SIG)
    expect_refused(m, repo, "1.0.2", d["1.0.2"], OTHER_KEY)
    expect_refused(m, repo, "1.0.3", d["1.0.3"], OTHER_DIGEST)
    # A simple signature names no key: one that no key verifies cannot be
    # told from another key's (a bundle's hint can: see the bundle test).
    expect_refused(m, repo, "1.0.4", d["1.0.4"], OTHER_KEY)
    expect_refused(m, repo, "1.0.6", d["1.0.6"], BROKEN)
    expect_errno(errno.EACCES, os.stat, m.path("copy/web/1.0.0"))
    assert verdict_lines(m, "copy/web", "1.0.0", d["1.0.0"]) == [NO_SIG]
    # Asked again (a listing, a lookup): said once per digest and key set.
    ls(m.path(repo))
    expect_refused(m, repo, "1.0.1", d["1.0.1"], NO_SIG)
    # Signatures stay hidden, reachable by name as without verification.
    sig = "sha256-%s.sig" % d["1.0.0"][7:]
    assert sig not in ls(m.path(repo))
    assert os.path.isdir(m.path(repo, sig))

    # Without verification everything is shown, and there is no attribute.
    plain = mount(reg.host)
    assert len(ls(plain.path(repo))) == 14
    expect_errno(errno.ENODATA, os.getxattr, plain.path(repo, "1.0.0"), XATTR)
    assert XATTR not in os.listxattr(plain.path(repo, "1.0.0"))


def test_two_keys_in_verify_key(registry_factory, mount, helm4, tmp_path, keys):
    """Two files (FILE:FILE), or one file with two keys: a signature by
    either verifies."""
    a, b = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0", "1.0.1", "1.0.2"])
    push_tag_signatures(reg, repo, d["1.0.0"], [cosign_sign(reg, repo, d["1.0.0"], a)])
    push_tag_signatures(reg, repo, d["1.0.1"], [cosign_sign(reg, repo, d["1.0.1"], b)])
    both = ["1.0.0", "1.0.1", "web-1.0.0.tgz", "web-1.0.1.tgz"]
    m = mount(reg.host, opts=("verify_key=%s:%s" % (key_file(tmp_path, "a.pub", a),
                                                    key_file(tmp_path, "b.pub", b)),))
    assert ls(m.path(repo)) == both
    assert os.getxattr(m.path(repo, "1.0.1"), XATTR).decode() == "cosign-tag " + b.fpr
    m2 = mount(reg.host, opts=("verify_key=" + key_file(tmp_path, "ab.pub", a, b),))
    assert ls(m2.path(repo)) == both
    assert os.getxattr(m2.path(repo, "web-1.0.0.tgz"), XATTR).decode() == (
        "cosign-tag " + a.fpr)


def test_sighup_reads_the_keys_again(registry_factory, mount, helm4, tmp_path, keys):
    a, b = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0", "1.0.1"])
    push_tag_signatures(reg, repo, d["1.0.0"], [cosign_sign(reg, repo, d["1.0.0"], a)])
    push_tag_signatures(reg, repo, d["1.0.1"], [cosign_sign(reg, repo, d["1.0.1"], b)])
    path = key_file(tmp_path, "trusted.pub", a)
    m = mount(reg.host, ttl=1, opts=("verify_key=" + path,))
    assert ls(m.path(repo)) == ["1.0.0", "web-1.0.0.tgz"]
    key_file(tmp_path, "trusted.pub", b)
    os.kill(m.pid, signal.SIGHUP)
    want = ["1.0.1", "web-1.0.1.tgz"]
    deadline = time.time() + 10
    while ls(m.path(repo)) != want and time.time() < deadline:
        time.sleep(0.1)
    assert ls(m.path(repo)) == want
    time.sleep(1.1)  # the kernel's entry of 1.0.0 (ttl=1) is gone
    expect_errno(errno.EACCES, os.stat, m.path(repo, "1.0.0"))
    assert verdict_lines(m, repo, "1.0.0", d["1.0.0"]) == [OTHER_KEY]
    assert os.getxattr(m.path(repo, "1.0.1"), XATTR).decode() == "cosign-tag " + b.fpr


def test_a_registry_that_cannot_be_asked_gives_no_verdict(registry_factory, mount, helm4,
                                                           tmp_path, keys):
    """Signatures that could not be read (a 503) are no verdict: the tag is
    left out of that listing and EIO by name, nothing is kept, and it is
    shown once the registry answers again."""
    a, _ = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0"])
    push_tag_signatures(reg, repo, d["1.0.0"], [cosign_sign(reg, repo, d["1.0.0"], a)])
    with RegistryProxy(reg.host) as proxy:
        proxy.fail(r"/manifests/sha256-[0-9a-f]{64}\.sig$", status=503, times=None)
        m = mount(proxy.host, ttl=1, opts=("verify_key=" + key_file(tmp_path, "a.pub", a),))
        assert ls(m.path(repo)) == []
        expect_errno(errno.EIO, os.stat, m.path(repo, "1.0.0"))
        assert verdict_lines(m, repo, "1.0.0", d["1.0.0"]) == []
        assert "sha256-%s.sig: " % d["1.0.0"][7:] in m.log()
        proxy.clear_faults()
        assert os.path.isdir(m.path(repo, "1.0.0"))
        deadline = time.time() + 10
        while ls(m.path(repo)) == [] and time.time() < deadline:
            time.sleep(0.1)
        assert ls(m.path(repo)) == ["1.0.0", "web-1.0.0.tgz"]


def test_every_registry_mount_verifies_each_host(registry_factory, mount, helm4, tmp_path,
                                                 keys):
    """One key set for every host of an every-registry mount."""
    a, _ = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0", "1.0.1"])
    push_tag_signatures(reg, repo, d["1.0.0"], [cosign_sign(reg, repo, d["1.0.0"], a)])
    m = mount(None, opts=("plain_http_hosts=" + reg.host,
                          "verify_key=" + key_file(tmp_path, "a.pub", a)), plain_http=False)
    assert ls(m.path(reg.host, repo)) == ["1.0.0", "web-1.0.0.tgz"]
    expect_errno(errno.EACCES, os.stat, m.path(reg.host, repo, "1.0.1"))
    assert os.getxattr(m.path(reg.host, repo, "1.0.0"), XATTR).decode() == (
        "cosign-tag " + a.fpr)


def test_prefetch_unpacks_only_verified_charts(registry_factory, mount, helm4, tmp_path,
                                               keys):
    """-o prefetch warms the verdicts and never unpacks what no key verifies."""
    a, _ = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0", "1.0.1"])
    push_tag_signatures(reg, repo, d["1.0.0"], [cosign_sign(reg, repo, d["1.0.0"], a)])
    m = mount(reg.host, opts=("prefetch=4", "verify_key=" + key_file(tmp_path, "a.pub", a)))
    assert ls(m.path("charts")) == ["web"]
    tree = {v: os.path.join(m.cache_dir, "trees", "sha256",
                            reg.chart_layer(repo, v)["digest"][7:]) for v in d}
    deadline = time.time() + 10
    while not os.path.isdir(tree["1.0.0"]) and time.time() < deadline:
        time.sleep(0.05)
    assert os.path.isdir(tree["1.0.0"])
    # Refused in the background already: said once, and never unpacked.
    deadline = time.time() + 10
    while not verdict_lines(m, repo, "1.0.1", d["1.0.1"]) and time.time() < deadline:
        time.sleep(0.05)
    assert verdict_lines(m, repo, "1.0.1", d["1.0.1"]) == [NO_SIG]
    assert not os.path.exists(tree["1.0.1"])
    assert ls(m.path(repo)) == ["1.0.0", "web-1.0.0.tgz"]


def test_an_unsigned_copy_is_pushed_but_not_shown(registry_factory, mount, helm4, tmp_path,
                                                  keys):
    """cp -p of a chart no key signed: pushed (cp exits 0), its name found
    by stat for a while as any pushed file's, then refused as any unsigned
    tag."""
    a, _ = keys
    reg = registry_factory()
    m = mount(reg.host, opts=("verify_key=" + key_file(tmp_path, "a.pub", a),))
    # Into the repository's own directory: the name written is the package's.
    os.makedirs(m.path("charts/web"))
    r = run("cp", "-p", helm4.package(os.path.join(CHARTS, "web")), m.path("charts/web/"))
    assert r.returncode == 0, r.stderr
    # The name written lingers as any pushed file's (a copy tool's stat
    # after its close finds it), never listed; the tag is refused.
    assert os.stat(m.path("charts/web/web-1.0.0.tgz")).st_size == os.path.getsize(
        helm4.package(os.path.join(CHARTS, "web")))
    assert reg.tags("charts/web") == ["1.0.0"]
    assert ls(m.path("charts/web")) == []
    expect_errno(errno.EACCES, os.stat, m.path("charts/web/1.0.0"))


@pytest.mark.parametrize("content", [b"not a key\n", None])
def test_a_key_file_that_does_not_load_fails_the_mount(registry_factory, mount, tmp_path,
                                                        content):
    reg = registry_factory()
    path = tmp_path / "bad.pub"
    if content is not None:
        path.write_bytes(content)
    m = mount(reg.host, opts=("verify_key=" + str(path),), check=False)
    assert not m.mounted and m.result.returncode == 1
    lines = [l for l in m.result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and str(path) in lines[0], m.result.stderr


# --- Sigstore bundles ---------------------------------------------------------

def test_bundles_through_the_referrers_tag_schema(registry_factory, mount, helm4, tmp_path,
                                                  keys):
    a, b = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"])
    push_bundle(reg, repo, d["1.0.0"], make_bundle(tmp_path, a, reg.host, repo, d["1.0.0"]))
    push_bundle(reg, repo, d["1.0.1"], make_bundle(tmp_path, b, reg.host, repo, d["1.0.1"]))
    # A bundle by the key whose statement names another chart.
    push_bundle(reg, repo, d["1.0.2"], make_bundle(tmp_path, a, reg.host, repo, d["1.0.0"]))
    # Two bundles, one good.
    push_bundle(reg, repo, d["1.0.3"], make_bundle(tmp_path, b, reg.host, repo, d["1.0.3"]))
    push_bundle(reg, repo, d["1.0.3"], make_bundle(tmp_path, a, reg.host, repo, d["1.0.3"]))
    # The key's bundle, its signature tampered with (the hint names the key).
    push_bundle(reg, repo, d["1.0.4"],
                tamper_bundle(make_bundle(tmp_path, a, reg.host, repo, d["1.0.4"])))
    m = mount(reg.host, opts=("verify_key=" + key_file(tmp_path, "a.pub", a),))
    assert ls(m.path(repo)) == ["1.0.0", "1.0.3", "web-1.0.0.tgz", "web-1.0.3.tgz"]
    assert os.getxattr(m.path(repo, "1.0.0"), XATTR).decode() == "cosign-bundle " + a.fpr
    assert os.getxattr(m.path(repo, "web-1.0.3.tgz"), XATTR).decode() == (
        "cosign-bundle " + a.fpr)
    expect_refused(m, repo, "1.0.1", d["1.0.1"], OTHER_KEY)
    expect_refused(m, repo, "1.0.2", d["1.0.2"], OTHER_DIGEST)
    expect_refused(m, repo, "1.0.4", d["1.0.4"], BAD_SIG)
    # The index tags stay hidden.
    assert not any(n.startswith("sha256-") for n in ls(m.path(repo)))


def test_bundle_through_the_referrers_api(registry_factory, mount, helm4, tmp_path, keys):
    """A registry with the referrers API is asked through it, not the tag
    schema (the proxy answers the API; see tests/proxy.py for why)."""
    a, _ = keys
    reg = registry_factory()
    repo = "charts/web"
    d = push_versions(helm4, reg, tmp_path, ["1.0.0", "1.0.1"])
    push_bundle(reg, repo, d["1.0.0"], make_bundle(tmp_path, a, reg.host, repo, d["1.0.0"]))
    with RegistryProxy(reg.host, referrers=True) as proxy:
        m = mount(proxy.host, opts=("verify_key=" + key_file(tmp_path, "a.pub", a),))
        assert ls(m.path(repo)) == ["1.0.0", "web-1.0.0.tgz"]
        assert os.getxattr(m.path(repo, "1.0.0"), XATTR).decode() == (
            "cosign-bundle " + a.fpr)
        asked = [p for _, p in proxy.requests()]
        assert any(p.startswith("/v2/%s/referrers/%s?artifactType=" % (repo, d["1.0.0"]))
                   for p in asked), asked
        schema = "/v2/%s/manifests/sha256-%s" % (repo, d["1.0.0"][7:])
        assert schema not in asked, asked
        expect_refused(m, repo, "1.0.1", d["1.0.1"], NO_SIG)


# --- helm provenance ------------------------------------------------------------

def test_keyring_shows_charts_whose_provenance_verifies(registry_factory, mount, helm4,
                                                        tmp_path):
    reg = registry_factory()
    tgz, prov = signed_package(helm4, tmp_path)
    pubring = tmp_path / "pubring.gpg"
    with open(pubring, "wb") as f:
        subprocess.run(["gpg", "--homedir", str(tmp_path / "gnupg"), "--export"], check=True,
                       stdout=f, capture_output=False)
    subprocess.run(["gpgconf", "--homedir", str(tmp_path / "gnupg"), "--kill", "all"],
                   check=False)
    # 1.0.0 with its own provenance; 1.0.1 with 1.0.0's (another package);
    # 1.0.2 with none. helm push sends the x.tgz.prov beside x.tgz as is.
    other = tmp_path / "other"
    other.mkdir()
    src = copy_chart(os.path.join(CHARTS, "web"), str(tmp_path / "web-1.0.1"), version="1.0.1")
    tgz1 = helm4.package(src, str(other))
    with open(tgz1 + ".prov", "wb") as f:
        f.write(read(prov))
    src = copy_chart(os.path.join(CHARTS, "web"), str(tmp_path / "web-1.0.2"), version="1.0.2")
    tgz2 = helm4.package(src, str(tmp_path / "unsigned"))
    for f in (tgz, tgz1, tgz2):
        helm4.push(f, reg.host, "charts")
    repo = "charts/web"
    d = {v: reg.manifest(repo, v)[1] for v in ("1.0.0", "1.0.1", "1.0.2")}
    m = mount(reg.host, opts=("keyring=" + str(pubring),))
    assert ls(m.path(repo)) == ["1.0.0", "web-1.0.0.tgz", "web-1.0.0.tgz.prov"]
    assert os.getxattr(m.path(repo, "1.0.0"), XATTR).decode().startswith("helm-prov ")
    r = helm4.run("verify", "--keyring", str(pubring), m.path(repo, "web-1.0.0.tgz"),
                  check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    expect_refused(m, repo, "1.0.1", d["1.0.1"], OTHER_DIGEST)
    expect_refused(m, repo, "1.0.2", d["1.0.2"], NO_SIG)
    # SIGHUP imports the keyring again (a new private GnuPG home): the same
    # verdicts, reached again.
    os.kill(m.pid, signal.SIGHUP)
    deadline = time.time() + 10
    while "keys read again" not in m.log() and time.time() < deadline:
        time.sleep(0.1)
    assert "keys read again" in m.log()
    assert ls(m.path(repo)) == ["1.0.0", "web-1.0.0.tgz", "web-1.0.0.tgz.prov"]
    expect_errno(errno.EACCES, os.stat, m.path(repo, "web-1.0.1.tgz"))
    assert verdict_lines(m, repo, "1.0.1", d["1.0.1"]) == [OTHER_DIGEST] * 2
    # One private GnuPG home, among the cache's temp entries (a killed
    # daemon's is removed by the next mount): the one before SIGHUP is gone.
    assert len(glob.glob(os.path.join(m.cache_dir, "tmp", "gnupg-*"))) == 1
