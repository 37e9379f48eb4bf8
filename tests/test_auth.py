"""Log-in state, auth flows and TLS against the real Debian docker-registry.

Each test starts its own registry (htpasswd basic auth, token auth with a
token server here, TLS, mTLS) and mounts it as a user would: credentials come
from config.json files written like docker's and helm's (or by real
`helm registry login`), from a credential helper on PATH, or from
-o username + password_file. The token server signs RS256 JWTs with the
openssl CLI (Debian's python has no crypto module).
"""
import base64
import errno
import http.client
import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from proxy import RegistryProxy
from util import Registry, find_pid, sanitizer_env, sanitizer_reports

USER, PASSWORD = "alice", "s3cret-Pa55word"
REPO = "charts/helm-oci-test"
PKG = "helm-oci-test-0.1.0"
SERVICE, ISSUER = "chartfs-test-registry", "chartfs-test-issuer"


# ---- certificates ----------------------------------------------------------

def openssl(*args, **kw):
    subprocess.run(["openssl", *args], check=True, capture_output=True, **kw)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    made with the openssl CLI; and a self-signed key pair for JWTs."""
    d = tmp_path_factory.mktemp("pki")
    p = {n: str(d / n) for n in ("ca.key", "ca.pem", "server.key", "server.pem",
                                 "client.key", "client.pem", "jwt.key", "jwt.pem")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca.key"],
            "-out", p["ca.pem"], "-days", "2", "-subj", "/CN=chartfs test CA")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        extfile = str(d / (name + ".ext"))
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        csr = str(d / (name + ".csr"))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p[name + ".key"],
                "-out", csr, "-subj", "/CN=127.0.0.1" if name == "server" else "/CN=client")
        openssl("x509", "-req", "-in", csr, "-CA", p["ca.pem"], "-CAkey", p["ca.key"],
                "-CAcreateserial", "-out", p[name + ".pem"], "-days", "2",
                "-extfile", extfile)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["jwt.key"],
            "-out", p["jwt.pem"], "-days", "2", "-subj", "/CN=token signer")
    der = subprocess.run(["openssl", "x509", "-in", p["jwt.pem"], "-outform", "DER"],
                         check=True, capture_output=True).stdout
    p["jwt.x5c"] = base64.b64encode(der).decode()
    for k in ("client.key", "server.key"):
        os.chmod(p[k], 0o600)
    return p


def htpasswd_file(path, user=USER, password=PASSWORD):
    r = subprocess.run(["htpasswd", "-Bbn", user, password], check=True,
                       capture_output=True, text=True)
    with open(path, "w") as f:
        f.write(r.stdout)
    return path


# ---- registries ------------------------------------------------------------

class AuthRegistry(Registry):
    """util.Registry with an auth: section and optional TLS (+ client CAs)."""

    def __init__(self, workdir, auth="", tls=None, clientca=None):
        self.auth_yaml, self.tls, self.clientca = auth, tls, clientca
        super().__init__(workdir)

    def _config(self):
        path = os.path.join(self.dir, "config.yml")
        tls = ""
        if self.tls:
            tls = ", tls: {certificate: %s, key: %s%s}" % (
                self.tls[0], self.tls[1],
                ", clientcas: [%s]" % self.clientca if self.clientca else "")
        with open(path, "w") as f:
            f.write("version: 0.1\n"
                    "log: {level: error, accesslog: {disabled: true}}\n"
                    "storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\n"
                    "http: {addr: '%s'%s}\n%s\n"
                    % (os.path.join(self.dir, "data"), self.host, tls, self.auth_yaml))
        return path


# ---- the token server --------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The distribution token spec, enough for distribution 2.8: GET with
    Basic credentials or anonymously, POST grant_type=refresh_token. Users get
    every action they ask for but those in `deny`; anonymous callers get none.
    Served over HTTPS (the server certificate for 127.0.0.1) unless tls=False:
    a realm on another origin gets credentials only over HTTPS. Records
    requests, and the Authorization header of each."""

    def __init__(self, pki, users=None, refresh_tokens=(), expires_in=300, tls=True,
                 deny=()):
        self.pki = pki
        self.users = dict(users or {USER: PASSWORD})
        self.refresh_tokens = set(refresh_tokens)
        self.expires_in = expires_in
        self.deny = set(deny)
        self.post_404 = False
        self.expired = 0          # how many tokens to issue already expired
        self.requests = []        # (method, [scopes], who)
        self.authorization = []   # the Authorization header of each request, or None
        self.issued = []
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                who = None
                auth = self.headers.get("Authorization", "")
                with srv.lock:
                    srv.authorization.append(self.headers.get("Authorization"))
                if auth.startswith("Basic "):
                    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    if srv.users.get(user) != pw:
                        return self.answer(401, {"details": "wrong credentials"})
                    who = user
                srv.grant(self, "GET", q.get("scope", []), who)

            def do_POST(self):
                with srv.lock:
                    srv.authorization.append(self.headers.get("Authorization"))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                f = urllib.parse.parse_qs(body)
                if srv.post_404:
                    with srv.lock:
                        srv.requests.append(("POST", [], None))
                    return self.answer(404, {})
                if (f.get("grant_type") != ["refresh_token"] or f.get("client_id") != ["chartfs"]
                        or f.get("refresh_token", [""])[0] not in srv.refresh_tokens):
                    return self.answer(401, {"error": "invalid_grant"})
                scopes = " ".join(f.get("scope", [])).split()
                srv.grant(self, "POST", scopes, "refresh")

            def answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pki["server.pem"], pki["server.key"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.realm = "%s://127.0.0.1:%d/token" % ("https" if tls else "http", self.port)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def jwt(self, access, expired):
        now = int(time.time())
        exp = now - 3600 if expired else now + self.expires_in
        head = {"typ": "JWT", "alg": "RS256", "x5c": [self.pki["jwt.x5c"]]}
        claims = {"iss": ISSUER, "sub": "x", "aud": SERVICE, "exp": exp, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = ("%s.%s" % (b64url(json.dumps(head).encode()),
                              b64url(json.dumps(claims).encode()))).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.pki["jwt.key"]],
                             input=signing, check=True, capture_output=True).stdout
        return signing.decode() + "." + b64url(sig)

    def grant(self, handler, method, scopes, who):
        access = []
        for s in scopes:
            typ, rest = s.split(":", 1)
            name, _, actions = rest.rpartition(":")
            if who and s not in self.deny:
                access.append({"type": typ, "name": name, "actions": actions.split(",")})
        with self.lock:
            self.requests.append((method, scopes, who))
            expired = self.expired > 0
            self.expired -= 1 if expired else 0
        tok = self.jwt(access, expired)
        with self.lock:
            self.issued.append(tok)
        handler.answer(200, {"token": tok, "access_token": tok, "expires_in": self.expires_in})

    def scopes(self):
        with self.lock:
            return [s for _, ss, _ in self.requests for s in ss]

    def auth_yaml(self):
        return ("auth: {token: {realm: '%s', service: %s, issuer: %s, rootcertbundle: %s}}"
                % (self.realm, SERVICE, ISSUER, self.pki["jwt.pem"]))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- mounts ------------------------------------------------------------------

