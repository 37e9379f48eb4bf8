"""cosign's signature formats in sign/, checked against implementations
chartfs did not write: Python's cryptography (Debian) signs and verifies
raw signatures, the Sigstore project's JavaScript libraries (@sigstore/sign,
@sigstore/verify, @sigstore/bundle; scripts/sigstore.sh) make and check
bundles. chartfs's side runs through tests/unit/sign-tool (sign_tool.c).
No registry and no mount: the formats only.
"""
import base64
import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from util import ROOT, TOOLS, sanitizer_env, sanitizer_reports

KINDS = ["p256", "p384", "rsa2048", "ed25519"]
DIGEST = "sha256:" + hashlib.sha256(b"the chart's manifest").hexdigest()
OTHER = "sha256:" + hashlib.sha256(b"another chart's manifest").hexdigest()
INTOTO = "application/vnd.in-toto+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SIGSTORE_JS = os.path.join(ROOT, "tests", "unit", "data", "sign", "sigstore_tool.js")
NODE_MODULES = os.path.join(TOOLS, "sigstore", "node_modules")


def new_key(kind):
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    return ed25519.Ed25519PrivateKey.generate()


def py_sign(key, data, digest=hashes.SHA256):
    """A signature as cosign makes it: ECDSA DER, RSA PKCS#1 v1.5, Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(digest()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), digest())
    return key.sign(data)


def py_verify(pub, sig, data):
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        pub.verify(sig, data)


def der(pub):
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def pae(type_, payload):
    t = type_.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def flip(b64, at=10):
    raw = bytearray(base64.b64decode(b64))
    raw[at % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def simple_payload(digest):
    """The simple-signing payload as cosign v2 (Go's encoding/json) writes it."""
    return json.dumps({"critical": {"identity": {"docker-reference": "localhost/charts/web"},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}, separators=(",", ":")).encode()


def statement(digest, predicate=PREDICATE, type_="https://in-toto.io/Statement/v1"):
    return json.dumps({"_type": type_,
                       "subject": [{"name": "localhost/charts/web",
                                    "digest": {"sha256": digest.split(":", 1)[1]}}],
                       "predicateType": predicate, "predicate": {}}).encode()


class Key:
    def __init__(self, kind, d, name):
        self.kind = kind
        self.priv = new_key(kind)
        self.pub = self.priv.public_key()
        self.pub_path = os.path.join(d, name + ".pub")
        self.priv_path = os.path.join(d, name + ".key")
        with open(self.pub_path, "wb") as f:
            f.write(self.pub.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        fd = os.open(self.priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.priv.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        digest = hashlib.sha256(der(self.pub)).digest()
        self.fpr = "sha256:" + digest.hex()
        self.hint = base64.b64encode(digest).decode()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two keys of each kind: [kind] is the trusted one, [kind + "-other"] not."""
    d = str(tmp_path_factory.mktemp("keys"))
    out = {}
    for kind in KINDS:
        out[kind] = Key(kind, d, kind)
        out[kind + "-other"] = Key(kind, d, kind + "-other")
    return out


class Tool:
    """tests/unit/sign-tool of the build under test, sanitizer reports checked."""

    def __init__(self, build_dir, tmp):
        self.bin = os.path.join(build_dir, "tests", "unit", "sign-tool")
        assert os.access(self.bin, os.X_OK), "%s was not built" % self.bin
        self.tmp = tmp
        self.san = os.path.join(tmp, "sanitizers")
        os.makedirs(self.san, exist_ok=True)
        self.n = 0

    def file(self, data):
        self.n += 1
        p = os.path.join(self.tmp, "in%d" % self.n)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return p

    def run(self, *args, ok=True):
        r = subprocess.run([self.bin, *args], env=sanitizer_env(os.environ, self.san),
                           capture_output=True, timeout=60)
        assert not sanitizer_reports(self.san), "\n".join(sanitizer_reports(self.san))
        if ok:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout.decode(), r.stderr.decode(), r.returncode

    def verdict(self, cmd, keys, digest, *files):
        out, _, _ = self.run(cmd, keys, digest, *files)
        return out.strip()


@pytest.fixture
def tool(build_dir, tmp_path):
    return Tool(build_dir, str(tmp_path))


def node(*args):
    if not os.path.isdir(NODE_MODULES):
        subprocess.run([os.path.join(ROOT, "scripts", "sigstore.sh")], check=True)
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    r = subprocess.run(["node", SIGSTORE_JS, *args], env=env, capture_output=True,
                       timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode == 0, r.stdout.decode()


def js_bundle(tool, key, stmt, hash_="sha256", nohint=False):
    """A DSSE bundle made by @sigstore/sign with key, over the statement."""
    if key.kind == "ed25519":
        hash_ = "none"
    args = ["make", key.priv_path, key.pub_path, tool.file(stmt), hash_]
    ok, out = node(*(args + (["nohint"] if nohint else [])))
    assert ok, out
    return json.loads(out)


# --- keys ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_key_names_match_cryptography(tool, keys, kind):
    """A key's fingerprint is sha256 of its DER SPKI (as cryptography encodes
    it) and its hint that digest's base64; the private key names its public
    half the same way."""
    k = keys[kind]
    out, _, _ = tool.run("keys", k.pub_path)
    lines = out.splitlines()
    assert lines[0] == "count 1"
    assert lines[2] == "%s %s" % (k.fpr, k.hint)
    out, _, _ = tool.run("key", k.priv_path)
    assert out.strip() == k.fpr


def test_key_set_id(tool, keys):
    """Two keys in one file both load; the set's id depends on which keys,
    not on their order or files."""
    a, b = keys["p256"], keys["ed25519"]
    both = tool.file(open(a.pub_path).read() + open(b.pub_path).read())
    out1, _, _ = tool.run("keys", both)
    out2, _, _ = tool.run("keys", "%s:%s" % (b.pub_path, a.pub_path))
    out3, _, _ = tool.run("keys", a.pub_path)
    assert out1.splitlines()[0] == "count 2"
    assert out1.splitlines()[1] == out2.splitlines()[1]
    assert out1.splitlines()[1] != out3.splitlines()[1]
    assert sorted(out1.splitlines()[2:]) == sorted(["%s %s" % (a.fpr, a.hint),
                                                    "%s %s" % (b.fpr, b.hint)])


def test_unsupported_keys_refused(tool, tmp_path):
    """P-521, RSA under 2048 bits, a file with no key, a missing file: one
    log line each, -EINVAL (-ENOENT for the missing file)."""
    cases = {
        "p521": ec.generate_private_key(ec.SECP521R1()).public_key(),
        "rsa1024": rsa.generate_private_key(65537, 1024).public_key(),
    }
    for name, pub in cases.items():
        p = tool.file(pub.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo))
        out, err, rc = tool.run("keys", p, ok=False)
        assert (rc, out.strip()) == (2, "error 22"), name
        assert len(err.strip().splitlines()) == 1 and "verify_key" in err, err
    out, err, rc = tool.run("keys", tool.file("no key here\n"), ok=False)
    assert (rc, out.strip()) == (2, "error 22") and "no PEM public key" in err
    out, _, rc = tool.run("keys", str(tmp_path / "missing.pub"), ok=False)
    assert (rc, out.strip()) == (2, "error 2")
    broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    out, err, rc = tool.run("keys", tool.file(broken), ok=False)
    assert (rc, out.strip()) == (2, "error 22") and "does not parse" in err


def test_sign_key_permissions_and_formats(tool, keys, tmp_path):
    """The signing key is refused (-EPERM, one log line) when group or others
    may read it or another user owns it; an encrypted key and cosign's own
    format are -EINVAL, read without a passphrase prompt."""
    k = keys["p256"]
    data = open(k.priv_path, "rb").read()
    p = tool.file(data)
    os.chmod(p, 0o640)
    out, err, rc = tool.run("key", p, ok=False)
    assert (rc, out.strip()) == (2, "error 1") and "chmod 600" in err
    if os.geteuid() == 0:
        os.chmod(p, 0o600)
        os.chown(p, 65534, 65534)
        out, err, rc = tool.run("key", p, ok=False)
        assert (rc, out.strip()) == (2, "error 1") and "owned by uid 65534" in err
    enc = k.priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(b"secret"))
    p = tool.file(enc)
    os.chmod(p, 0o600)
    r = subprocess.run([tool.bin, "key", p], capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=30)
    assert r.stdout.decode().strip() == "error 22" and b"is encrypted" in r.stderr
    p = tool.file("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n"
                  "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    os.chmod(p, 0o600)
    out, err, rc = tool.run("key", p, ok=False)
    assert (rc, out.strip()) == (2, "error 22") and "cosign's encrypted key format" in err


# --- the tag scheme (simple signing) ------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_simple_signature_verdicts(tool, keys, kind):
    """Signatures made by cryptography over cosign's payload: the key's own
    verifies (ok, its fingerprint), another key's is wrong_key, a payload
    naming another digest other_digest, a flipped byte in signature or
    payload wrong_key (the tag scheme names no key), garbage broken."""
    k, other = keys[kind], keys[kind + "-other"]
    payload = simple_payload(DIGEST)
    sig = base64.b64encode(py_sign(k.priv, payload)).decode()
    p = tool.file(payload)
    assert tool.verdict("verify-simple", k.pub_path, DIGEST, p, sig) == \
        "ok cosign-tag " + k.fpr
    if kind == "p384":
        sig384 = base64.b64encode(py_sign(k.priv, payload, hashes.SHA384)).decode()
        assert tool.verdict("verify-simple", k.pub_path, DIGEST, p, sig384) == \
            "ok cosign-tag " + k.fpr
    assert tool.verdict("verify-simple", other.pub_path, DIGEST, p, sig) == "wrong_key"
    both = "%s:%s" % (other.pub_path, k.pub_path)
    assert tool.verdict("verify-simple", both, DIGEST, p, sig) == "ok cosign-tag " + k.fpr
    assert tool.verdict("verify-simple", k.pub_path, OTHER, p, sig) == "other_digest"
    assert tool.verdict("verify-simple", k.pub_path, DIGEST, p, flip(sig)) == "wrong_key"
    tampered = tool.file(payload.replace(b"container", b"Container"))
    assert tool.verdict("verify-simple", k.pub_path, DIGEST, tampered, sig) == "wrong_key"
    assert tool.verdict("verify-simple", k.pub_path, DIGEST, p, "not base64!") == "broken"
    assert tool.verdict("verify-simple", k.pub_path, DIGEST, p, "") == "broken"
    junk = b"not json at all"
    jsig = base64.b64encode(py_sign(k.priv, junk)).decode()
    assert tool.verdict("verify-simple", k.pub_path, DIGEST, tool.file(junk), jsig) == "broken"


# --- bundles made by @sigstore/sign, checked by chartfs ---------------------------

# Most of its time is node's (the Sigstore libraries), not sign-tool's:
# the sanitized pass skips it; tests/unit/test_sign.c covers the same code
# there.
@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_js_bundle_verdicts(tool, keys, kind):
    """A DSSE bundle from @sigstore/sign with a key signer: chartfs verifies
    it with the key (ok cosign-bundle, the fingerprint); with another key
    (the hint names none configured) wrong_key; a statement for another
    digest other_digest; a flipped signature or payload byte bad_sig (the
    hinted key's signature fails); no hint: every key is tried."""
    k, other = keys[kind], keys[kind + "-other"]
    b = js_bundle(tool, k, statement(DIGEST))
    assert b["mediaType"] == BUNDLE_V03 and b["dsseEnvelope"]["payloadType"] == INTOTO
    p = tool.file(json.dumps(b))
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST, p) == "ok cosign-bundle " + k.fpr
    assert tool.verdict("verify-bundle", other.pub_path, DIGEST, p) == "wrong_key"
    assert tool.verdict("verify-bundle", k.pub_path, OTHER, p) == "other_digest"
    both = "%s:%s" % (other.pub_path, k.pub_path)
    assert tool.verdict("verify-bundle", both, DIGEST, p) == "ok cosign-bundle " + k.fpr

    bad = json.loads(json.dumps(b))
    bad["dsseEnvelope"]["signatures"][0]["sig"] = flip(b["dsseEnvelope"]["signatures"][0]["sig"])
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST, tool.file(json.dumps(bad))) == \
        "bad_sig"
    bad = json.loads(json.dumps(b))
    bad["dsseEnvelope"]["payload"] = base64.b64encode(statement(OTHER)).decode()
    assert tool.verdict("verify-bundle", k.pub_path, OTHER, tool.file(json.dumps(bad))) == \
        "bad_sig"

    other_digest = js_bundle(tool, k, statement(OTHER))
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST,
                        tool.file(json.dumps(other_digest))) == "other_digest"
    nohint = js_bundle(tool, k, statement(DIGEST), nohint=True)
    assert "hint" not in nohint["verificationMaterial"]["publicKey"]
    p = tool.file(json.dumps(nohint))
    assert tool.verdict("verify-bundle", both, DIGEST, p) == "ok cosign-bundle " + k.fpr
    assert tool.verdict("verify-bundle", other.pub_path, DIGEST, p) == "wrong_key"
    if kind == "p384":
        b384 = js_bundle(tool, k, statement(DIGEST), hash_="sha384")
        assert tool.verdict("verify-bundle", k.pub_path, DIGEST,
                            tool.file(json.dumps(b384))) == "ok cosign-bundle " + k.fpr


def test_js_bundle_statements(tool, keys):
    """What the signed statement says: in-toto v0.1 is accepted too; another
    predicate (an attestation, not a signature) is none; a statement that
    is not one is broken."""
    k = keys["p256"]
    v01 = js_bundle(tool, k, statement(DIGEST, type_="https://in-toto.io/Statement/v0.1"))
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST, tool.file(json.dumps(v01))) == \
        "ok cosign-bundle " + k.fpr
    slsa = js_bundle(tool, k, statement(DIGEST, predicate="https://slsa.dev/provenance/v1"))
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST, tool.file(json.dumps(slsa))) == \
        "none"
    junk = js_bundle(tool, k, b"[1, 2, 3]")
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST, tool.file(json.dumps(junk))) == \
        "broken"
    notype = js_bundle(tool, k, statement(DIGEST, type_="https://example.com/Statement"))
    assert tool.verdict("verify-bundle", k.pub_path, DIGEST,
                        tool.file(json.dumps(notype))) == "broken"


