"""Signing on push (-o sign_key): cp of a package through the mount pushes
the chart and a cosign v3 signature of its manifest (a Sigstore bundle as an
OCI 1.1 referrer, listed in the referrers tag schema on distribution 2.8).

The signatures are checked by code chartfs did not write: the Sigstore
project's @sigstore/verify (node, key-based trust material, no transparency
log), and Python's json/base64/hashlib for the statement inside. Keys are
made by Python's `cryptography`."""
import base64
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from util import OCI_MANIFEST, TOOLS, sha256, signed_package

REPO = "charts/helm-oci-test"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
PREDICATE = "https://sigstore.dev/cosign/sign/v1"
NODE_PATH = os.path.join(TOOLS, "sigstore", "node_modules")

# Key-based verification with @sigstore/verify@3: trust material with no
# authorities and a key finder that answers the one public key given (its
# hint is checked by the test itself), no tlog, SCT or timestamp required.
VERIFY_JS = r"""
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { toSignedEntity, toTrustMaterial, Verifier } = require('@sigstore/verify');
const [bundlePath, keyPath] = process.argv.slice(1);
const key = crypto.createPublicKey(fs.readFileSync(keyPath));
const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
const trust = toTrustMaterial(root, () => ({ publicKey: key, validFor: () => true }));
const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0,
                                       timestampThreshold: 0 });
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  verifier.verify(toSignedEntity(bundle));
  console.log('verified');
} catch (e) {
  console.log('refused:', e.code || '', e.message);
  process.exit(1);
}
"""


def cp(src, dst):
    """cp(1), so errors come from close(2) as a user sees them."""
    return subprocess.run(["cp", src, dst], capture_output=True, text=True)


class Key:
    """A key pair made by `cryptography`: the private half as the PKCS#8
    PEM file chartfs reads (0600), the public half as PEM for the verifier."""

    def __init__(self, tmp_path, name, kind="ecdsa"):
        priv = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else \
            ed25519.Ed25519PrivateKey.generate()
        self.priv = priv
        self.path = str(tmp_path / (name + ".key"))
        self.pub_path = str(tmp_path / (name + ".pub"))
        self.write(self.path, priv)
        pub = priv.public_key()
        with open(self.pub_path, "wb") as f:
            f.write(pub.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))
        der = pub.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        # cosign's bundle hint: base64 of the sha256 of the DER SPKI.
        self.hint = base64.b64encode(hashlib.sha256(der).digest()).decode()

    @staticmethod
    def write(path, priv, encryption=None):
        pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 encryption or serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)


def sigstore_verify(tmp_path, bundle, pub_path):
    """(accepted, what @sigstore/verify said)."""
    path = tmp_path / ("bundle-%s.json" % sha256(bundle)[7:19])
    path.write_bytes(bundle)
    r = subprocess.run(["node", "-e", VERIFY_JS, str(path), pub_path], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, NODE_PATH=NODE_PATH))
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def chartfs_verdict(build_dir, tmp_path, bundle, pub_path, digest):
    """What chartfs's own verifier (sign/cosign.c, which -o verify_key
    uses) concludes of a bundle, through tests/unit/sign_tool.c."""
    path = tmp_path / ("bundle-%s.json" % sha256(bundle)[7:19])
    path.write_bytes(bundle)
    r = subprocess.run([os.path.join(build_dir, "tests", "unit", "sign-tool"), "verify-bundle",
                        pub_path, digest, str(path)], capture_output=True, text=True, timeout=60)
    return r.stdout.split()[0] if r.stdout else r.stderr


def referrers_index(reg, repo, digest):
    """The referrers tag schema index of a manifest digest, or None."""
    st, hdr, body = reg.request("GET", "/v2/%s/manifests/sha256-%s" % (repo, digest[7:]),
                                headers={"Accept": OCI_INDEX})
    if st == 404:
        return None
    assert st == 200, (st, body)
    assert hdr["Content-Type"].split(";")[0] == OCI_INDEX
    idx = json.loads(body)
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == OCI_INDEX, idx
    return idx


