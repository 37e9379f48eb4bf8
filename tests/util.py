"""Test helpers: a real registry, real helm, real mounts, and a proxy.

Everything here drives real programs: Debian's docker-registry on loopback,
helm v3/v4 from .tools/, and chartfs mounted with FUSE.
"""
import glob
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHARTS = os.path.join(ROOT, "tests", "charts")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_http(url, timeout=15):
    """Wait for a server we just started to answer (startup, not a result)."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


class Registry:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>."""

    def __init__(self, workdir, delete=True, extra=""):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        cfg = os.path.join(workdir, "config.yml")
        with open(cfg, "w") as f:
            f.write(
                "version: 0.1\n"
                "log: {level: error, accesslog: {disabled: true}}\n"
                "storage: {filesystem: {rootdirectory: %s}, delete: {enabled: %s}}\n"
                "http: {addr: '%s'}\n%s"
                % (os.path.join(workdir, "data"), "true" if delete else "false", self.host, extra)
            )
        self.log = open(os.path.join(workdir, "registry.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", cfg],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_http("http://%s/v2/" % self.host)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def restart(self):
        self.stop()
        self.log = open(os.path.join(self.dir, "registry.log"), "a")
        cfg = os.path.join(self.dir, "config.yml")
        self.proc = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", cfg],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_http("http://%s/v2/" % self.host)

    # --- the distribution API, for checks and for artifacts helm won't make
    def url(self, path):
        return "http://%s%s" % (self.host, path)

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.url(path), data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def manifest(self, repo, ref):
        st, hdr, body = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                                     headers={"Accept": OCI_MANIFEST})
        assert st == 200, (st, body)
        return json.loads(body), hdr.get("Docker-Content-Digest"), body

    def blob(self, repo, digest):
        st, _, body = self.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
        assert st == 200, st
        return body

    def tags(self, repo):
        st, _, body = self.request("GET", "/v2/%s/tags/list" % repo)
        if st == 404:
            return []
        return json.loads(body).get("tags") or []

    def push_blob(self, repo, data):
        digest = sha256(data)
        st, hdr, _ = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        assert st == 202, st
        loc = hdr["Location"]
        sep = "&" if "?" in loc else "?"
        path = urllib.parse.urlsplit(loc)
        target = path.path + "?" + path.query if path.query else path.path
        st, _, body = self.request("PUT", target + sep + "digest=" + digest, body=data,
                                   headers={"Content-Type": "application/octet-stream"})
        assert st == 201, (st, body)
        return {"digest": digest, "size": len(data)}

    def push_artifact(self, repo, tag, layers, config=b"{}",
                      config_type="application/vnd.oci.image.config.v1+json",
                      annotations=None):
        """Push a manifest made by hand: layers is [(bytes, media type)]."""
        cfg = dict(self.push_blob(repo, config), mediaType=config_type)
        descs = [dict(self.push_blob(repo, data), mediaType=mt) for data, mt in layers]
        man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": descs}
        if annotations:
            man["annotations"] = annotations
        body = json.dumps(man).encode()
        st, _, resp = self.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), body=body,
                                   headers={"Content-Type": OCI_MANIFEST})
        assert st == 201, (st, resp)
        return sha256(body)


