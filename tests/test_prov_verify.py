"""helm provenance checked against an OpenPGP keyring (issue 17, -o keyring).

sign/prov.c through tests/unit/prov-tool, on provenance made by real tools:
`helm package --sign` (helm v3 and v4) with a throwaway GnuPG key, and
gpg itself for the texts helm would not write. `helm verify` is the
reference: what it accepts is OK, and each way to fail has its verdict.

Every check runs in a private GnuPG home under the tool's workdir: the
tool's HOME and GNUPGHOME are never created, the workdir is empty after it,
and no gpg-agent or dirmngr of any home of this run is left running.
"""
import os
import shutil
import subprocess

import pytest

from util import CHARTS, file_sha256, isolated_env, sanitizer_env, sanitizer_reports

SIGNER = "Chart Signer <signer@example.com>"
OTHER = "Other Signer <other@example.com>"
SUBKEY = "Subkey Signer <subkey@example.com>"
EXPIRED = "Expired Signer <expired@example.com>"
WEB = "web-1.0.0.tgz"
OCI_PROV_LAYER_MAX = 1 << 20  # client/manifest.h: the cap prov_verify reads up to


def _gpg(home, *args):
    env = dict(os.environ, GNUPGHOME=str(home))
    return subprocess.run(["gpg", "--batch", "--yes", "--pinentry-mode", "loopback",
                           "--passphrase", "", *args], env=env, capture_output=True,
                          check=True, timeout=120).stdout


def _kill_daemons(home):
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False,
                   capture_output=True)


def _fpr(home, uid):
    out = _gpg(home, "--with-colons", "--list-keys", uid).decode()
    return next(l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:"))


def _revoked_keyring(d, signer_pub, rev_file):
    """The signer's public key with its revocation (gpg wrote the
    certificate at key generation, its first line escaped with ':')."""
    home = d / "revoker"
    home.mkdir(mode=0o700)
    rev = d / "signer.rev"
    rev.write_text(rev_file.read_text().replace(":-----BEGIN", "-----BEGIN"))
    try:
        _gpg(home, "--import", str(signer_pub))
        _gpg(home, "--import", str(rev))
        (d / "revoked.gpg").write_bytes(_gpg(home, "--export"))
    finally:
        _kill_daemons(home)
    return d / "revoked.gpg"


def _clearsign(home, d, name, text, *users):
    src = d / (name + ".txt")
    src.write_text(text)
    args = [a for u in users for a in ("--local-user", u)]
    _gpg(home, *args, "--clearsign", "-o", str(d / name), str(src))
    return d / name


def _texts(home, d, fa, fb, digest):
    """Clear-signed texts of helm's layout (or not) made by gpg."""
    good = "name: web\nversion: 1.0.0\n\n...\nfiles:\n  %s: %s\n" % (WEB, digest)
    out = {
        "handmade": _clearsign(home, d, "handmade", good, fa),
        "two-sigs": _clearsign(home, d, "two-sigs", good, fa, fb),
        "no-separator": _clearsign(home, d, "no-separator",
                                   "name: web\nfiles:\n  %s: %s\n" % (WEB, digest), fa),
        "files-list": _clearsign(home, d, "files-list",
                                 "name: web\n...\nfiles:\n- %s\n" % WEB, fa),
        "files-twice": _clearsign(home, d, "files-twice", good + "  %s: %s\n"
                                  % (WEB, digest), fa),
        "not-mine": _clearsign(home, d, "not-mine", "name: web\n...\nfiles:\n"
                               "  other-1.0.0.tgz: %s\n" % digest, fa),
    }
    src = d / "handmade.txt"
    _gpg(home, "--local-user", fa, "--sign", "--armor", "-o", str(d / "opaque.asc"), str(src))
    _gpg(home, "--local-user", fa, "--detach-sign", "--armor", "-o", str(d / "detached.asc"),
         str(src))
    out["opaque"] = d / "opaque.asc"
    out["detached"] = d / "detached.asc"
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory, helm3, helm4):
    """Keys (a signer, another, one with a signing subkey, one expired
    since it signed) and their keyrings (binary, armored, all keys in one,
    revoked, helm's secring), web signed by helm v3 and v4, another chart
    signed by helm v4, and gpg's own clear-signed texts."""
    d = tmp_path_factory.mktemp("prov")
    home = d / "gnupg"
    home.mkdir(mode=0o700)
    k = {"dir": d}
    try:
        for uid in (SIGNER, OTHER, SUBKEY):
            _gpg(home, "--quick-gen-key", uid, "rsa2048", "sign", "never")
        fa, fb, fs = _fpr(home, SIGNER), _fpr(home, OTHER), _fpr(home, SUBKEY)
        k["fpr"], k["other_fpr"], k["sub_fpr"] = fa, fb, fs
        # A key that expired in 2020, and a text it signed back then.
        past = ("--faked-system-time", "20200101T000000")
        _gpg(home, *past, "--quick-gen-key", EXPIRED, "rsa2048", "sign", "1d")
        fe = _fpr(home, EXPIRED)
        (d / "expired.gpg").write_bytes(_gpg(home, "--export", fe))
        k["expired.gpg"] = d / "expired.gpg"
        (d / "expired.txt").write_text("name: web\n...\nfiles: {}\n")
        _gpg(home, *past, "--local-user", fe, "--clearsign", "-o", str(d / "expired-signed"),
             str(d / "expired.txt"))
        k["expired-signed"] = d / "expired-signed"
        # A signing subkey: gpg signs with it, not with the primary key.
        _gpg(home, "--quick-add-key", fs, "rsa2048", "sign", "never")
        (d / "sub.gpg").write_bytes(_gpg(home, "--export", fs))
        k["sub.gpg"] = d / "sub.gpg"
        k["sub-signed"] = _clearsign(home, d, "sub-signed", "name: web\n...\nfiles:\n"
                                     "  %s: %s\n" % (WEB, "sha256:" + "1" * 64), fs)
        for name, args in {"signer.gpg": [fa], "signer.asc": ["--armor", fa],
                           "other.gpg": [fb], "both.gpg": []}.items():
            (d / name).write_bytes(_gpg(home, "--export", *args))
            k[name] = d / name
        (d / "secring.gpg").write_bytes(_gpg(home, "--export-secret-keys", fa))
        k["secring.gpg"] = d / "secring.gpg"
        k["revoked.gpg"] = _revoked_keyring(d, k["signer.gpg"],
                                            home / "openpgp-revocs.d" / (fa + ".rev"))
        for helm in (helm3, helm4):
            name = os.path.basename(helm.binary)
            out = d / name
            helm.run("package", "--sign", "--key", "Chart Signer", "--keyring",
                     str(d / "secring.gpg"), os.path.join(CHARTS, "web"), "-d", str(out))
            k[name] = out / WEB
        helm4.run("package", "--sign", "--key", "Chart Signer", "--keyring",
                  str(d / "secring.gpg"), os.path.join(CHARTS, "helm-oci-test-0.1.0"),
                  "-d", str(d / "another"))
        k["another"] = d / "another" / "helm-oci-test-0.1.0.tgz"
        k["texts"] = _texts(home, d, fa, fb, file_sha256(k["helm4"]))
    finally:
        _kill_daemons(home)
    return k