def signatures(reg, repo, tag):
    """The chart manifest digest of repo:tag and, for each cosign bundle its
    tag schema index lists, (referrer manifest, bundle bytes), after the
    checks every signature must pass: the descriptor matches the referrer,
    which names the chart's manifest as its subject and the empty config."""
    _, digest, raw = reg.manifest(repo, tag)
    idx = referrers_index(reg, repo, digest)
    assert idx is not None, "no referrers tag schema index for %s:%s" % (repo, tag)
    out = []
    for d in idx["manifests"]:
        assert d["artifactType"] == BUNDLE, d
        ref, ref_digest, ref_raw = reg.manifest(repo, d["digest"])
        assert ref_digest == d["digest"] and d["size"] == len(ref_raw)
        assert d["mediaType"] == OCI_MANIFEST
        assert d.get("annotations", {}) == ref.get("annotations", {})
        assert ref["artifactType"] == BUNDLE
        assert ref["subject"] == {"mediaType": OCI_MANIFEST, "digest": digest,
                                  "size": len(raw)}, ref["subject"]
        assert ref["config"] == {"mediaType": EMPTY, "digest": EMPTY_DIGEST, "size": 2}
        assert reg.blob(repo, EMPTY_DIGEST) == b"{}"
        assert len(ref["layers"]) == 1 and ref["layers"][0]["mediaType"] == BUNDLE
        bundle = reg.blob(repo, ref["layers"][0]["digest"])
        assert sha256(bundle) == ref["layers"][0]["digest"]
        out.append((ref, bundle))
    return digest, out


def check_statement(bundle, digest, key):
    """What cosign's verifier checks beyond the signature: a DSSE in-toto
    statement naming this manifest, the cosign sign predicate, the key's hint."""
    b = json.loads(bundle)
    assert b["mediaType"] == BUNDLE
    assert b["verificationMaterial"]["publicKey"]["hint"] == key.hint
    assert not b["verificationMaterial"].get("tlogEntries")
    env = b["dsseEnvelope"]
    assert env["payloadType"] == "application/vnd.in-toto+json"
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["predicateType"] == PREDICATE
    assert [s["digest"]["sha256"] for s in st["subject"]] == [digest[7:]], st["subject"]


@pytest.fixture
def keys(tmp_path):
    return {"ecdsa": Key(tmp_path, "ecdsa"), "ed25519": Key(tmp_path, "ed25519", "ed25519"),
            "other": Key(tmp_path, "other")}


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_cp_pushes_chart_and_signature_sigstore_accepts(registry_factory, mount, helm4, packages,
                                                        keys, kind, tmp_path, build_dir):
    reg = registry_factory()
    key = keys[kind]
    m = mount(reg.host, opts=("sign_key=" + key.path,))
    os.mkdir(m.path("charts"))
    src = packages["helm-oci-test-0.2.0"]
    r = cp(src, m.path("charts/"))
    assert r.returncode == 0, r.stderr + m.log()
    # The chart, as helm pulls it, and its signature beside it.
    digest, sigs = signatures(reg, REPO, "0.2.0")
    assert len(sigs) == 1
    assert reg.tags(REPO) == ["0.2.0", "sha256-" + digest[7:]]
    (_, bundle), = sigs
    check_statement(bundle, digest, key)
    ok, said = sigstore_verify(tmp_path, bundle, key.pub_path)
    assert ok, said
    ok, said = sigstore_verify(tmp_path, bundle, keys["other"].pub_path)
    assert not ok and "SIGNATURE_ERROR" in said, said
    # And chartfs's own verifier, the one -o verify_key uses, agrees.
    assert chartfs_verdict(build_dir, tmp_path, bundle, key.pub_path, digest) == "ok"
    assert chartfs_verdict(build_dir, tmp_path, bundle, keys["other"].pub_path,
                           digest) == "wrong_key"
    helm4.pull(reg.host, REPO, "0.2.0", str(tmp_path / "pull"))
    assert (tmp_path / "pull" / "helm-oci-test-0.2.0.tgz").read_bytes() == open(src, "rb").read()
    # The tag schema's tag is cosign's business: not a chart in the mount.
    assert sorted(os.listdir(m.path(REPO))) == ["0.2.0", "helm-oci-test-0.2.0.tgz"]
    assert "pushed but unsigned" not in m.log()


