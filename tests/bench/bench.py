"""chartfs benchmark (never a test): one registry, 50 charts (+1000 small ones for
the RSS row), a Markdown table.

Run through tests/bench/bench.sh (which installs and builds first):
    tests/bench/bench.sh [--runs N] [--build DIR]

Rows (baseline vs chartfs, median of N runs; cold runs start from a fresh
mount and an empty cache):
  cold grep      `helm pull --untar` of every chart + `grep -r`  vs  `grep -r` on a fresh mount
                 (and on one with -o prefetch=64)
  warm grep      `grep -r` on a local untarred copy  vs  `grep -r` again on the same mount
  remount        local `grep -r`  vs  `grep -r` on a new mount sharing the warm cache dir
  ls -l 200 tags one `curl` of tags/list  vs  `ls -l` of the repository, cold
  cp             `helm push` of one chart  vs  `cp` of it into the mount
  requests       requests of one `helm pull --untar`  vs  one cold chart read (proxy counts)
  peak RSS       -  vs  the daemon's VmHWM after a cold grep and the 200-tag listing
  peak RSS, 1000 -  vs  the daemon's VmHWM after browsing 1000 charts (20 repositories ×
                 50 versions, generated in Python and pushed by API each run): a cold
                 `grep -r` of them all and an `ls -l` of each repository; target ≤ 30 MB
  ls 50,000      `ls` of a chart directory of 50,000 empty files untarred on local disk
                 vs  `ls` of it on a new mount sharing the warm cache dir (the chart is
                 generated in Python and pushed by API); `--only big-ls` runs this row alone
`--fleet` prints another table instead (tests/bench/fleet.py): 1 and 8 daemons
(own cache dirs) each running a cold `grep -r` over the 50 charts at once, straight
at the origin or through one pull-through mirror, the origin's requests counted,
against 8 `helm pull --untar` loops.

`--far` prints another table instead (issue 19): the registry behind
tests/bench/delayproxy.py, 25 ms each way (a 50 ms round trip; TCP level, so
TLS and HTTP/2 pass through):
  cold grep      `grep -r` on a fresh mount (default, and -o prefetch=64)  vs
                 helm's pull loop, and a minimal client keeping 8 requests in
                 flight (tests/bench/minclient.py: catalog, tags, manifests,
                 blobs, untarred) + grep
  ls -l 200, TLS `ls -l` of the 200-tag repository over TLS (a second registry with
                 a self-signed certificate on the same storage)  vs  curl
                 fetching the same manifests, --http2 ×100 and --http1.1 ×8
  memory         VmRSS of the daemon a second after `ls -l` of a repository of
                 250, 1,000 and 4,000 tags (loopback; pushed by API)
`--only far-mem` / `--only far-grep` run parts of it.
Uses hyperfine when it is installed, else its own timing loop.
"""
import argparse
import concurrent.futures
import gzip
import io
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from proxy import RegistryProxy  # noqa: E402
from util import (CHARTS, HELM_CHART, HELM_CONFIG, OCI_MANIFEST, REGISTRY_BIN, ROOT,  # noqa: E402
                  TOOLS, Helm, Registry, copy_chart, find_pid, isolated_env)

CORPUS = os.path.join(TOOLS, "bench-corpus")
N_CHARTS = 50
N_TAGS = 200
NS = "bench/charts"
MANY = "bench/many/tags"
# The 1000-chart RSS browse: RSS_REPOS repositories of RSS_TAGS versions each.
RSS_NS = "bench/rss"
RSS_REPOS = 20
RSS_TAGS = 50
RSS_CREATED = "2024-01-01T00:00:00Z"
# The large-directory row: one chart of BIG_FILES empty templates.
BIG_NS = "bench/big"
BIG_FILES = 50000


def sh(cmd, env=None, check=True):
    r = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (cmd, r.returncode, r.stderr))
    return r


# --- the corpus: 50 variants of the example charts, made once -------------------

