"""A/B of cold `ls -l` of a 200-tag repository across chartfs builds, over
TLS (HTTP/2) or plain HTTP, through a byte-delay proxy, against curl
fetching the same 200 manifests (`--http2 --parallel --parallel-max 100`).

    /usr/bin/python3 tests/bench/ls_far.py [--delay-ms 25] [--runs 5]
        [--plain] [--opts ,parallel=1] BUILD_DIR...

Each run mounts each build afresh (a new cache dir: cold) and times `ls -l`
of the repository, the builds and curl interleaved so that a machine's load
falls on all alike; prints each median and its ratio to curl's. The delay
proxy is tests/bench/delayproxy.py (--delay-ms 0: none). Not a test.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from util import HELM_CHART, HELM_CONFIG, Registry, isolated_env  # noqa: E402

N = 200
REPO = "bench/many"
MT = "application/vnd.oci.image.manifest.v1+json"


class TLSRegistry(Registry):
    """util.Registry, with TLS once tls is set and it is started again."""
    tls = None

    def _config(self):
        path = super()._config()
        if self.tls:
            with open(path) as f:
                s = f.read().replace(
                    "http: {addr: '%s'}" % self.host,
                    "http: {addr: '%s', tls: {certificate: %s, key: %s}}"
                    % (self.host, self.tls[0], self.tls[1]))
            with open(path, "w") as f:
                f.write(s)
        return path


def push_tags(reg):
    cfg = dict(reg.push_blob(REPO, b'{"name":"many","version":"0.1.0"}'),
               mediaType=HELM_CONFIG)
    layer = dict(reg.push_blob(REPO, b"\x1f\x8b not a chart"), mediaType=HELM_CHART)
    for i in range(N):
        man = {"schemaVersion": 2, "mediaType": MT, "config": cfg, "layers": [layer],
               "annotations": {"n": str(i)}}
        reg.push_manifest(REPO, "1.0.%d" % i, json.dumps(man).encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--delay-ms", type=float, default=25)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--plain", action="store_true", help="plain HTTP (HTTP/1.1)")
    ap.add_argument("--opts", default="", help="more -o options, e.g. ,parallel=1")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="chartfs-lsfar-")
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    reg = TLSRegistry(os.path.join(tmp, "reg"))
    proxy = None
    try:
        push_tags(reg)
        if not a.plain:
            reg.stop()
            reg.tls = (cert, key)
            assert reg.start()
        host = reg.host
        if a.delay_ms > 0:
            proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "delayproxy.py"),
                                      "--upstream", reg.host, "--delay-ms", str(a.delay_ms)],
                                     stdout=subprocess.PIPE, text=True)
            host = proxy.stdout.readline().strip()
        scheme = "http" if a.plain else "https"
        env = isolated_env(os.path.join(tmp, "home"))
        opts = "ca_file=%s%s%s" % (cert, ",plain_http" if a.plain else "", a.opts)

        def curl():
            urls = []
            for i in range(N):
                urls += ["-o", "/dev/null", "%s://%s/v2/%s/manifests/1.0.%d"
                         % (scheme, host, REPO, i)]
            t = time.time()
            subprocess.run(["curl", "-fsS", "--no-progress-meter", "--cacert", cert,
                            *([] if a.plain else ["--http2"]), "--parallel",
                            "--parallel-max", "100", "-H", "Accept: " + MT, *urls], check=True)
            return time.time() - t

        def chartfs(build):
            mnt, cache = tempfile.mkdtemp(dir=tmp), tempfile.mkdtemp(dir=tmp)
            subprocess.run([os.path.join(build, "fs", "chartfs"), "-o",
                            "cache_dir=%s,%s" % (cache, opts), host, mnt],
                           check=True, env=env, stderr=subprocess.DEVNULL)
            try:
                t = time.time()
                out = subprocess.run(["ls", "-l", os.path.join(mnt, REPO)], check=True,
                                     capture_output=True, text=True).stdout
                took = time.time() - t
                assert out.count(" 1.0.") >= N, out[:300]
            finally:
                subprocess.run(["fusermount3", "-u", mnt], check=True)
            return took

        name = "curl%s --parallel-max 100" % ("" if a.plain else " --http2")
        res = {name: []}
        res.update({b: [] for b in a.builds})
        for _ in range(a.runs):
            res[name].append(curl())
            for b in a.builds:
                res[b].append(chartfs(b))
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait()
        reg.stop()
        time.sleep(0.5)
        shutil.rmtree(tmp, ignore_errors=True)
    base = sorted(res[name])[len(res[name]) // 2]
    print("cold `ls -l` of %d tags, %s, delay %g ms each way, median of %d:"
          % (N, "plain HTTP" if a.plain else "TLS", a.delay_ms, a.runs))
    for k, v in res.items():
        med = sorted(v)[len(v) // 2]
        print("  %-36s %.3f s  %.2fx   (%s)" % (k, med, med / base,
                                              " ".join("%.3f" % x for x in v)))


if __name__ == "__main__":
    main()