def test_two_charts_in_one_repository_each_their_own_index(registry_factory, mount, packages,
                                                          keys, tmp_path):
    reg = registry_factory()
    m = mount(reg.host, opts=("sign_key=" + keys["ecdsa"].path,))
    os.mkdir(m.path("charts"))
    for v in ("0.1.0", "0.2.0"):
        r = cp(packages["helm-oci-test-" + v], m.path("charts/"))
        assert r.returncode == 0, r.stderr + m.log()
    digests = set()
    for v in ("0.1.0", "0.2.0"):
        digest, sigs = signatures(reg, REPO, v)
        assert len(sigs) == 1, sigs
        check_statement(sigs[0][1], digest, keys["ecdsa"])
        assert sigstore_verify(tmp_path, sigs[0][1], keys["ecdsa"].pub_path)[0]
        digests.add(digest)
    assert len(digests) == 2
    assert reg.tags(REPO) == sorted(["0.1.0", "0.2.0"] + ["sha256-" + d[7:] for d in digests])


def test_signing_one_manifest_twice_keeps_both(registry_factory, mount, packages, keys,
                                                tmp_path):
    """The tag schema is read, added to and written back: a second signature
    of the same manifest joins the first. The same package copied twice
    within one second is the same manifest (its created annotation counts
    seconds); ECDSA signatures differ each time, so two referrers."""
    reg = registry_factory()
    key = keys["ecdsa"]
    m = mount(reg.host, opts=("sign_key=" + key.path,))
    os.mkdir(m.path("charts"))
    src = packages["helm-oci-test-0.1.0"]
    pushed = []
    while len(pushed) < 2 or pushed[-1] != pushed[-2]:
        if len(pushed) == 8:
            pytest.skip("two copies never fell within one second")
        assert cp(src, m.path("charts/")).returncode == 0, m.log()
        pushed.append(reg.manifest(REPO, "0.1.0")[1])
    digest, sigs = signatures(reg, REPO, "0.1.0")
    assert len(sigs) == pushed.count(digest) >= 2
    assert len(set(b for _, b in sigs)) == len(sigs)
    for _, bundle in sigs:
        check_statement(bundle, digest, key)
        assert sigstore_verify(tmp_path, bundle, key.pub_path)[0]


def test_provenance_added_later_signs_the_new_manifest(registry_factory, mount, helm4, keys,
                                                       tmp_path):
    """A .prov copied after its chart makes a new manifest for the tag: it
    is signed as the chart's own push was."""
    reg = registry_factory()
    key = keys["ecdsa"]
    tgz, prov = signed_package(helm4, tmp_path)
    m = mount(reg.host, opts=("sign_key=" + key.path,))
    os.mkdir(m.path("charts"))
    assert cp(tgz, m.path("charts/")).returncode == 0, m.log()
    before, _ = signatures(reg, "charts/web", "1.0.0")
    assert cp(prov, m.path("charts/")).returncode == 0, m.log()
    man, _, _ = reg.manifest("charts/web", "1.0.0")
    assert len(man["layers"]) == 2
    digest, sigs = signatures(reg, "charts/web", "1.0.0")
    assert digest != before and len(sigs) == 1
    check_statement(sigs[0][1], digest, key)
    assert sigstore_verify(tmp_path, sigs[0][1], key.pub_path)[0]


def test_key_file_others_can_read_fails_the_mount(registry_factory, mount, keys, tmp_path):
    reg = registry_factory()
    os.chmod(keys["ecdsa"].path, 0o640)
    m = mount(reg.host, opts=("sign_key=" + keys["ecdsa"].path,), check=False)
    assert not m.mounted and not os.path.ismount(m.mnt)
    lines = m.result.stderr.strip().splitlines()
    assert len(lines) == 1 and keys["ecdsa"].path in lines[0], m.result.stderr