class Env:
    """An isolated home (no user credentials), config files and mounts."""

    def __init__(self, chartfs_bin, tmp_path, base_env):
        self.bin = chartfs_bin
        self.dir = str(tmp_path)
        self.env = dict(base_env)
        self.san = os.path.join(self.dir, "sanitizers")
        os.makedirs(self.san, exist_ok=True)
        self.mounts = []
        self.regs = []
        self.servers = []

    def docker_config(self, content, which="DOCKER_CONFIG"):
        """Write config.json where `which` ($DOCKER_CONFIG or
        $HELM_REGISTRY_CONFIG) points."""
        path = (os.path.join(self.env["DOCKER_CONFIG"], "config.json")
                if which == "DOCKER_CONFIG" else self.env[which])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(content, f)
        return path

    def registry(self, **kw):
        r = AuthRegistry(os.path.join(self.dir, "registry%d" % len(self.regs)), **kw)
        self.regs.append(r)
        return r

    def run(self, target, opts=(), env=None, check=True, name=None):
        """chartfs -o OPTS target MNT: (returncode, stderr, mnt, cache)."""
        n = len(self.mounts)
        mnt = os.path.join(self.dir, name or "mnt%d" % n)
        cache = os.path.join(self.dir, "cache%d" % n)
        os.makedirs(mnt, exist_ok=True)
        cmd = [self.bin, "-o", ",".join(["cache_dir=" + cache, "ttl=0", *opts]), target, mnt]
        e = sanitizer_env(dict(self.env, **(env or {})), self.san)
        r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=60)
        pid = find_pid(cmd) if r.returncode == 0 else None
        self.mounts.append((mnt, pid))
        if check:
            assert r.returncode == 0, r.stderr
            assert os.path.ismount(mnt)
        return r, mnt, cache

    def mount(self, target, opts=(), env=None):
        return self.run(target, opts, env)[1]

    def close(self):
        """Unmount everything, then wait for the daemons together (each
        takes a moment to exit), then stop the servers."""
        problems = []
        for mnt, pid in self.mounts:
            if not os.path.ismount(mnt):
                continue
            if pid and not os.path.exists("/proc/%d" % pid):
                problems.append("chartfs on %s died" % mnt)
            for _ in range(20):
                if subprocess.run(["fusermount3", "-u", mnt],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        deadline = time.time() + 20
        for _, pid in self.mounts:
            while pid and os.path.exists("/proc/%d" % pid) and time.time() < deadline:
                time.sleep(0.02)
            if pid and os.path.exists("/proc/%d" % pid):
                problems.append("chartfs %d did not exit after its unmount" % pid)
        for r in self.regs:
            r.stop()
        for s in self.servers:
            s.stop()
        return problems + sanitizer_reports(self.san)


@pytest.fixture
def e(chartfs_bin, tmp_path, env):
    x = Env(chartfs_bin, tmp_path, env)
    yield x
    problems = x.close()
    assert not problems, "\n".join(problems)


def auth_b64(user=USER, password=PASSWORD):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def cp(src, dst):
    return subprocess.run(["cp", src, dst], capture_output=True, text=True)


def publish_read_delete(e, target, opts, packages, env=None):
    """What every auth mode must allow: cp publishes, a fresh mount (cold
    cache) lists and reads it, rm deletes it."""
    m = e.mount(target, opts, env)
    os.makedirs(os.path.join(m, "charts"), exist_ok=True)
    r = cp(packages[PKG], os.path.join(m, "charts/"))
    assert r.returncode == 0, r.stderr
    m2 = e.mount(target, opts, env)
    repo = os.path.join(m2, REPO)
    assert sorted(os.listdir(repo)) == ["0.1.0", PKG + ".tgz"]
    with open(os.path.join(repo, "0.1.0", "Chart.yaml")) as f:
        assert "name: helm-oci-test" in f.read()
    with open(os.path.join(repo, PKG + ".tgz"), "rb") as f:
        assert f.read() == open(packages[PKG], "rb").read()
    assert "charts" in os.listdir(m2)  # the catalog, with its own scope
    os.unlink(os.path.join(repo, PKG + ".tgz"))
    assert os.listdir(repo) == []
    return m2


# ---- basic auth --------------------------------------------------------------

def htpasswd_registry(e):
    return e.registry(auth="auth: {htpasswd: {realm: test, path: %s}}"
                      % htpasswd_file(os.path.join(e.dir, "htpasswd")))


@pytest.mark.parametrize("key", ["host", "https://host", "https://host/v1/"])
def test_basic_auth_from_docker_config(e, packages, key):
    reg = htpasswd_registry(e)
    e.docker_config({"auths": {key.replace("host", reg.host): {"auth": auth_b64()}}})
    publish_read_delete(e, reg.host, ["plain_http"], packages)


def test_basic_auth_username_password_file(e, packages):
    reg = htpasswd_registry(e)
    pw = os.path.join(e.dir, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    publish_read_delete(e, reg.host, ["plain_http", "username=" + USER, "password_file=" + pw],
                        packages)
    os.chmod(pw, 0o640)
    r, _, _ = e.run(reg.host, ["plain_http", "username=" + USER, "password_file=" + pw],
                    check=False)
    assert r.returncode != 0 and "chmod 600" in r.stderr
    assert PASSWORD not in r.stderr


def expect_refused_mount(e, target, opts, source):
    """Credentials the registry refuses fail the mount, in a line naming
    the registry and where the credentials came from, never the secret."""
    r, mnt, _ = e.run(target, opts, check=False)
    assert r.returncode != 0 and not os.path.ismount(mnt)
    line = [l for l in r.stderr.splitlines() if "refused the credentials" in l]
    assert len(line) == 1 and target in line[0] and source in line[0], r.stderr
    assert PASSWORD not in r.stderr and "wrong" not in r.stderr


def test_anonymous_is_eacces_and_a_wrong_password_fails_the_mount(e, packages):
    reg = htpasswd_registry(e)
    e.docker_config({"auths": {reg.host: {"username": USER, "password": PASSWORD}}})
    m = e.mount(reg.host, ["plain_http"])
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    path = e.docker_config({"auths": {reg.host: {"auth": auth_b64(password="wrong")}}})
    expect_refused_mount(e, reg.host, ["plain_http"], path)
    e.docker_config({})
    m = e.mount(reg.host, ["plain_http"])
    with pytest.raises(PermissionError):
        os.listdir(os.path.join(m, REPO))
    with pytest.raises(PermissionError):
        open(os.path.join(m, REPO, "0.1.0", "Chart.yaml")).close()


def test_sighup_reads_the_credentials_again(e, packages):
    """Credentials fixed (or rotated) in the file take effect at SIGHUP,
    without a remount, and the tokens of the old ones are not kept."""
    reg = htpasswd_registry(e)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, ["plain_http"])
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    e.docker_config({})
    r, m, _ = e.run(reg.host, ["plain_http"])  # anonymous: mounts, reads refused
    with pytest.raises(PermissionError):
        os.listdir(os.path.join(m, REPO))
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    os.kill(e.mounts[-1][1], signal.SIGHUP)
    deadline = time.time() + 10
    while True:
        try:
            assert os.listdir(os.path.join(m, REPO)) == ["0.1.0", PKG + ".tgz"]
            break
        except PermissionError:
            assert time.time() < deadline, "SIGHUP did not read the credentials again"
            time.sleep(0.1)


def test_helm_file_first_then_docker_and_registry_config_option(e, packages):
    reg = htpasswd_registry(e)
    # Helm's file names another host only: the host is looked up in docker's.
    e.docker_config({"auths": {"other.example": {"auth": auth_b64(password="x")}}},
                    which="HELM_REGISTRY_CONFIG")
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, ["plain_http"])
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    # Helm's file wins over docker's when both name the host.
    helm_file = e.docker_config({"auths": {reg.host: {"auth": auth_b64(password="wrong")}}},
                                which="HELM_REGISTRY_CONFIG")
    expect_refused_mount(e, reg.host, ["plain_http"], helm_file)
    # -o registry_config wins over both.
    own = os.path.join(e.dir, "own.json")
    with open(own, "w") as f:
        json.dump({"auths": {"http://%s" % reg.host: {"auth": auth_b64()}}}, f)
    m = e.mount(reg.host, ["plain_http", "registry_config=" + own])
    assert os.listdir(os.path.join(m, REPO)) == ["0.1.0", PKG + ".tgz"]
    r, _, _ = e.run(reg.host, ["plain_http", "registry_config=" + own + ".missing"],
                    check=False)
    assert r.returncode != 0 and "own.json.missing" in r.stderr


