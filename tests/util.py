"""Test helpers: a real registry, real helm, real chartfs mounts.

Everything here drives real programs: Debian's docker-registry
(distribution 2.8) on loopback, helm v3 and v4 from .tools/, and chartfs
mounted through FUSE, so the tests assert what a user would see.
"""
import errno
import glob
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHARTS = os.path.join(ROOT, "tests", "charts")
TOOLS = os.path.join(ROOT, ".tools")
REGISTRY_BIN = "/usr/bin/docker-registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
CREATED = "org.opencontainers.image.created"

# What a write into chart content (a tag directory, a rename, a chmod) fails
# with: that content is the registry's, addressed by digest.
WRITE_ERRNO = errno.EROFS


def expect_write_refused(op):
    """Run op() (a write into the mount) and check it fails with WRITE_ERRNO."""
    try:
        op()
    except OSError as e:
        assert e.errno == WRITE_ERRNO, "expected %s, got %s" % (
            errno.errorcode[WRITE_ERRNO], errno.errorcode.get(e.errno, e.errno))
        return
    raise AssertionError("the write succeeded; expected %s" % errno.errorcode[WRITE_ERRNO])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def isolated_env(home):
    """os.environ with every config/cache home (helm's, docker's, XDG) moved
    under `home`, so tests neither read nor write the user's credentials."""
    env = dict(os.environ)
    dirs = {
        "HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_CACHE_HOME": "cache",
        "XDG_DATA_HOME": "data", "HELM_CONFIG_HOME": "helm-config",
        "HELM_CACHE_HOME": "helm-cache", "HELM_DATA_HOME": "helm-data",
        "DOCKER_CONFIG": "docker",
    }
    for var, sub in dirs.items():
        env[var] = os.path.join(home, sub)
        os.makedirs(env[var], exist_ok=True)
    env["HELM_REGISTRY_CONFIG"] = os.path.join(env["HELM_CONFIG_HOME"], "registry", "config.json")
    return env


def sanitizer_env(env, report_dir):
    """ASan/UBSan settings for sanitized builds (harmless for plain ones):
    stop at the first error and write reports where the tests look."""
    env = dict(env)
    env["ASAN_OPTIONS"] = "halt_on_error=1:detect_leaks=1:log_path=%s/asan" % report_dir
    env["UBSAN_OPTIONS"] = ("halt_on_error=1:print_stacktrace=1:log_path=%s/ubsan"
                            % report_dir)
    # Leaks that are not chartfs's (e.g. inside a library) go in tests/lsan.supp.
    env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % os.path.join(
        ROOT, "tests", "lsan.supp")
    # CHARTFS_VALGRIND=1: every daemon runs under valgrind memcheck (a
    # documented target, too slow for CI: see README "Tests").
    if os.environ.get("CHARTFS_VALGRIND"):
        env["CHARTFS_VALGRIND_LOG"] = os.path.join(report_dir, "vgsan.%p")
    return env


def sanitizer_reports(report_dir):
    out = []
    for f in sorted(glob.glob(os.path.join(report_dir, "*san*"))):
        with open(f, errors="replace") as fh:
            text = fh.read()
        # A valgrind log always has a header: only errors count.
        if os.path.basename(f).startswith("vgsan") and not re.search(
                r"ERROR SUMMARY: [1-9]", text):
            continue
        out.append("%s:\n%s" % (f, text))
    return out