@pytest.mark.parametrize("case", ["missing", "encrypted", "not-a-key", "public-key"])
def test_unusable_key_file_fails_the_mount(registry_factory, mount, keys, tmp_path, case):
    reg = registry_factory()
    path = str(tmp_path / "bad.key")
    if case == "encrypted":
        Key.write(path, keys["ecdsa"].priv, serialization.BestAvailableEncryption(b"secret"))
    elif case == "not-a-key":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        os.close(fd)
    elif case == "public-key":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, open(keys["ecdsa"].pub_path, "rb").read())
        os.close(fd)
    m = mount(reg.host, opts=("sign_key=" + path,), check=False)
    assert not m.mounted and not os.path.ismount(m.mnt)
    lines = m.result.stderr.strip().splitlines()
    assert len(lines) == 1 and path in lines[0], m.result.stderr


def test_failed_signature_push_fails_close_chart_stays(registry_factory, mount, helm4, packages,
                                                      keys, tmp_path):
    from proxy import RegistryProxy
    reg = registry_factory()
    src = packages["helm-oci-test-0.2.0"]
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, opts=("sign_key=" + keys["ecdsa"].path,))
        os.mkdir(m.path("charts"))
        # The referrer manifest goes by digest, the chart's by tag.
        proxy.fail(r"/manifests/sha256:", status=500, times=None, method="PUT")
        r = cp(src, m.path("charts/"))
        assert r.returncode != 0 and "Input/output error" in r.stderr, r.stderr
        log = m.log()
        assert sum("pushed but unsigned" in l for l in log.splitlines()) == 1, log
        # The chart is in, shown, and pulls as it was copied; unsigned.
        _, digest, _ = reg.manifest(REPO, "0.2.0")
        assert reg.tags(REPO) == ["0.2.0"]
        assert referrers_index(reg, REPO, digest) is None
        assert sorted(os.listdir(m.path(REPO))) == ["0.2.0", "helm-oci-test-0.2.0.tgz"]
        helm4.pull(reg.host, REPO, "0.2.0", str(tmp_path / "pull"))
        assert (tmp_path / "pull" / "helm-oci-test-0.2.0.tgz").read_bytes() == \
            open(src, "rb").read()


def test_registry_with_referrers_api_gets_no_tag_schema(registry_factory, mount, packages, keys):
    """A registry that answers the referrer's PUT with OCI-Subject keeps the
    referrers itself: no sha256-<hex> index is written."""
    from proxy import RegistryProxy
    reg = registry_factory()
    with RegistryProxy(reg.host) as proxy:
        m = mount(proxy.host, opts=("sign_key=" + keys["ecdsa"].path,))
        os.mkdir(m.path("charts"))
        proxy.reply(r"/manifests/sha256:", b"", status=201, method="PUT", times=1,
                    headers={"OCI-Subject": "sha256:" + "0" * 64})
        r = cp(packages["helm-oci-test-0.2.0"], m.path("charts/"))
        assert r.returncode == 0, r.stderr + m.log()
        assert proxy.count("/v2/%s/manifests/sha256-" % REPO) == 0
    assert reg.tags(REPO) == ["0.2.0"]


def test_rm_deletes_the_signature_too(registry_factory, mount, packages, keys):
    reg = registry_factory()
    m = mount(reg.host, opts=("sign_key=" + keys["ecdsa"].path,))
    os.mkdir(m.path("charts"))
    for v in ("0.1.0", "0.2.0"):
        assert cp(packages["helm-oci-test-" + v], m.path("charts/")).returncode == 0, m.log()
    digest, _ = signatures(reg, REPO, "0.1.0")
    other, _ = signatures(reg, REPO, "0.2.0")
    idx = referrers_index(reg, REPO, digest)
    os.unlink(m.path(REPO, "helm-oci-test-0.1.0.tgz"))
    # distribution 2.8 deletes by digest: the manifest, its referrer and
    # their index go; the other chart keeps its own.
    assert reg.tags(REPO) == ["0.2.0", "sha256-" + other[7:]]
    for d in idx["manifests"]:
        st, _, _ = reg.request("GET", "/v2/%s/manifests/%s" % (REPO, d["digest"]),
                               headers={"Accept": OCI_MANIFEST})
        assert st == 404, d
    assert len(signatures(reg, REPO, "0.2.0")[1]) == 1