def corpus(helm):
    """.tgz paths of the 50 bench charts, built into .tools/bench-corpus once."""
    pkgs = os.path.join(CORPUS, "packages")
    want = [os.path.join(pkgs, "bench-%02d-1.0.0.tgz" % i) for i in range(N_CHARTS)]
    if all(os.path.exists(p) for p in want):
        return want
    shutil.rmtree(CORPUS, ignore_errors=True)
    for i in range(N_CHARTS):
        base = os.path.join(CHARTS, "helm-oci-test-0.2.0" if i % 2 == 0 else "web")
        src = copy_chart(base, os.path.join(CORPUS, "src", "bench-%02d" % i),
                         name="bench-%02d" % i, version="1.0.0")
        with open(os.path.join(src, "values.yaml"), "a") as f:
            f.write("variant: %d\n" % i)
        # Some bulk, like a real chart's README and docs.
        with open(os.path.join(src, "README.md"), "a") as f:
            for line in range(400):
                f.write("Line %d of chart %d: configure image: and replicas as needed.\n"
                        % (line, i))
        helm.package(src, pkgs)
    return want


def seed(reg, helm, packages):
    """Push the corpus with helm (4 at a time) and a 200-tag repository by API."""
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda p: helm.push(p, reg.host, NS), packages))
    # 200 tags: helm's manifest of one chart, re-put with another version each.
    man, _, _ = reg.manifest(NS + "/bench-00", "1.0.0")
    for blob in [man["config"]] + man["layers"]:
        st, _, _ = reg.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                               % (MANY, blob["digest"], NS + "/bench-00"))
        assert st == 201, st
    for t in range(N_TAGS):
        m = json.loads(json.dumps(man))
        m["annotations"]["org.opencontainers.image.version"] = "1.0.%d" % t
        reg.push_manifest(MANY, "1.0.%d" % t, m)


# --- 1000 small charts, made in Python and pushed by API (as helm would) ---------

def rss_repos():
    return ["%s/r%02d" % (RSS_NS, r) for r in range(RSS_REPOS)]


def small_chart(name, version, n):
    """(.tgz bytes, Chart.yaml metadata) of a small valid chart, distinct per n."""
    meta = {"name": name, "version": version,
            "description": "Benchmark chart %s %s (#%d)" % (name, version, n),
            "apiVersion": "v2"}
    readme = "".join("Line %d of %s %s: set image: and replicas in values.yaml (#%d).\n"
                     % (line, name, version, n) for line in range(50))
    files = [
        ("Chart.yaml", "apiVersion: v2\nname: %s\nversion: %s\ndescription: %s\n"
         % (name, version, meta["description"])),
        ("values.yaml", "replicaCount: 1\nimage:\n  repository: example.org/%s\n"
         "  tag: \"%s\"\nbenchId: %d\n" % (name, version, n)),
        ("templates/deployment.yaml",
         "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
         "  name: {{ .Release.Name }}-%s\nspec:\n"
         "  replicas: {{ .Values.replicaCount }}\n"
         "  selector:\n    matchLabels:\n      app: %s\n"
         "  template:\n    metadata:\n      labels:\n        app: %s\n    spec:\n"
         "      containers:\n        - name: %s\n"
         "          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n"
         % (name, name, name, name)),
        ("README.md", "# %s\n\n%s" % (name, readme)),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, text in files:
            data = text.encode()
            info = tarfile.TarInfo("%s/%s" % (name, path))
            info.size, info.mode, info.mtime = len(data), 0o644, 1704067200
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), meta


def big_chart(n):
    """(.tgz bytes, Chart.yaml metadata) of a chart of n empty templates."""
    meta = {"name": "big", "version": "1.0.0", "description": "Large directory",
            "apiVersion": "v2"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"apiVersion: v2\nname: big\nversion: 1.0.0\ndescription: Large directory\n"
        info = tarfile.TarInfo("big/Chart.yaml")
        info.size, info.mode, info.mtime = len(data), 0o644, 1704067200
        tar.addfile(info, io.BytesIO(data))
        for i in range(n):
            info = tarfile.TarInfo("big/templates/f%06d.yaml" % i)
            info.mode, info.mtime = 0o644, 1704067200
            tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0), meta