# ---- credential helpers -------------------------------------------------------

HELPER = """#!/bin/sh
read -r server
echo "$server" >> "%(log)s"
if [ "$server" = "%(host)s" ]; then
  printf '{"ServerURL":"%%s","Username":"%(user)s","Secret":"%(secret)s"}' "$server"
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
"""


def helper_on_path(e, name, host, user, secret):
    bindir = os.path.join(e.dir, "bin")
    os.makedirs(bindir, exist_ok=True)
    log = os.path.join(e.dir, name + ".log")
    path = os.path.join(bindir, "docker-credential-" + name)
    with open(path, "w") as f:
        f.write(HELPER % {"log": log, "host": host, "user": user, "secret": secret})
    os.chmod(path, 0o755)
    e.env["PATH"] = bindir + ":" + e.env["PATH"]
    return log


def test_credential_helper_on_path(e, packages):
    reg = htpasswd_registry(e)
    log = helper_on_path(e, "test", reg.host, USER, PASSWORD)
    helper_on_path(e, "none", "nothing.example", USER, "x")
    e.docker_config({"credHelpers": {reg.host: "test"}, "credsStore": "none",
                     "auths": {reg.host: {}}})
    publish_read_delete(e, reg.host, ["plain_http"], packages)
    assert open(log).read().split() == [reg.host] * 2  # one lookup per mount
    # credsStore that does not know the host: anonymous, then auths.
    e.docker_config({"credsStore": "none"})
    m = e.mount(reg.host, ["plain_http"])
    with pytest.raises(PermissionError):
        os.listdir(os.path.join(m, REPO))
    e.docker_config({"credsStore": "none", "auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, ["plain_http"])
    assert os.listdir(os.path.join(m, REPO)) == []


# ---- token auth ----------------------------------------------------------------

def token_setup(e, pki, **kw):
    ts = TokenServer(pki, **kw)
    e.servers.append(ts)
    return ts, e.registry(auth=ts.auth_yaml())


def tok_opts(pki):
    """A plain-http registry whose token realm is HTTPS on another port."""
    return ["plain_http", "ca_file=" + pki["ca.pem"]]


def test_token_auth_basic_credentials_and_scopes(e, pki, packages):
    ts, reg = token_setup(e, pki)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    publish_read_delete(e, reg.host, tok_opts(pki), packages)
    got = set(ts.scopes())
    for s in ("repository:%s:pull" % REPO, "repository:%s:pull,push" % REPO,
              "repository:%s:delete" % REPO, "registry:catalog:*"):
        assert s in got, (s, got)
    assert all(m == "GET" and who == USER for m, _, who in ts.requests if _)
    # Tokens are reused per scope: listing again asks the realm nothing new.
    m = e.mount(reg.host, tok_opts(pki))
    os.listdir(os.path.join(m, REPO))
    n = len(ts.requests)
    for _ in range(3):
        os.listdir(os.path.join(m, REPO))
    assert len(ts.requests) == n


def test_token_auth_wrong_password_and_anonymous(e, pki, packages):
    ts, reg = token_setup(e, pki)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, tok_opts(pki))
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    path = e.docker_config({"auths": {reg.host: {"auth": auth_b64(password="wrong")}}})
    expect_refused_mount(e, reg.host, tok_opts(pki), path)
    e.docker_config({})
    m = e.mount(reg.host, tok_opts(pki))
    with pytest.raises(PermissionError):
        os.listdir(os.path.join(m, REPO))
    os.makedirs(os.path.join(m, "charts"), exist_ok=True)
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode != 0


def test_token_auth_identity_token_post_from_helper(e, pki, packages):
    ts, reg = token_setup(e, pki, refresh_tokens={"refresh-XYZ-123"})
    helper_on_path(e, "tok", reg.host, "<token>", "refresh-XYZ-123")
    e.docker_config({"credHelpers": {reg.host: "tok"}})
    publish_read_delete(e, reg.host, tok_opts(pki), packages)
    assert ts.requests and all(m == "POST" for m, _, _ in ts.requests)


def test_token_auth_identity_token_falls_back_to_get_on_404(e, pki, packages):
    ts, reg = token_setup(e, pki)
    ts.post_404 = True
    e.docker_config({"auths": {reg.host: {"auth": auth_b64(), "identitytoken": "rt-1"}}})
    m = e.mount(reg.host, tok_opts(pki))
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    methods = [m for m, _, _ in ts.requests]
    assert "POST" in methods and "GET" in methods
    assert methods.index("POST") < methods.index("GET")


def test_token_auth_expired_tokens(e, pki, packages):
    ts, reg = token_setup(e, pki)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, tok_opts(pki))
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    # A token the registry finds expired is replaced once, on the 401.
    m = e.mount(reg.host, tok_opts(pki))
    ts.expired = 1
    n = len(ts.requests)
    assert os.listdir(os.path.join(m, REPO)) == ["0.1.0", PKG + ".tgz"]
    assert len(ts.requests) == n + 2
    # Only expired tokens: EACCES, not a loop.
    m = e.mount(reg.host, tok_opts(pki))
    ts.expired = 1000
    with pytest.raises(PermissionError):
        open(os.path.join(m, REPO, "0.1.0", "Chart.yaml")).close()
    ts.expired = 0
    # expires_in is honoured: a 1 s token is fetched again for each request.
    ts.expires_in = 1
    m = e.mount(reg.host, tok_opts(pki))
    n = len(ts.requests)
    for _ in range(3):
        os.listdir(os.path.join(m, REPO))
    assert len(ts.requests) >= n + 3