def test_sighup_reads_the_key_again(registry_factory, mount, packages, keys, tmp_path):
    reg = registry_factory()
    key = keys["ecdsa"]
    m = mount(reg.host, opts=("sign_key=" + key.path,))
    os.mkdir(m.path("charts"))
    # The file now holds another key: pushes after SIGHUP are signed by it.
    os.replace(keys["other"].path, key.path)
    os.kill(m.pid, signal.SIGHUP)
    deadline = time.time() + 10
    while "SIGHUP: pushes are signed" not in m.log() and time.time() < deadline:
        time.sleep(0.05)
    assert cp(packages["helm-oci-test-0.1.0"], m.path("charts/")).returncode == 0, m.log()
    digest, sigs = signatures(reg, REPO, "0.1.0")
    check_statement(sigs[0][1], digest, keys["other"])
    assert sigstore_verify(tmp_path, sigs[0][1], keys["other"].pub_path)[0]
    assert not sigstore_verify(tmp_path, sigs[0][1], key.pub_path)[0]
    # A key file others can read is not taken: the key read before stays.
    os.chmod(key.path, 0o644)
    os.kill(m.pid, signal.SIGHUP)
    deadline = time.time() + 10
    while "not read again" not in m.log() and time.time() < deadline:
        time.sleep(0.05)
    assert "not read again" in m.log()
    assert cp(packages["helm-oci-test-0.2.0"], m.path("charts/")).returncode == 0, m.log()
    digest, sigs = signatures(reg, REPO, "0.2.0")
    assert sigstore_verify(tmp_path, sigs[0][1], keys["other"].pub_path)[0]


def test_rm_leaves_an_index_that_lists_other_artifacts(registry_factory, mount, packages, keys):
    """Referrers other tools attached (an SBOM) are not chartfs's to delete:
    an index that lists one stays whole, the chart goes."""
    reg = registry_factory()
    m = mount(reg.host, opts=("sign_key=" + keys["ecdsa"].path,))
    os.mkdir(m.path("charts"))
    assert cp(packages["helm-oci-test-0.1.0"], m.path("charts/")).returncode == 0, m.log()
    digest, _ = signatures(reg, REPO, "0.1.0")
    idx = referrers_index(reg, REPO, digest)
    sbom = reg.push_artifact(REPO, "sbom", [(b"{}", "application/spdx+json")])
    idx["manifests"].append({"mediaType": OCI_MANIFEST, "digest": sbom, "size": 1,
                             "artifactType": "application/spdx+json"})
    reg.push_manifest(REPO, "sha256-" + digest[7:], idx, media_type=OCI_INDEX)
    reg.delete_manifest(REPO, sbom)  # the tag "sbom" only made it
    os.unlink(m.path(REPO, "helm-oci-test-0.1.0.tgz"))
    assert reg.tags(REPO) == ["sha256-" + digest[7:]]
    assert referrers_index(reg, REPO, digest) == idx


def test_a_mount_that_signs_and_verifies_shows_what_it_pushed(registry_factory, mount, packages,
                                                              keys):
    """sign_key and verify_key with one key pair: the chart cp pushed is
    listed, opened and named as verified by its bundle at once; one pushed
    by another mount without signing stays hidden."""
    reg = registry_factory()
    key = keys["ecdsa"]
    m = mount(reg.host, ttl=30, opts=("sign_key=" + key.path, "verify_key=" + key.pub_path))
    plain = mount(reg.host, name="plain")
    os.mkdir(plain.path("charts"))
    r = cp(packages["helm-oci-test-0.1.0"], plain.path("charts/"))
    assert r.returncode == 0, r.stderr + plain.log()
    r = cp(packages["helm-oci-test-0.2.0"], m.path("charts/"))
    assert r.returncode == 0, r.stderr + m.log()
    assert sorted(os.listdir(m.path(REPO))) == ["0.2.0", "helm-oci-test-0.2.0.tgz"]
    with open(m.path(REPO, "0.2.0", "Chart.yaml")) as f:
        assert "0.2.0" in f.read()
    said = os.getxattr(m.path(REPO, "0.2.0"), "user.chartfs.verified").decode()
    assert said.startswith("cosign-bundle sha256:"), said
    assert "pushed but unsigned" not in m.log()