def push_small_chart(reg, repo, tag, tgz, meta):
    """What `helm push` sends: config = Chart.yaml metadata as compact JSON,
    one chart layer, an OCI manifest with helm's annotations."""
    cfg = reg.push_blob(repo, json.dumps(meta, separators=(",", ":")).encode())
    layer = reg.push_blob(repo, tgz)
    man = {"schemaVersion": 2,
           "config": {"mediaType": HELM_CONFIG, "digest": cfg["digest"],
                      "size": cfg["size"]},
           "layers": [{"mediaType": HELM_CHART, "digest": layer["digest"],
                       "size": layer["size"]}],
           "annotations": {"org.opencontainers.image.created": RSS_CREATED,
                           "org.opencontainers.image.description": meta["description"],
                           "org.opencontainers.image.title": meta["name"],
                           "org.opencontainers.image.version": meta["version"]}}
    reg.push_manifest(repo, tag, json.dumps(man, separators=(",", ":")).encode(),
                      OCI_MANIFEST)


def seed_rss(reg):
    """Push RSS_REPOS × RSS_TAGS distinct charts, 8 at a time."""
    jobs = []
    for r, repo in enumerate(rss_repos()):
        for t in range(RSS_TAGS):
            version = "1.0.%d" % t
            jobs.append((repo, version) + small_chart(repo.rsplit("/", 1)[1], version,
                                                      r * RSS_TAGS + t))
    assert len({j[2] for j in jobs}) == len(jobs)  # distinct blobs
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda j: push_small_chart(reg, *j), jobs))
    return len(jobs)


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


# --- timing ------------------------------------------------------------------

def median_seconds(cmd, prepare=None, runs=5, env=None):
    """Median wall time of the shell command `cmd`; `prepare` runs before each
    run, untimed."""
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            args = ["hyperfine", "--style", "none", "--runs", str(runs), "--export-json",
                    out.name]
            if prepare:
                args += ["--prepare", prepare]
            subprocess.run(args + [cmd], env=env, check=True, capture_output=True)
            return json.load(open(out.name))["results"][0]["median"]
    times = []
    for _ in range(runs):
        if prepare:
            sh(prepare, env)
        t = time.perf_counter()
        sh(cmd, env, check=False)  # grep exits 1 when nothing matched; still timed
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Bench:
    def __init__(self, build, runs, work):
        self.runs = runs
        self.work = work
        self.env = isolated_env(os.path.join(work, "home"))
        self.chartfs = os.path.join(build, "fs", "chartfs")
        self.mnt = os.path.join(work, "mnt")
        self.cache = os.path.join(work, "cache")
        os.makedirs(self.mnt)

    def mount_cmd(self, host, cache=None, extra="", scheme="plain_http"):
        """scheme: plain_http, or the TLS options (ca_file=PEM)."""
        return "%s -o %s,cache_dir=%s,ttl=600%s %s %s" % (
            shlex.quote(self.chartfs), scheme, shlex.quote(cache or self.cache), extra,
            host, shlex.quote(self.mnt))

    def unmount_cmd(self):
        # The daemon may still be exiting; unmounting again is harmless.
        return "fusermount3 -u %s 2>/dev/null || true" % shlex.quote(self.mnt)

    def fresh_mount_cmd(self, host, extra="", scheme="plain_http"):
        return "%s; rm -rf %s; %s" % (self.unmount_cmd(), shlex.quote(self.cache),
                                      self.mount_cmd(host, extra=extra, scheme=scheme))

    def remount_cmd(self, host):
        return "%s; %s" % (self.unmount_cmd(), self.mount_cmd(host))

    def time(self, cmd, prepare=None, runs=None, env=None):
        return median_seconds(cmd, prepare, runs or self.runs, env or self.env)