# ---- TLS -----------------------------------------------------------------------

def tls_registry(e, pki, clientca=False, auth=""):
    return e.registry(tls=(pki["server.pem"], pki["server.key"]),
                      clientca=pki["ca.pem"] if clientca else None, auth=auth)


def test_tls_ca_file_certs_d_and_insecure(e, pki, packages):
    reg = tls_registry(e, pki)
    r, _, _ = e.run(reg.host, check=False)
    assert r.returncode != 0, "an unknown CA must not verify"
    publish_read_delete(e, reg.host, ["ca_file=" + pki["ca.pem"]], packages)
    certs_d = os.path.join(e.dir, "certs.d")
    os.makedirs(os.path.join(certs_d, reg.host))
    shutil.copy(pki["ca.pem"], os.path.join(certs_d, reg.host, "ca.crt"))
    publish_read_delete(e, reg.host, [], packages, env={"CHARTFS_CERTS_D": certs_d})
    r, m, _ = e.run(reg.host, ["insecure"])
    assert "insecure" in r.stderr
    assert os.listdir(os.path.join(m)) == ["charts"]
    r, _, _ = e.run(reg.host, ["ca_file=/nonexistent.pem"], check=False)
    assert r.returncode != 0 and "/nonexistent.pem" in r.stderr