def test_bundle_shapes_refused(tool, keys):
    """Bundles chartfs does not accept: garbage and unknown media types are
    broken, a message-signature bundle is broken (cosign refuses it for an
    image), another DSSE payload type is broken, a keyless bundle (a
    certificate, no key) is wrong_key; older bundle media types are read."""
    k = keys["p256"]
    b = js_bundle(tool, k, statement(DIGEST))

    def verdict(bundle):
        text = bundle if isinstance(bundle, (bytes, str)) else json.dumps(bundle)
        return tool.verdict("verify-bundle", k.pub_path, DIGEST, tool.file(text))

    assert verdict(b"\x00garbage") == "broken"
    assert verdict("{}") == "broken"
    for mt in ("application/vnd.dev.sigstore.bundle+json;version=0.1",
               "application/vnd.dev.sigstore.bundle+json;version=0.2"):
        assert verdict(dict(b, mediaType=mt)) == "ok cosign-bundle " + k.fpr
    assert verdict(dict(b, mediaType="application/json")) == "broken"
    msg = {"mediaType": BUNDLE_V03, "verificationMaterial": b["verificationMaterial"],
           "messageSignature": {"messageDigest": {"algorithm": "SHA2_256",
                                                  "digest": base64.b64encode(b"x" * 32).decode()},
                                "signature": b["dsseEnvelope"]["signatures"][0]["sig"]}}
    assert verdict(msg) == "broken"
    other_type = json.loads(json.dumps(b))
    other_type["dsseEnvelope"]["payloadType"] = "application/vnd.dev.cosign.simplesigning.v1+json"
    assert verdict(other_type) == "broken"
    keyless = json.loads(json.dumps(b))
    keyless["verificationMaterial"] = {"certificate": {"rawBytes": "MIIB"}}
    assert verdict(keyless) == "wrong_key"
    nosig = json.loads(json.dumps(b))
    nosig["dsseEnvelope"]["signatures"] = []
    assert verdict(nosig) == "broken"
    assert verdict(b"{" * 100000) == "broken"