def big_ls_row(b, reg, runs):
    """`ls` of a 50,000-entry chart directory: local untarred copy vs a new
    mount sharing the warm cache dir (the kernel keeps a chart's listings, so
    each run mounts afresh; the chart is unpacked before the first)."""
    tgz, meta = big_chart(BIG_FILES)
    push_small_chart(reg, BIG_NS + "/big", "1.0.0", tgz, meta)
    local = os.path.join(b.work, "big-local")
    os.makedirs(local)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        tar.extractall(local)
    base = b.time("ls %s >/dev/null" % shlex.quote(os.path.join(local, "big", "templates")))
    tag = os.path.join(b.mnt, BIG_NS, "big", "1.0.0")
    unpack = "cat %s >/dev/null" % shlex.quote(os.path.join(tag, "Chart.yaml"))
    sh(b.fresh_mount_cmd(reg.host) + " && " + unpack, b.env)
    ours = b.time("ls %s >/dev/null" % shlex.quote(os.path.join(tag, "templates")),
                  b.remount_cmd(reg.host) + " && " + unpack, runs)
    sh(b.unmount_cmd(), b.env)
    return ("`ls` of a %d-entry chart directory" % BIG_FILES, "ls of it on local disk",
            base, ours)


def fmt_s(s):
    return "%.3f s" % s if s >= 0.1 else "%.1f ms" % (s * 1000)


# --- far: the same registry 25 ms away (issue 19) --------------------------------

DELAY_MS = 25  # each way: a 50 ms round trip
MEM_NS = "bench/mem"
MEM_TAGS = (250, 1000, 4000)


class TlsRegistry(Registry):
    """A second docker-registry over TLS (a self-signed certificate for
    127.0.0.1) serving the storage another one filled."""

    def __init__(self, workdir, data, cert, key):
        self.data, self.cert, self.key = data, cert, key
        super().__init__(workdir)

    def _config(self):
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            f.write("version: 0.1\n"
                    "log: {level: error, accesslog: {disabled: true}}\n"
                    "storage: {filesystem: {rootdirectory: %s}}\n"
                    "http: {addr: '%s', tls: {certificate: %s, key: %s}}\n"
                    % (self.data, self.host, self.cert, self.key))
        return path

    def start(self):
        log = open(os.path.join(self.dir, "registry.log"), "a")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self._config()],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if sh("curl -fsS --cacert %s https://%s/v2/ -o /dev/null"
                  % (shlex.quote(self.cert), self.host), check=False).returncode == 0:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False


class DelayProxy:
    """tests/bench/delayproxy.py in front of upstream, as a process."""

    def __init__(self, upstream, delay_ms=DELAY_MS):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "delayproxy.py"), "--upstream", upstream,
             "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE, text=True)
        self.host = self.proc.stdout.readline().strip()
        if not self.host:
            raise RuntimeError("delayproxy.py did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def self_signed(work):
    cert, key = os.path.join(work, "tls.pem"), os.path.join(work, "tls.key")
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
       "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s"
       % (shlex.quote(key), shlex.quote(cert)))
    return cert, key


def seed_tags(reg, repo, n):
    """n tags in repo, each helm's manifest of bench-00 with its own version
    annotation (so its own digest), pushed by API 8 at a time."""
    man, _, _ = reg.manifest(NS + "/bench-00", "1.0.0")
    for blob in [man["config"]] + man["layers"]:
        st, _, _ = reg.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                               % (repo, blob["digest"], NS + "/bench-00"))
        assert st == 201, st

    def push(t):
        m = json.loads(json.dumps(man))
        m["annotations"]["org.opencontainers.image.version"] = "1.0.%d" % t
        reg.push_manifest(repo, "1.0.%d" % t, m)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(push, range(n)))


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def memory_rows(b, reg):
    """VmRSS of the daemon a second after `ls -l` of a repository of n tags,
    each on a fresh mount and cache (loopback: memory does not depend on
    distance)."""
    rows = []
    for n in MEM_TAGS:
        repo = "%s/t%d" % (MEM_NS, n)
        if len(reg.tags(repo)) != n:
            seed_tags(reg, repo, n)
        sh(b.fresh_mount_cmd(reg.host), b.env)
        pid = find_pid(shlex.split(b.mount_cmd(reg.host)))
        idle = vm_rss_kib(pid)
        sh("ls -l %s >/dev/null" % shlex.quote(os.path.join(b.mnt, repo)), b.env)
        time.sleep(1)
        rss = vm_rss_kib(pid)
        sh(b.unmount_cmd(), b.env)
        rows.append((n, idle, rss))
    return rows