def _leftovers(base):
    """GnuPG processes (gpg, gpg-agent, dirmngr, gpgconf) running on a home
    below base. Only those: other tests' session fixtures (a registry) live
    under the same base temp dir while the suite runs."""
    r = subprocess.run(["pgrep", "-a", "-f", "--", base], capture_output=True, text=True)
    return "\n".join(line for line in r.stdout.splitlines()
                     if "gpg" in line or "dirmngr" in line)


@pytest.fixture(autouse=True)
def no_daemon_left(tmp_path_factory):
    yield
    base = str(tmp_path_factory.getbasetemp()) + "/"
    left = _leftovers(base)
    assert not left, "processes left behind:\n" + left


@pytest.fixture
def tool(build_dir, tmp_path):
    """tool(keyring, prov, name, digest, *opts) -> (exit code, {key: value},
    stderr), checking it left nothing behind."""
    binary = os.path.join(build_dir, "tests", "unit", "prov-tool")
    assert os.access(binary, os.X_OK), "%s was not built" % binary
    work, san = tmp_path / "work", tmp_path / "sanitizers"
    work.mkdir()
    san.mkdir()
    env = sanitizer_env(isolated_env(str(tmp_path / "env")), str(san))
    env["GNUPGHOME"] = str(tmp_path / "user-gnupg")

    def run(keyring, prov, name, digest, *opts, wrap=()):
        r = subprocess.run([*wrap, binary, "-w", str(work), *opts, str(keyring), str(prov),
                            name, digest], env=env, capture_output=True, text=True,
                           timeout=300)
        out = dict(l.split(" ", 1) for l in r.stdout.splitlines())
        assert os.listdir(work) == [], "the private GnuPG home was left in the workdir"
        assert not os.path.exists(env["GNUPGHOME"]), "the user's GNUPGHOME was used"
        assert not os.path.exists(os.path.join(env["HOME"], ".gnupg")), "~/.gnupg was used"
        reports = sanitizer_reports(str(san))
        assert not reports, "\n".join(reports)
        return r.returncode, out, r.stderr

    return run