# --- bundles made by chartfs, checked by @sigstore/verify and cryptography -----

# Most of its time is node's (the Sigstore libraries), not sign-tool's:
# the sanitized pass skips it; tests/unit/test_sign.c covers the same code
# there.
@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_chartfs_bundle_verifies_independently(tool, keys, kind):
    """make-bundle's output: @sigstore/verify@3 accepts it with the public key
    as its only trust material (no tlog, CT log or timestamp) and refuses it
    with another key; cryptography verifies the signature over the DSSE PAE
    with SHA-256 (the hash `cosign verify --key` checks with); the statement
    is cosign's (in-toto v1, the manifest digest as subject, predicate
    cosign/sign/v1); chartfs verifies it too."""
    k, other = keys[kind], keys[kind + "-other"]
    out, _, _ = tool.run("make-bundle", k.priv_path, DIGEST)
    b = json.loads(out)
    assert b["mediaType"] == BUNDLE_V03
    assert b["verificationMaterial"] == {"publicKey": {"hint": k.hint}}
    env = b["dsseEnvelope"]
    assert env["payloadType"] == INTOTO and len(env["signatures"]) == 1
    payload = base64.b64decode(env["payload"], validate=True)
    st = json.loads(payload)
    assert st == {"_type": "https://in-toto.io/Statement/v1",
                  "subject": [{"digest": {"sha256": DIGEST.split(":")[1]}}],
                  "predicateType": PREDICATE, "predicate": {}}
    sig = base64.b64decode(env["signatures"][0]["sig"], validate=True)
    py_verify(k.pub, sig, pae(INTOTO, payload))

    p = tool.file(out)
    ok, msg = node("verify", k.pub_path, p)
    assert ok, msg
    ok, msg = node("verify", other.pub_path, p)
    assert not ok and "PUBLIC_KEY_ERROR" in msg, msg
    # The other key under our key's hint: the signature itself must fail.
    swapped = json.loads(out)
    swapped["verificationMaterial"]["publicKey"]["hint"] = other.hint
    ok, msg = node("verify", other.pub_path, tool.file(json.dumps(swapped)))
    assert not ok and "SIGNATURE_ERROR" in msg, msg

    assert tool.verdict("verify-bundle", k.pub_path, DIGEST, p) == "ok cosign-bundle " + k.fpr
    assert tool.verdict("verify-bundle", k.pub_path, OTHER, p) == "other_digest"