def curl_manifests(reg_host, repo, tags, cafile, http, parallel):
    """A curl command fetching every manifest of tags at once (a config
    file: 200 URLs)."""
    cfg = os.path.join(os.path.dirname(cafile), "curl-%s-%d.cfg" % (http, parallel))
    with open(cfg, "w") as f:
        f.write('header = "Accept: %s"\n' % OCI_MANIFEST)
        for t in tags:
            f.write('url = "https://%s/v2/%s/manifests/%s"\noutput = "/dev/null"\n'
                    % (reg_host, repo, t))
    return ("curl -fsS --%s --parallel --parallel-max %d --cacert %s -K %s"
            % (http, parallel, shlex.quote(cafile), shlex.quote(cfg)))


def far(a, build):
    """The rows with the registry DELAY_MS away each way (--far)."""
    work = tempfile.mkdtemp(prefix="chartfs-bench-far-")
    helm = Helm(os.path.join(TOOLS, "helm4"), os.path.join(work, "helm"))
    reg = Registry(os.path.join(work, "registry"))
    b = Bench(build, a.runs, work)
    rows, mem, procs = [], [], []
    try:
        t = time.time()
        packages = corpus(helm)
        seed(reg, helm, packages)
        print("corpus: %d charts + %d tags pushed in %.1f s" % (N_CHARTS, N_TAGS,
                                                                time.time() - t),
              file=sys.stderr)
        if a.only != "far-grep":
            t = time.time()
            mem = memory_rows(b, reg)
            print("memory rows in %.1f s" % (time.time() - t), file=sys.stderr)
        if a.only == "far-mem":
            return print_far(a, helm, rows, mem)
        cert, key = self_signed(work)
        treg = TlsRegistry(os.path.join(work, "registry-tls"), os.path.join(
            work, "registry", "data"), cert, key)
        procs.append(treg)
        plain, tls = DelayProxy(reg.host), DelayProxy(treg.host)
        procs += [plain, tls]

        # cold grep -r: helm's pull loop, a minimal client, chartfs
        grep = "grep -r --exclude='*.tgz' 'image:' %s >/dev/null" % shlex.quote(
            os.path.join(b.mnt, NS))
        local = os.path.join(work, "local")
        local_grep = "grep -r 'image:' %s >/dev/null" % shlex.quote(local)
        pull_all = " && ".join(
            "%s pull oci://%s/%s/bench-%02d --version 1.0.0 --untar --untardir %s --plain-http"
            % (shlex.quote(helm.binary), plain.host, NS, i, shlex.quote(local))
            for i in range(N_CHARTS))
        clean = "rm -rf %s" % shlex.quote(local)
        helm_t = median_seconds(pull_all + " && " + local_grep, clean, a.cold_runs,
                                helm.env)
        mini = "%s %s --registry %s --ns %s --out %s --parallel 8 && %s" % (
            sys.executable, shlex.quote(os.path.join(HERE, "minclient.py")), plain.host,
            NS, shlex.quote(local), local_grep)
        mini_t = b.time(mini, clean, a.cold_runs)
        ours = b.time(grep, b.fresh_mount_cmd(plain.host), a.cold_runs)
        what = "cold `grep -r image:` over %d charts" % N_CHARTS
        rows.append((what, "helm pull --untar ×%d + grep" % N_CHARTS, helm_t, ours))
        rows.append((what, "minimal client, 8 in flight + grep", mini_t, ours))
        ours = b.time(grep, b.fresh_mount_cmd(plain.host, ",prefetch=64"), a.cold_runs)
        rows.append(("the same, `-o prefetch=64`", "minimal client, 8 in flight + grep",
                     mini_t, ours))

        if a.only != "far-grep":
            # ls -l of 200 tags over TLS: curl fetching the same manifests
            tags = reg.tags(MANY)
            ls_l = "ls -l %s >/dev/null" % shlex.quote(os.path.join(b.mnt, MANY))
            tls_opt = "ca_file=%s" % shlex.quote(cert)
            ours = b.time(ls_l, b.fresh_mount_cmd(tls.host, scheme=tls_opt))
            for http, par in (("http2", 100), ("http1.1", 8)):
                base = b.time(curl_manifests(tls.host, MANY, tags, cert, http, par))
                rows.append(("cold `ls -l` of a %d-tag repository, TLS" % N_TAGS,
                             "`curl --%s --parallel --parallel-max %d`, %d manifests"
                             % (http, par, len(tags)), base, ours))
    finally:
        sh(b.unmount_cmd(), b.env, check=False)
        for p in procs:
            p.stop()
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_far(a, helm, rows, mem)