def _check(tool, keyring, prov, name=WEB, digest=None, pkg=None):
    rc, out, err = tool(keyring, prov, name, digest or file_sha256(pkg))
    assert rc == 0, (rc, out, err)
    return out


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
def test_helm_signed_package_verifies(keys, tool, helm, request):
    pkg = keys[helm]
    prov = str(pkg) + ".prov"
    r = request.getfixturevalue(helm).run("verify", "--keyring", str(keys["signer.gpg"]),
                                           str(pkg), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    for ring in ("signer.gpg", "signer.asc", "both.gpg"):
        out = _check(tool, keys[ring], prov, pkg=pkg)
        assert out["verdict"] == "SIGN_OK", (ring, out)
        assert out["mech"] == "helm-prov"
        assert out["fpr"] == "openpgp:" + keys["fpr"]
        assert out["keyring"] == file_sha256(keys[ring])


def test_another_keyring_is_wrong_key(keys, tool):
    out = _check(tool, keys["other.gpg"], str(keys["helm4"]) + ".prov", pkg=keys["helm4"])
    assert out == {"keyring": file_sha256(keys["other.gpg"]), "verdict": "SIGN_WRONG_KEY",
                   "mech": "-", "fpr": "-"}


def test_one_byte_of_signed_text_changed_is_bad_sig(keys, tool, helm4, tmp_path):
    prov = (str(keys["helm4"]) + ".prov")
    data = bytearray(open(prov, "rb").read())
    i = data.index(b"description: ") + len(b"description: ")
    data[i] ^= 0x20  # "A web app" -> "a web app": still text, still YAML
    bad = tmp_path / WEB
    shutil.copy(keys["helm4"], bad)
    (tmp_path / (WEB + ".prov")).write_bytes(bytes(data))
    r = helm4.run("verify", "--keyring", str(keys["signer.gpg"]), str(bad), check=False)
    assert r.returncode != 0, "helm verify accepted a changed text"
    out = _check(tool, keys["signer.gpg"], tmp_path / (WEB + ".prov"), pkg=keys["helm4"])
    assert (out["verdict"], out["fpr"]) == ("SIGN_BAD_SIG", "-")


def test_revoked_key_is_bad_sig(keys, tool):
    out = _check(tool, keys["revoked.gpg"], str(keys["helm4"]) + ".prov", pkg=keys["helm4"])
    assert out["verdict"] == "SIGN_BAD_SIG"


def test_expired_key_is_bad_sig(keys, tool):
    """Signed while the key was valid; the key has expired since."""
    out = _check(tool, keys["expired.gpg"], keys["expired-signed"], digest="sha256:" + "1" * 64)
    assert out["verdict"] == "SIGN_BAD_SIG"


def test_provenance_for_another_digest_or_package(keys, tool):
    prov = str(keys["helm4"]) + ".prov"
    other = "sha256:" + "0" * 64
    out = _check(tool, keys["signer.gpg"], prov, digest=other)
    assert (out["verdict"], out["mech"], out["fpr"]) == ("SIGN_OTHER_DIGEST", "-", "-")
    # A good provenance of helm-oci-test, served beside web's package.
    another = str(keys["another"]) + ".prov"
    out = _check(tool, keys["signer.gpg"], another, pkg=keys["helm4"])
    assert out["verdict"] == "SIGN_OTHER_DIGEST"
    out = _check(tool, keys["signer.gpg"], another, name=os.path.basename(keys["another"]),
                 pkg=keys["another"])
    assert out["verdict"] == "SIGN_OK"
    # gpg's own clear signature of helm's layout is read the same way.
    t = keys["texts"]
    assert _check(tool, keys["signer.gpg"], t["handmade"], pkg=keys["helm4"])["verdict"] \
        == "SIGN_OK"
    assert _check(tool, keys["signer.gpg"], t["not-mine"], pkg=keys["helm4"])["verdict"] \
        == "SIGN_OTHER_DIGEST"


def test_only_the_first_clear_signed_block_counts(keys, tool, tmp_path):
    """As helm's clearsign.Decode: text before the block and anything after
    its END line are not read."""
    web = open(str(keys["helm4"]) + ".prov", "rb").read()
    another = open(str(keys["another"]) + ".prov", "rb").read()
    (tmp_path / "web-first").write_bytes(b"unsigned words\n" + web + b"\n" + another)
    (tmp_path / "another-first").write_bytes(another + b"\n" + web)
    assert _check(tool, keys["signer.gpg"], tmp_path / "web-first",
                  pkg=keys["helm4"])["verdict"] == "SIGN_OK"
    assert _check(tool, keys["signer.gpg"], tmp_path / "another-first",
                  pkg=keys["helm4"])["verdict"] == "SIGN_OTHER_DIGEST"


def test_two_signatures_one_by_the_keyring(keys, tool):
    prov = keys["texts"]["two-sigs"]
    for ring, fpr in (("signer.gpg", keys["fpr"]), ("other.gpg", keys["other_fpr"])):
        out = _check(tool, keys[ring], prov, pkg=keys["helm4"])
        assert (out["verdict"], out["fpr"]) == ("SIGN_OK", "openpgp:" + fpr), ring


def test_subkey_signature_names_the_primary_key(keys, tool, tmp_path):
    """fpr is the primary key's, as helm verify and gpg --fingerprint show
    it, though the signature names the subkey."""
    out = _check(tool, keys["sub.gpg"], keys["sub-signed"], digest="sha256:" + "1" * 64)
    assert (out["verdict"], out["fpr"]) == ("SIGN_OK", "openpgp:" + keys["sub_fpr"])
    lp = tmp_path / "list-packets"
    lp.mkdir(mode=0o700)
    sig = subprocess.run(["gpg", "--list-packets"], input=open(keys["sub-signed"], "rb").read(),
                         capture_output=True, env=dict(os.environ, GNUPGHOME=str(lp)))
    assert keys["sub_fpr"][-16:] not in sig.stdout.decode(), "signed by the primary key"


@pytest.mark.parametrize("case", ["opaque", "detached", "garbage", "empty", "unsigned",
                                  "no-separator", "files-list", "files-twice", "too-big"])
def test_not_a_readable_provenance_is_broken(keys, tool, case, tmp_path):
    prov = str(keys["helm4"]) + ".prov"
    data = open(prov, "rb").read()
    made = {
        "garbage": os.urandom(4096),
        "empty": b"",
        # The signed text without its signature.
        "unsigned": data[:data.index(b"-----BEGIN PGP SIGNATURE-----")],
        # A good provenance behind more unsigned text than a provenance holds.
        "too-big": b"x" * OCI_PROV_LAYER_MAX + b"\n" + data,
    }
    if case in made:
        path = tmp_path / case
        path.write_bytes(made[case])
    else:
        path = keys["texts"][case]
    out = _check(tool, keys["signer.gpg"], path, pkg=keys["helm4"])
    assert (out["verdict"], out["mech"], out["fpr"]) == ("SIGN_BROKEN", "-", "-")


@pytest.mark.parametrize("ring", ["garbage", "empty", "secring.gpg", "too-big"])
def test_keyring_without_public_key_is_refused(keys, tool, ring, tmp_path):
    if ring in keys:
        path = keys[ring]
    else:
        path = tmp_path / ring
        # too-big: a good keyring behind more than PROV_KEYRING_MAX (8 MiB).
        path.write_bytes({"garbage": os.urandom(2048), "empty": b"",
                          "too-big": b"\0" * (8 << 20) + keys["signer.gpg"].read_bytes()}[ring])
    rc, out, err = tool(path, str(keys["helm4"]) + ".prov", WEB, file_sha256(keys["helm4"]))
    assert rc == 2 and "verdict" not in out, (rc, out, err)
    lines = [l for l in err.splitlines() if str(path) in l]
    assert len(lines) == 1, err
    if ring == "secring.gpg":
        assert "secret" in lines[0]


def test_threads_share_one_keyring(keys, tool):
    rc, out, err = tool(keys["signer.gpg"], str(keys["helm4"]) + ".prov", WEB,
                        file_sha256(keys["helm4"]), "-t", "8")
    assert rc == 0, (rc, out, err)
    assert out["verdict"] == "SIGN_OK"


@pytest.mark.slow
def test_under_valgrind(keys, tool, build_dir):
    """memcheck of the tool's own process. gpg and gpgconf, which it
    spawns, are not traced, nor are gpgme's intermediate children (a
    double fork: their exit is not the tool's). One thread: in a forked
    child of a threaded program under valgrind the intermediate child
    fails, which says nothing of chartfs (-t runs in the ASan pass)."""
    if not shutil.which("valgrind"):
        pytest.skip("valgrind is not installed")
    binary = os.path.join(build_dir, "tests", "unit", "prov-tool")
    if b"__asan_init" in open(binary, "rb").read():
        pytest.skip("a sanitized build does not run under valgrind")
    wrap = ("valgrind", "--quiet", "--trace-children=no", "--child-silent-after-fork=yes",
            "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect")
    digest = file_sha256(keys["helm4"])
    for ring, prov, want in ((keys["signer.gpg"], str(keys["helm4"]) + ".prov", "SIGN_OK"),
                             (keys["signer.gpg"], keys["texts"]["files-twice"], "SIGN_BROKEN"),
                             (keys["other.gpg"], keys["texts"]["handmade"], "SIGN_WRONG_KEY"),
                             (keys["secring.gpg"], keys["texts"]["handmade"], None)):
        rc, out, err = tool(ring, prov, WEB, digest, wrap=wrap)
        assert rc == (0 if want else 2), (rc, out, err)
        assert out.get("verdict") == want, (out, err)