def wait_http(url, proc=None, timeout=20):
    """Wait for a server we just started to answer (startup, not a result)."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            if proc is not None and proc.poll() is not None:
                return False
            if time.time() > deadline:
                raise
            time.sleep(0.05)


class Registry:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>,
    storage under workdir, delete enabled, killed by stop()."""

    def __init__(self, workdir, delete=True, extra_config=""):
        self.dir = workdir
        self.delete = delete
        self.extra_config = extra_config
        os.makedirs(workdir, exist_ok=True)
        self.proc = None
        for _ in range(5):  # free_port() can race with another process
            self.port = free_port()
            self.host = "127.0.0.1:%d" % self.port
            if self.start():
                return
        raise RuntimeError("docker-registry did not start; see %s/registry.log" % workdir)

    def _config(self):
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            f.write("version: 0.1\n"
                    "log: {level: error, accesslog: {disabled: true}}\n"
                    "storage: {filesystem: {rootdirectory: %s}, delete: {enabled: %s}}\n"
                    "http: {addr: '%s'}\n%s"
                    % (os.path.join(self.dir, "data"), "true" if self.delete else "false",
                       self.host, self.extra_config))
        return path

    def start(self):
        log = open(os.path.join(self.dir, "registry.log"), "a")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self._config()],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait_http("http://%s/v2/" % self.host, self.proc):
            return True
        self.proc.wait()
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        assert self.start(), "docker-registry did not restart"

    # --- the distribution API: for checks, and for artifacts helm won't make
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
        """(parsed manifest, its digest, raw bytes)."""
        st, hdr, body = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                                     headers={"Accept": OCI_MANIFEST})
        assert st == 200, (st, body)
        digest = sha256(body)
        assert hdr.get("Docker-Content-Digest", digest) == digest
        return json.loads(body), digest, body

    def chart_layer(self, repo, ref):
        man, _, _ = self.manifest(repo, ref)
        return [l for l in man["layers"] if l["mediaType"] == HELM_CHART][0]

    def blob(self, repo, digest):
        st, _, body = self.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
        assert st == 200, st
        return body

    def tags(self, repo):
        st, _, body = self.request("GET", "/v2/%s/tags/list" % repo)
        if st == 404:
            return []
        assert st == 200, (st, body)
        return sorted(json.loads(body).get("tags") or [])

    def catalog(self):
        st, _, body = self.request("GET", "/v2/_catalog?n=1000")
        assert st == 200, (st, body)
        return json.loads(body)["repositories"]

    def push_blob(self, repo, data):
        """Monolithic upload: POST, then PUT <Location>&digest=. Returns the
        descriptor fields (digest, size)."""
        digest = sha256(data)
        st, hdr, body = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        assert st == 202, (st, body)
        loc = urllib.parse.urlsplit(hdr["Location"])
        target = loc.path + ("?" + loc.query + "&" if loc.query else "?")
        st, _, body = self.request("PUT", target + "digest=" + digest, body=data,
                                   headers={"Content-Type": "application/octet-stream"})
        assert st == 201, (st, body)
        return {"digest": digest, "size": len(data)}

    def push_manifest(self, repo, ref, manifest, media_type=OCI_MANIFEST):
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        st, _, resp = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                                   headers={"Content-Type": media_type})
        assert st == 201, (st, resp)
        return sha256(body)

    def push_artifact(self, repo, tag, layers=((b"not a chart", OCI_LAYER),), config=b"{}",
                      config_type=OCI_IMAGE_CONFIG, annotations=None):
        """Push a manifest made by hand (an image, or anything that is not a
        helm chart): layers is [(bytes, media type)]. Returns its digest."""
        cfg = dict(self.push_blob(repo, config), mediaType=config_type)
        descs = [dict(self.push_blob(repo, data), mediaType=mt) for data, mt in layers]
        man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": descs}
        if annotations:
            man["annotations"] = annotations
        return self.push_manifest(repo, tag, man)

    def delete_manifest(self, repo, digest):
        st, _, body = self.request("DELETE", "/v2/%s/manifests/%s" % (repo, digest))
        assert st == 202, (st, body)