class Helm:
    """A real helm binary with its own config, cache and data homes."""

    def __init__(self, binary, home):
        self.binary = binary
        self.env = dict(os.environ)
        for var in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
            self.env[var] = os.path.join(home, var.lower())
            os.makedirs(self.env[var], exist_ok=True)

    def run(self, *args, check=True):
        r = subprocess.run([self.binary, *args], env=self.env, capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("helm %s failed: %s" % (" ".join(args), r.stderr))
        return r

    def package(self, chart_dir, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        r = self.run("package", chart_dir, "-d", out_dir)
        return r.stdout.strip().split(": ", 1)[1]

    def push(self, tgz, host, ns):
        return self.run("push", tgz, "oci://%s/%s" % (host, ns), "--plain-http")

    def pull_untar(self, host, repo, version, dest):
        self.run("pull", "oci://%s/%s" % (host, repo), "--version", version, "--untar",
                 "--untardir", dest, "--plain-http")
        return dest

    def pull(self, host, repo, version, dest):
        os.makedirs(dest, exist_ok=True)
        self.run("pull", "oci://%s/%s" % (host, repo), "--version", version, "-d", dest,
                 "--plain-http")

    def template(self, *args):
        return self.run("template", "r", *args).stdout


class Mount:
    """chartfs mounted on a directory: the command returns once it is ready."""

    def __init__(self, binary, target, mnt, cache_dir, opts=("plain_http",), args=(),
                 sanitizer_dir=None, check=True):
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        o = ",".join(list(opts) + ["cache_dir=" + cache_dir])
        self.cmd = [binary, "-o", o, *args, target, mnt]
        env = dict(os.environ)
        if sanitizer_dir:
            env["ASAN_OPTIONS"] = "log_path=%s/asan:detect_leaks=1" % sanitizer_dir
            env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1:halt_on_error=1" % sanitizer_dir
        self.result = subprocess.run(self.cmd, env=env, capture_output=True, text=True,
                                     timeout=60)
        self.mounted = self.result.returncode == 0
        if check:
            assert self.mounted, "mount failed: %s" % self.result.stderr
        self.pid = self._pid() if self.mounted else None

    def _pid(self):
        r = subprocess.run(["pgrep", "-f", "-x", " ".join(self.cmd)], capture_output=True,
                           text=True)
        pids = r.stdout.split()
        return int(pids[0]) if pids else None

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def alive(self):
        return self.pid is not None and os.path.exists("/proc/%d" % self.pid)

    def unmount(self):
        if not self.mounted:
            return
        self.mounted = False
        r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        # The daemon exits once unmounted; wait so sanitizer reports are written.
        deadline = time.time() + 20
        while self.alive() and time.time() < deadline:
            time.sleep(0.05)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            raise AssertionError("chartfs did not exit after unmount")


def sanitizer_reports(d):
    out = []
    for f in glob.glob(os.path.join(d, "*")):
        with open(f, errors="replace") as fh:
            out.append(fh.read())
    return out


class Proxy:
    """A forwarding HTTP proxy in front of the registry, counting requests.

    It answers GET /v2/_catalog and /v2/<name>/tags/list itself in pages of
    `page` entries with relative Link headers (distribution 2.8 does not page
    tags), so the client's pagination is exercised against real data.
    """

    def __init__(self, upstream, page=None, no_catalog=False):
        self.upstream = upstream
        self.page = page
        self.no_catalog = no_catalog
        self.counts = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_any(self):
                path = self.path
                with proxy.lock:
                    proxy.counts[path.split("?")[0]] = proxy.counts.get(path.split("?")[0], 0) + 1
                    proxy.counts["*"] = proxy.counts.get("*", 0) + 1
                if proxy.no_catalog and path.startswith("/v2/_catalog"):
                    # As GHCR and Docker Hub do.
                    body = b'{"errors":[{"code":"UNSUPPORTED","message":"no catalog"}]}'
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.command == "GET" and proxy.page and proxy._pageable(path):
                    return proxy._page(self)
                proxy._forward(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.counts = {}

    def count(self, prefix="*"):
        with self.lock:
            if prefix == "*":
                return self.counts.get("*", 0)
            return sum(v for k, v in self.counts.items() if k != "*" and k.startswith(prefix))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _pageable(path):
        p = path.split("?")[0]
        return p == "/v2/_catalog" or p.endswith("/tags/list")

    def _page(self, h):
        u = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(u.query)
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        conn.request("GET", u.path + ("?n=1000" if u.path == "/v2/_catalog" else ""))
        r = conn.getresponse()
        body = r.read()
        conn.close()
        if r.status != 200:
            h.send_response(r.status)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        doc = json.loads(body)
        key = "repositories" if u.path == "/v2/_catalog" else "tags"
        items = sorted(doc.get(key) or [])
        last = q.get("last", [None])[0]
        if last:
            items = [i for i in items if i > last]
        n = min(int(q.get("n", [self.page])[0]), self.page)
        page, more = items[:n], len(items) > n
        doc[key] = page
        out = json.dumps(doc).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(out)))
        if more:
            h.send_header("Link", '<%s?n=%d&last=%s>; rel="next"' % (u.path, n, page[-1]))
        h.end_headers()
        h.wfile.write(out)

    def _forward(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(h.command, h.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() == "content-length" and h.command == "HEAD":
                h.send_header(k, v)
                continue
            if k.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            if k.lower() == "location":
                v = v.replace(self.upstream, self.host)
            h.send_header(k, v)
        if h.command != "HEAD":
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
        conn.close()


def copy_chart(src, dst, **changes):
    """Copy a chart source dir, rewriting Chart.yaml keys (e.g. version)."""
    shutil.copytree(src, dst)
    if changes:
        path = os.path.join(dst, "Chart.yaml")
        lines = open(path).read().splitlines()
        for k, v in changes.items():
            lines = [("%s: %s" % (k, v)) if l.startswith(k + ":") else l for l in lines]
        open(path, "w").write("\n".join(lines) + "\n")
    return dst