def test_mtls_options_and_certs_d(e, pki, packages):
    reg = tls_registry(e, pki, clientca=True)
    ca = "ca_file=" + pki["ca.pem"]
    r, _, _ = e.run(reg.host, [ca], check=False)
    assert r.returncode != 0, "the registry wants a client certificate"
    publish_read_delete(e, reg.host, [ca, "cert_file=" + pki["client.pem"],
                                      "key_file=" + pki["client.key"]], packages)
    certs_d = os.path.join(e.dir, "certs.d")
    d = os.path.join(certs_d, reg.host)
    os.makedirs(d)
    shutil.copy(pki["ca.pem"], os.path.join(d, "ca.crt"))
    shutil.copy(pki["client.pem"], os.path.join(d, "client.cert"))
    shutil.copy(pki["client.key"], os.path.join(d, "client.key"))
    publish_read_delete(e, reg.host, [], packages, env={"CHARTFS_CERTS_D": certs_d})


@pytest.mark.parametrize("helm_name", ["helm3", "helm4"])
def test_helm_registry_login_read_back(e, pki, packages, helm_name, request):
    helm = request.getfixturevalue(helm_name)
    reg = tls_registry(e, pki, auth="auth: {htpasswd: {realm: test, path: %s}}"
                       % htpasswd_file(os.path.join(e.dir, "htpasswd")))
    cfg = os.path.join(e.dir, "helm", "registry.json")
    henv = dict(helm.env, HELM_REGISTRY_CONFIG=cfg)
    r = subprocess.run([helm.binary, "registry", "login", reg.host, "-u", USER,
                        "--password-stdin", "--ca-file", pki["ca.pem"]],
                       input=PASSWORD, env=henv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert reg.host in json.load(open(cfg))["auths"]
    publish_read_delete(e, reg.host, ["ca_file=" + pki["ca.pem"]], packages,
                        env={"HELM_REGISTRY_CONFIG": cfg})
    # Without helm's file: anonymous, and said so.
    r, m, _ = e.run(reg.host, ["ca_file=" + pki["ca.pem"]])
    assert "refused anonymous access" in r.stderr


# ---- redirects -------------------------------------------------------------------

class RedirectingProxy:
    """Forwards to the registry, but answers blob GETs with a 307 to a
    "storage" server on another port, which records the headers it gets
    and serves the blob (fetched from the registry with its own login)."""

    def __init__(self, reg):
        self.seen = []
        self.auth_to_registry = 0
        px = self

        class Storage(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                px.seen.append(dict(self.headers))
                req = urllib.request.Request(reg.url(urllib.parse.unquote(self.path[5:])),
                                             headers={"Authorization": "Basic " + auth_b64()})
                data = urllib.request.urlopen(req, timeout=30).read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Proxy(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                if "Authorization" in self.headers:
                    px.auth_to_registry += 1
                if (self.command == "GET" and "/blobs/sha256:" in self.path
                        and "Authorization" in self.headers):
                    self.send_response(307)
                    self.send_header("Location", "http://127.0.0.1:%d/blob%s"
                                     % (px.storage.server_address[1], self.path))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                n = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(n) if n else None
                # Host as sent, so the registry's Location URLs name the proxy.
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                relay(self, reg.port, body, hdrs)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.storage = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Storage)
        self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        self.host = "127.0.0.1:%d" % self.proxy.server_address[1]
        for s in (self.storage, self.proxy):
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def stop(self):
        for s in (self.storage, self.proxy):
            s.shutdown()
            s.server_close()


def test_redirected_blob_get_carries_no_authorization(e, packages):
    reg = htpasswd_registry(e)
    px = RedirectingProxy(reg)
    e.servers.append(px)
    e.docker_config({"auths": {px.host: {"auth": auth_b64()}}})
    m = e.mount(px.host, ["plain_http"])
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    m = e.mount(px.host, ["plain_http"])
    with open(os.path.join(m, REPO, PKG + ".tgz"), "rb") as f:
        assert f.read() == open(packages[PKG], "rb").read()
    assert px.auth_to_registry > 0
    assert px.seen, "the blob was not fetched through the redirect"
    assert all("Authorization" not in h for h in px.seen), px.seen


# ---- secrets stay secret ----------------------------------------------------------

def relay(handler, port, body, headers):
    """Send handler's request to the registry on 127.0.0.1:port and its
    answer back, whole (the test proxies here need no streaming)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(handler.command, handler.path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    handler.send_response(r.status)
    for k, v in r.getheaders():
        if k.lower() not in ("connection", "transfer-encoding", "content-length"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
    c.close()


def run_foreground(e, target, opts, env=None, debug=True):
    """chartfs -f [-d] in the background of the test: (Popen, mnt, cache, log)."""
    n = len(e.mounts)
    mnt, cache = os.path.join(e.dir, "fg%d" % n), os.path.join(e.dir, "fgcache%d" % n)
    os.makedirs(mnt)
    log = open(os.path.join(e.dir, "fg%d.log" % n), "w+")
    p = subprocess.Popen([e.bin, "-f", *(["-d"] if debug else []),
                          "-o", ",".join(["cache_dir=" + cache, "ttl=0", *opts]), target, mnt],
                         env=sanitizer_env(dict(e.env, **(env or {})), e.san),
                         stdout=log, stderr=subprocess.STDOUT)
    e.mounts.append((mnt, p.pid))
    deadline = time.time() + 20
    while not os.path.ismount(mnt):
        assert p.poll() is None and time.time() < deadline, open(log.name).read()
        time.sleep(0.05)
    return p, mnt, cache, log.name


def stop_foreground(p, mnt, log):
    subprocess.run(["fusermount3", "-u", mnt], check=True)
    p.wait(20)
    return open(log, errors="replace").read()


def test_no_secret_in_logs_or_cache(e, pki, packages):
    ts, reg = token_setup(e, pki, refresh_tokens={"refresh-SECRET-42"})
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    p, mnt, cache, log = run_foreground(e, reg.host, tok_opts(pki))
    os.makedirs(os.path.join(mnt, "charts"))
    assert cp(packages[PKG], os.path.join(mnt, "charts/")).returncode == 0
    assert os.listdir(os.path.join(mnt, REPO)) == ["0.1.0", PKG + ".tgz"]
    open(os.path.join(mnt, REPO, "0.1.0", "Chart.yaml")).read()
    out = stop_foreground(p, mnt, log)
    # The identity-token flow too.
    e.docker_config({"auths": {reg.host: {"auth": auth_b64(),
                                          "identitytoken": "refresh-SECRET-42"}}})
    p, mnt2, cache2, log2 = run_foreground(e, reg.host, tok_opts(pki))
    os.listdir(os.path.join(mnt2, REPO))
    out += stop_foreground(p, mnt2, log2)
    assert "GET /v2/" in out, "debug output expected"
    assert "credentials for %s from" % reg.host in out
    secrets = [PASSWORD, auth_b64(), "refresh-SECRET-42"] + [t.split(".")[2] for t in ts.issued]
    assert ts.issued
    for s in secrets:
        assert s not in out, "a secret is in chartfs's output"
    for d in (cache, cache2):
        for root, _, files in os.walk(d):
            for f in files:
                data = open(os.path.join(root, f), "rb").read()
                for s in secrets:
                    assert s.encode() not in data, "a secret is in the cache: %s" % f


def test_refused_request_logs_registry_and_scope(e, packages):
    reg = htpasswd_registry(e)
    e.docker_config({})  # anonymous: the mount stands, each request is refused
    p, mnt, _, log = run_foreground(e, reg.host, ["plain_http"])
    with pytest.raises(PermissionError) as ex:
        os.listdir(os.path.join(mnt, REPO))
    assert ex.value.errno == errno.EACCES
    out = stop_foreground(p, mnt, log)
    assert "(registry %s, scope repository:charts:pull)" % reg.host in out, out
    assert PASSWORD not in out


# ---- credentials and challenges, per origin --------------------------------------

def test_plain_http_realm_on_another_port_gets_no_credentials(e, pki):
    """A token realm on another port of the registry's host is another origin:
    over plain http it is asked anonymously (one log line), never with the
    password; the registry then refuses what anonymous tokens do not grant."""
    ts, reg = token_setup(e, pki, tls=False)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    p, mnt, _, log = run_foreground(e, reg.host, ["plain_http"], debug=False)
    try:
        with pytest.raises(PermissionError) as ex:
            os.listdir(os.path.join(mnt, REPO))
        assert ex.value.errno == errno.EACCES
        with pytest.raises(PermissionError):
            open(os.path.join(mnt, "other/chart/1.0.0/Chart.yaml")).close()
    finally:
        out = stop_foreground(p, mnt, log)
    assert len(ts.requests) >= 3, ts.requests  # /v2/, the catalog, each repository
    assert ts.authorization and all(a is None for a in ts.authorization), ts.authorization
    assert all(who is None for _, _, who in ts.requests)
    lines = [ln for ln in out.splitlines() if "plain http on another origin" in ln]
    assert len(lines) == 1, out
    assert PASSWORD not in out and auth_b64() not in out
    # An identity token is a secret too: no OAuth2 POST to that realm.
    e.docker_config({"auths": {reg.host: {"auth": auth_b64(), "identitytoken": "rt-SECRET"}}})
    m = e.mount(reg.host, ["plain_http"])
    with pytest.raises(PermissionError):
        os.listdir(os.path.join(m, REPO))
    assert all(method == "GET" for method, _, _ in ts.requests), ts.requests
    assert all(a is None for a in ts.authorization), ts.authorization


class HarborLikeProxy:
    """In front of a token-auth registry, answers GET /v2/_catalog as Harbor
    does: 401 with a Basic challenge unless the request carries the user's
    Basic credentials (then it fetches a catalog token itself and forwards).
    Everything else is forwarded as is. Records (path, auth scheme) of every
    request chartfs makes."""

    def __init__(self, reg, ts, pki):
        self.seen = []
        px = self
        tls = ssl.create_default_context(cafile=pki["ca.pem"])

        def catalog_token():
            req = urllib.request.Request(ts.realm + "?service=%s&scope=registry:catalog:*"
                                         % SERVICE,
                                         headers={"Authorization": "Basic " + auth_b64()})
            body = urllib.request.urlopen(req, timeout=30, context=tls).read()
            return json.loads(body)["token"]

        class Proxy(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                auth = self.headers.get("Authorization", "")
                px.seen.append((self.path.split("?")[0], auth.split(" ")[0] or None))
                n = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(n) if n else None
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                if self.path.split("?")[0] == "/v2/_catalog":
                    if auth != "Basic " + auth_b64():
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="harbor"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    hdrs["Authorization"] = "Bearer " + catalog_token()
                relay(self, reg.port, body, hdrs)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        self.host = "127.0.0.1:%d" % self.proxy.server_address[1]
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()

    def stop(self):
        self.proxy.shutdown()
        self.proxy.server_close()


def test_basic_challenge_on_catalog_keeps_bearer_elsewhere(e, pki, packages):
    """One endpoint asking for Basic (Harbor's catalog) gets the password;
    tag lists, manifests and blobs keep using scoped Bearer tokens."""
    ts, reg = token_setup(e, pki)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, tok_opts(pki))
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    px = HarborLikeProxy(reg, ts, pki)
    e.servers.append(px)
    e.docker_config({"auths": {px.host: {"auth": auth_b64()}}})
    m = e.mount(px.host, tok_opts(pki))
    assert os.listdir(m) == ["charts"]
    repo = os.path.join(m, REPO)
    assert sorted(os.listdir(repo)) == ["0.1.0", PKG + ".tgz"]
    with open(os.path.join(repo, "0.1.0", "Chart.yaml")) as f:
        assert "name: helm-oci-test" in f.read()
    with open(os.path.join(repo, PKG + ".tgz"), "rb") as f:
        assert f.read() == open(packages[PKG], "rb").read()
    assert ("/v2/_catalog", "Basic") in px.seen, px.seen
    others = [(path, how) for path, how in px.seen if path != "/v2/_catalog"]
    assert [x for x in others if "/manifests/" in x[0]], px.seen
    assert [x for x in others if "/blobs/" in x[0]], px.seen
    assert all(how != "Basic" for _, how in others), others
    assert all(how == "Bearer" for path, how in others
               if "/manifests/" in path or "/blobs/" in path), others


def test_insufficient_scope_catalog_is_asked_once(e, pki, packages):
    """A 401 error="insufficient_scope" for a token that was asked for that very
    scope (Docker Hub's catalog) is final: no second token, no second request."""
    ts, reg = token_setup(e, pki)
    e.docker_config({"auths": {reg.host: {"auth": auth_b64()}}})
    m = e.mount(reg.host, tok_opts(pki))
    os.makedirs(os.path.join(m, "charts"))
    assert cp(packages[PKG], os.path.join(m, "charts/")).returncode == 0
    ts.deny.add("registry:catalog:*")
    del ts.requests[:]
    px = RegistryProxy(reg.host)
    e.servers.append(px)
    e.docker_config({"auths": {px.host: {"auth": auth_b64()}}})
    p, mnt, _, log = run_foreground(e, px.host, tok_opts(pki), debug=False)
    try:
        os.listdir(mnt)
        os.listdir(mnt)
        assert px.count("/v2/_catalog") == 1, px.requests()
        assert ts.scopes().count("registry:catalog:*") == 1, ts.requests
        # Repositories stay readable: the refusal was the catalog's only.
        assert sorted(os.listdir(os.path.join(mnt, REPO))) == ["0.1.0", PKG + ".tgz"]
    finally:
        out = stop_foreground(p, mnt, log)
    lines = [ln for ln in out.splitlines() if "_catalog" in ln]
    assert len(lines) == 1 and "insufficient_scope" in lines[0], out