def test_make_bundle_refuses_bad_digest(tool, keys):
    out, _, rc = tool.run("make-bundle", keys["p256"].priv_path, "sha256:abc", ok=False)
    assert (rc, out.strip()) == (2, "error 22")


# --- the OCI side --------------------------------------------------------------

def test_referrer_manifest_and_index(tool, keys):
    """The referrer manifest is cosign's (OCI image manifest, artifactType the
    bundle type, the empty config whose digest is sha256 of "{}", the bundle
    layer, the subject, cosign's annotations); index-add lists it under its
    own digest with artifactType and annotations, and index-bundles finds it."""
    out, _, _ = tool.run("make-bundle", keys["p256"].priv_path, DIGEST)
    bundle = out.encode()
    bdigest = "sha256:" + hashlib.sha256(bundle).hexdigest()
    subject_mt = "application/vnd.oci.image.manifest.v1+json"
    man, _, _ = tool.run("referrer", bdigest, str(len(bundle)), subject_mt, DIGEST, "1234")
    m = json.loads(man)
    assert m["schemaVersion"] == 2 and m["mediaType"] == subject_mt
    assert m["artifactType"] == BUNDLE_V03
    assert m["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2}
    assert m["layers"] == [{"mediaType": BUNDLE_V03, "digest": bdigest, "size": len(bundle)}]
    assert m["subject"] == {"mediaType": subject_mt, "digest": DIGEST, "size": 1234}
    ann = m["annotations"]
    assert ann["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert ann["dev.sigstore.bundle.predicateType"] == PREDICATE
    assert len(ann["org.opencontainers.image.created"]) == 20

    index, _, _ = tool.run("index-add", "-", tool.file(man))
    i = json.loads(index)
    mdigest = "sha256:" + hashlib.sha256(man.encode()).hexdigest()
    assert i["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert i["manifests"] == [{"mediaType": subject_mt, "digest": mdigest, "size": len(man),
                               "artifactType": BUNDLE_V03, "annotations": ann}]
    out, _, _ = tool.run("index-bundles", tool.file(index))
    assert out.split() == [mdigest]