def print_far(a, helm, rows, mem):
    print()
    print("chartfs benchmark, far: the registry (local distribution 2.8) behind "
          "tests/bench/delayproxy.py, %d ms each way (RTT %d ms), %s; median of %d runs "
          "(cold: %d)%s." % (DELAY_MS, 2 * DELAY_MS, helm.version(), a.runs, a.cold_runs,
                             ", hyperfine" if shutil.which("hyperfine") else ""))
    print()
    print("| measure, RTT %d ms | baseline | baseline time | chartfs | ratio |" % (
        2 * DELAY_MS))
    print("|---|---|---:|---:|---:|")
    for what, how, base, ours in rows:
        print("| %s | %s | %s | %s | %.2f× |" % (what, how, fmt_s(base), fmt_s(ours),
                                                 ours / base))
    for n, idle, rss in mem:
        print("| daemon VmRSS 1 s after `ls -l` of %d tags (loopback) | mounted, idle | "
              "%.1f MiB | %.1f MiB | %s |" % (n, idle / 1024.0, rss / 1024.0,
                                              "≤ 16 MiB" if n == 4000 else "-"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    ap.add_argument("--cold-runs", type=int, default=3, help="runs of the slow cold ones")
    ap.add_argument("--build", default=os.environ.get("CHARTFS_BUILD", "build"))
    ap.add_argument("--only", choices=["big-ls", "far-mem", "far-grep"],
                    help="run one row alone (far-*: part of --far)")
    ap.add_argument("--far", action="store_true",
                    help="the far table instead: the registry %d ms away each way"
                    % DELAY_MS)
    ap.add_argument("--fleet", action="store_true",
                    help="the fleet table alone: many mounts, with and without a mirror")
    a = ap.parse_args()
    build = a.build if os.path.isabs(a.build) else os.path.join(ROOT, a.build)
    if a.far or (a.only or "").startswith("far-"):
        return far(a, build)
    if a.only:
        return only(a, build)
    if a.fleet:
        return fleet(a, build)

    work = tempfile.mkdtemp(prefix="chartfs-bench-")
    helm = Helm(os.path.join(TOOLS, "helm4"), os.path.join(work, "helm"))
    reg = Registry(os.path.join(work, "registry"))
    b = Bench(build, a.runs, work)
    rows = []
    try:
        t = time.time()
        packages = corpus(helm)
        seed(reg, helm, packages)
        print("corpus: %d charts + %d tags pushed in %.1f s" % (N_CHARTS, N_TAGS,
                                                                time.time() - t),
              file=sys.stderr)
        # The packages (.tgz) beside the tag dirs are left out so both sides
        # grep the same files.
        grep = "grep -r --exclude='*.tgz' 'image:' %s >/dev/null" % shlex.quote(
            os.path.join(b.mnt, NS))
        local = os.path.join(work, "local")
        pull_all = " && ".join(
            "%s pull oci://%s/%s/bench-%02d --version 1.0.0 --untar --untardir %s --plain-http"
            % (shlex.quote(helm.binary), reg.host, NS, i, shlex.quote(local))
            for i in range(N_CHARTS))
        local_grep = "grep -r 'image:' %s >/dev/null" % shlex.quote(local)
        helm_env = helm.env

        # cold: helm pull everything + grep  vs  grep on a fresh mount
        base = median_seconds(pull_all + " && " + local_grep,
                              "rm -rf %s" % shlex.quote(local), a.cold_runs, helm_env)
        ours = b.time(grep, b.fresh_mount_cmd(reg.host), a.cold_runs)
        rows.append(("cold `grep -r image:` over %d charts" % N_CHARTS,
                     "helm pull --untar ×%d + grep" % N_CHARTS, base, ours))
        ours = b.time(grep, b.fresh_mount_cmd(reg.host, ",prefetch=64"), a.cold_runs)
        rows.append(("the same, `-o prefetch=64`", "helm pull --untar ×%d + grep" % N_CHARTS,
                     base, ours))

        # warm: the same mount again  vs  grep on the local copy
        sh(b.fresh_mount_cmd(reg.host), b.env)
        sh(grep, b.env, check=False)
        base = b.time(local_grep)
        ours = b.time(grep)
        rows.append(("warm `grep -r` (same mount)", "grep on local untarred copy", base, ours))

        # the same on a read-only mount (no OPEN/FLUSH/GETATTR per file)
        sh("%s; %s" % (b.unmount_cmd(), b.mount_cmd(reg.host, extra=",ro")), b.env)
        sh(grep, b.env, check=False)
        ours = b.time(grep)
        rows.append(("warm `grep -r`, `-o ro` mount", "grep on local untarred copy", base, ours))

        # remount with the warm cache dir
        ours = b.time(grep, b.remount_cmd(reg.host))
        rows.append(("`grep -r` after remount, warm cache dir", "grep on local untarred copy",
                     base, ours))

        # ls -l of a 200-tag repository, cold  vs  one curl of tags/list
        base = b.time("curl -fsS http://%s/v2/%s/tags/list >/dev/null" % (reg.host, MANY))
        ours = b.time("ls -l %s >/dev/null" % shlex.quote(os.path.join(b.mnt, MANY)),
                      b.fresh_mount_cmd(reg.host))
        rows.append(("cold `ls -l` of a %d-tag repository" % N_TAGS, "one curl of tags/list",
                     base, ours))

        # cp of one chart  vs  helm push of it (both into a namespace of their own;
        # every run after the first pushes the same bytes again, for both)
        pkg = packages[1]
        base = b.time("%s push %s oci://%s/pushed-by-helm --plain-http >/dev/null 2>&1"
                      % (shlex.quote(helm.binary), shlex.quote(pkg), reg.host), env=helm_env)
        sh(b.fresh_mount_cmd(reg.host), b.env)
        os.makedirs(os.path.join(b.mnt, "pushed-by-chartfs"), exist_ok=True)
        ours = b.time("cp %s %s/" % (shlex.quote(pkg),
                                     shlex.quote(os.path.join(b.mnt, "pushed-by-chartfs"))))
        rows.append(("`cp` of one chart into the mount", "helm push of it", base, ours))

        rows.append(big_ls_row(b, reg, a.runs))

        # peak RSS of a daemon that did a cold grep and the 200-tag listing
        sh(b.fresh_mount_cmd(reg.host), b.env)
        sh(grep, b.env, check=False)
        sh("ls -l %s >/dev/null" % shlex.quote(os.path.join(b.mnt, MANY)), b.env)
        hwm = vm_hwm_kib(find_pid(shlex.split(b.mount_cmd(reg.host))))
        sh(b.unmount_cmd(), b.env)

        # HTTP requests: one helm pull --untar  vs  one cold chart read
        with RegistryProxy(reg.host) as proxy:
            sh("rm -rf %s" % shlex.quote(local), helm_env)
            sh("%s pull oci://%s/%s/bench-01 --version 1.0.0 --untar --untardir %s --plain-http"
               % (shlex.quote(helm.binary), proxy.host, NS, shlex.quote(local)), helm_env)
            helm_requests = proxy.count()
            sh(b.fresh_mount_cmd(proxy.host), b.env)
            sh("ls %s >/dev/null" % shlex.quote(b.mnt), b.env)
            proxy.reset()
            sh("cat %s >/dev/null" % shlex.quote(
                os.path.join(b.mnt, NS, "bench-01", "1.0.0", "Chart.yaml")), b.env)
            ours_requests = proxy.count()
            sh(b.unmount_cmd(), b.env)

        # peak RSS after browsing 1000 charts: pushed last so that every row
        # above sees the same registry as before; fresh cache, fresh mount
        t = time.time()
        n_rss = seed_rss(reg)
        print("rss corpus: %d charts (%d repositories × %d tags) generated and pushed "
              "in %.1f s" % (n_rss, RSS_REPOS, RSS_TAGS, time.time() - t), file=sys.stderr)
        sh(b.fresh_mount_cmd(reg.host), b.env)
        t = time.time()
        sh("grep -r --exclude='*.tgz' 'image:' %s >/dev/null" % shlex.quote(
            os.path.join(b.mnt, RSS_NS)), b.env, check=False)
        sh("ls -l %s >/dev/null" % " ".join(shlex.quote(os.path.join(b.mnt, r))
                                            for r in rss_repos()), b.env)
        print("rss browse: cold grep -r of %d charts + ls -l of %d repositories in %.1f s"
              % (n_rss, RSS_REPOS, time.time() - t), file=sys.stderr)
        hwm_rss = vm_hwm_kib(find_pid(shlex.split(b.mount_cmd(reg.host))))
        sh(b.unmount_cmd(), b.env)
    finally:
        sh(b.unmount_cmd(), b.env, check=False)
        reg.stop()

    print()
    print("chartfs benchmark: %d charts, %d-tag repository, %d small charts for the "
          "RSS browse, local distribution 2.8 on loopback, %s; median of %d runs "
          "(cold: %d)%s." % (
              N_CHARTS, N_TAGS, n_rss, helm.version(), a.runs, a.cold_runs,
              ", hyperfine" if shutil.which("hyperfine") else ""))
    print()
    print("| measure | baseline | baseline time | chartfs | ratio |")
    print("|---|---|---:|---:|---:|")
    for what, how, base, ours in rows:
        print("| %s | %s | %s | %s | %.2f× |" % (what, how, fmt_s(base), fmt_s(ours),
                                                 ours / base))
    print("| HTTP requests for one chart | helm pull --untar | %d | %d | %.2f× |" % (
        helm_requests, ours_requests, ours_requests / max(helm_requests, 1)))
    print("| daemon peak RSS (VmHWM) after cold grep of %d charts + %d-tag `ls -l` "
          "| - | - | %.1f MiB | - |" % (N_CHARTS, N_TAGS, hwm / 1024.0))
    print("| daemon peak RSS (VmHWM) after browsing %d charts | - | - | %.1f MiB | ≤ 30 MB |"
          % (n_rss, hwm_rss / 1024.0))
    shutil.rmtree(work, ignore_errors=True)


def only(a, build):
    """One row alone (--only), printed as a row of the table."""
    work = tempfile.mkdtemp(prefix="chartfs-bench-")
    reg = Registry(os.path.join(work, "registry"))
    b = Bench(build, a.runs, work)
    try:
        what, how, base, ours = big_ls_row(b, reg, a.runs)
    finally:
        sh(b.unmount_cmd(), b.env, check=False)
        reg.stop()
    print("| measure | baseline | baseline time | chartfs | ratio |")
    print("|---|---|---:|---:|---:|")
    print("| %s | %s | %s | %s | %.2f× |" % (what, how, fmt_s(base), fmt_s(ours), ours / base))
    shutil.rmtree(work, ignore_errors=True)


def fleet(a, build):
    """The fleet table (--fleet): medians of --cold-runs runs."""
    from fleet import fleet_rows, print_fleet

    work = tempfile.mkdtemp(prefix="chartfs-bench-")
    helm = Helm(os.path.join(TOOLS, "helm4"), os.path.join(work, "helm"))
    reg = Registry(os.path.join(work, "registry"))
    try:
        packages = corpus(helm)
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda p: helm.push(p, reg.host, NS), packages))
        rows = fleet_rows(os.path.join(build, "fs", "chartfs"), work,
                          isolated_env(os.path.join(work, "home")), reg, helm.binary, NS,
                          N_CHARTS, a.cold_runs)
    finally:
        reg.stop()
    print("chartfs fleet benchmark: %d charts, local distribution 2.8 on loopback "
          "(origin and mirror), %s; median of %d runs." % (N_CHARTS, helm.version(),
                                                           a.cold_runs))
    print_fleet(rows, N_CHARTS)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