class Helm:
    """A real helm binary with its own config, cache and data homes."""

    def __init__(self, binary, home):
        self.binary = binary
        self.home = home
        self.env = isolated_env(home)
        self._packages = {}

    def run(self, *args, check=True):
        r = subprocess.run([self.binary, *args], env=self.env, capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("helm %s failed (%d): %s%s"
                                 % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def version(self):
        return self.run("version", "--short").stdout.strip()

    def package(self, chart_dir, out_dir=None):
        """helm package; packages of the same source dir are made once."""
        chart_dir = os.path.abspath(chart_dir)
        if out_dir is None and chart_dir in self._packages:
            return self._packages[chart_dir]
        out = out_dir or os.path.join(self.home, "packages", os.path.basename(chart_dir))
        os.makedirs(out, exist_ok=True)
        r = self.run("package", chart_dir, "-d", out)
        # "Successfully packaged chart and saved it to: /path/x-1.0.0.tgz"
        path = r.stdout.strip().splitlines()[-1].split(": ", 1)[1]
        if out_dir is None:
            self._packages[chart_dir] = path
        return path

    def push(self, tgz, host, namespace):
        """helm push X.tgz oci://HOST/NAMESPACE --plain-http."""
        return self.run("push", tgz, "oci://%s/%s" % (host, namespace), "--plain-http")

    def push_chart(self, chart_dir, host, namespace):
        return self.push(self.package(chart_dir), host, namespace)

    def pull(self, host, repo, version, dest):
        """helm pull to dest; returns the .tgz path."""
        os.makedirs(dest, exist_ok=True)
        self.run("pull", "oci://%s/%s" % (host, repo), "--version", version, "-d", dest,
                 "--plain-http")
        return os.path.join(dest, "%s-%s.tgz" % (repo.rsplit("/", 1)[-1], version))

    def pull_untar(self, host, repo, version, dest):
        """helm pull --untar; returns the chart's directory."""
        os.makedirs(dest, exist_ok=True)
        self.run("pull", "oci://%s/%s" % (host, repo), "--version", version, "--untar",
                 "--untardir", dest, "--plain-http")
        return os.path.join(dest, repo.rsplit("/", 1)[-1])

    def template(self, *args):
        return self.run("template", "r", *args).stdout


def find_pid(argv):
    """The pid of the process running argv (the daemonized chartfs keeps the
    command line it was started with; argv[0] may differ: valgrind runs as
    valgrind.bin)."""
    want = ("\0".join(argv[1:]) + "\0").encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                got = f.read()
                if got.split(b"\0", 1)[-1] == want and d != str(os.getpid()):
                    return int(d)
        except OSError:
            pass
    return None


class Mount:
    """chartfs mounted on a directory. The command returns once the mount is
    ready (it mounts, then daemonizes), so there is no polling here."""

    def __init__(self, binary, target, mnt, cache_dir, env, ttl=None, opts=(), args=(),
                 check=True, plain_http=True):
        self.mnt = mnt
        self.cache_dir = cache_dir
        # What the daemon logs once detached (-o log_file): see log().
        self.log_path = mnt.rstrip("/") + ".log"
        os.makedirs(mnt, exist_ok=True)
        # opts may repeat plain_http or set ttl= itself (it wins over `ttl`).
        opts = [o for o in opts if o != "plain_http"]
        o = (["plain_http"] if plain_http else []) + ["cache_dir=" + cache_dir]
        if "-f" not in args and "-d" not in args and not any(
                x.startswith("log_file=") for x in opts):
            o.append("log_file=" + self.log_path)
        if ttl is not None and not any(x.startswith("ttl=") for x in opts):
            o.append("ttl=%s" % ttl)
        # target None: every registry under one mount (MOUNTPOINT alone).
        self.cmd = [binary, "-o", ",".join(o + opts), *args, *([target] if target else []),
                    mnt]
        if env.get("CHARTFS_VALGRIND_LOG"):
            self.cmd = ["valgrind", "--quiet", "--leak-check=full",
                        "--show-leak-kinds=definite,indirect",
                        "--errors-for-leak-kinds=definite,indirect",
                        "--log-file=" + env["CHARTFS_VALGRIND_LOG"]] + self.cmd
        self.result = subprocess.run(self.cmd, env=env, capture_output=True, text=True,
                                     timeout=120)
        self.mounted = self.result.returncode == 0
        self.pid = find_pid(self.cmd) if self.mounted else None
        if check:
            assert self.mounted, "chartfs failed (%d): %s" % (self.result.returncode,
                                                              self.result.stderr)
            assert os.path.ismount(mnt), "chartfs returned before the mount was ready"
            assert self.pid, "no chartfs daemon left running"

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def log(self):
        """What the daemon logged: its start (stderr) and, once detached,
        its log file."""
        text = self.result.stderr
        if os.path.exists(self.log_path):
            with open(self.log_path, errors="replace") as f:
                text += f.read()
        return text

    def alive(self):
        """Running: a zombie waiting for init to reap it has exited."""
        if self.pid is None:
            return False
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def rss_peak_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def unmount(self):
        """fusermount3 -u (retried while busy), then -u -z; wait for the
        daemon to exit so sanitizer reports are complete; kill it if it hangs.
        Returns a problem description, or None."""
        if not self.mounted:
            return None
        self.mounted = False
        for _ in range(20):
            if subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        deadline = time.time() + 20
        while self.alive() and time.time() < deadline:
            time.sleep(0.02)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            return "chartfs did not exit within 20 s of its unmount"
        return None


class Foreground:
    """chartfs -f (argv, ending in MOUNTPOINT mnt) in the background of a
    test, its output in log_path; returns once mnt is mounted. For tests
    that start the daemon their own way (another user, a descriptor limit,
    a small tmpfs); util.Mount is the daemonized form."""

    def __init__(self, argv, mnt, log_path, env, preexec_fn=None):
        self.mnt, self.log_path = mnt, log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=preexec_fn)
        deadline = time.time() + 20
        while not os.path.ismount(mnt):
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("chartfs did not mount: " + self.log())
            time.sleep(0.02)

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Unmount (retried while busy, then lazily) and wait for the daemon:
        a problem description, or None."""
        problem = None
        if not self.alive():
            problem = "chartfs on %s died while mounted: %s" % (self.mnt, self.log())
        for _ in range(50):
            if subprocess.run(["fusermount3", "-u", self.mnt],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            problem = "chartfs did not exit within 20 s of its unmount"
        return problem


class Mounts:
    """Mounts made by a fixture; close() unmounts them all and reports a
    daemon that died while mounted, one that would not exit, or sanitizer
    reports written by any of them."""

    def __init__(self, chartfs_bin, workdir, env):
        self.bin = chartfs_bin
        self.dir = workdir
        self.san_dir = os.path.join(workdir, "sanitizers")
        os.makedirs(self.san_dir, exist_ok=True)
        self.env = sanitizer_env(env, self.san_dir)
        self.list = []

    def mount(self, target, ttl=30, opts=(), args=(), cache_dir=None, check=True, name=None,
              plain_http=True):
        n = len(self.list)
        m = Mount(self.bin, target, os.path.join(self.dir, name or "mnt%d" % n),
                  cache_dir or os.path.join(self.dir, "cache%d" % n), self.env, ttl=ttl,
                  opts=opts, args=args, check=check, plain_http=plain_http)
        self.list.append(m)
        return m

    def close(self):
        problems = ["chartfs on %s died while mounted" % m.mnt
                    for m in self.list if m.mounted and not m.alive()]
        for m in self.list:
            p = m.unmount()
            if p:
                problems.append(p)
        problems += sanitizer_reports(self.san_dir)
        return problems


def copy_chart(src, dst, **changes):
    """Copy a chart source dir, rewriting top-level Chart.yaml keys
    (e.g. version="0.3.0", name="x")."""
    shutil.copytree(src, dst)
    if changes:
        path = os.path.join(dst, "Chart.yaml")
        with open(path) as f:
            lines = f.read().splitlines()
        for k, v in changes.items():
            lines = [("%s: %s" % (k, v)) if l.startswith(k + ":") else l for l in lines]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return dst


# --- small helpers for tests that assert what a user sees --------------------

def ls(path):
    return sorted(os.listdir(path))


def run(*cmd, env=None, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def expect_errno(err, op, *args):
    """op(*args) fails with exactly errno err."""
    with pytest.raises(OSError) as e:
        op(*args)
    assert e.value.errno == err, "expected %s, got %s" % (
        errno.errorcode[err], errno.errorcode.get(e.value.errno, e.value.errno))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def member(tgz, name):
    """A file's bytes from a chart package (for expected contents)."""
    with tarfile.open(fileobj=io.BytesIO(tgz)) as t:
        return t.extractfile(name).read()


def cache_state(cache, hexdigest):
    """What the cache holds for one digest: (blob?, tree?)."""
    return (os.path.exists(os.path.join(cache, "blobs", "sha256", hexdigest)),
            os.path.exists(os.path.join(cache, "trees", "sha256", hexdigest)))


def tmp_entries(cache):
    d = os.path.join(cache, "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def signed_package(helm, tmp_path):
    """helm package --sign with a throwaway key: the .tgz and its .prov."""
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(gnupg))
    params = tmp_path / "key.params"
    params.write_text("%no-protection\nKey-Type: RSA\nKey-Length: 2048\n"
                      "Name-Real: Chart Signer\nName-Email: signer@example.com\n"
                      "Expire-Date: 0\n%commit\n")
    ring = tmp_path / "secring.gpg"
    try:
        subprocess.run(["gpg", "--batch", "--gen-key", str(params)], env=env, check=True,
                       capture_output=True)
        with open(ring, "wb") as f:
            subprocess.run(["gpg", "--export-secret-keys"], env=env, check=True, stdout=f)
    finally:
        # gpg started an agent for this GNUPGHOME; a test leaves no process.
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)
    out = tmp_path / "signed"
    out.mkdir()
    helm.run("package", "--sign", "--key", "Chart Signer", "--keyring", str(ring),
             os.path.join(CHARTS, "web"), "-d", str(out))
    tgz = str(out / "web-1.0.0.tgz")
    return tgz, tgz + ".prov"
