"""The fleet table of the benchmark (`bench.py --fleet`): what many machines
reading the same charts cost the origin, with and without a pull-through
mirror (issue 18).

One origin (distribution 2.8) holds the 50-chart corpus, pushed by helm. N
chartfs daemons, each with its own cache dir and mount point (N machines),
run a cold `grep -r` over the corpus at once, straight at the origin or
through one mirror (a second distribution 2.8 in proxy mode, started empty
for each run unless the row says it is warm). The baseline is N `helm pull
--untar` loops over the 50 charts (each with its own helm home) and a
`grep -r`, at once, at the origin.

Each row runs twice: once timed, everything on loopback; once with a
counting proxy (tests/proxy.py) in front of the origin, which every request
the origin gets goes through, whoever sends it (the daemons, the mirror,
helm). The proxy is Python and would be the bottleneck of the timed run.
"""
import concurrent.futures
import os
import shlex
import shutil
import statistics
import subprocess
import time

from proxy import RegistryProxy
from util import Helm, Registry

GREP = "grep -r --exclude='*.tgz' 'image:' %s >/dev/null"


def _sh(cmd, env):
    return subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True)


def _counts(proxy):
    """(all requests, blob GETs, tag lists and manifests) the origin got."""
    reqs = proxy.requests()
    blobs = sum(1 for m, p in reqs if m == "GET" and "/blobs/" in p)
    names = sum(1 for _, p in reqs if "/tags/list" in p or "/manifests/" in p)
    return len(reqs), blobs, names


class Fleet:
    def __init__(self, chartfs, work, env, ns, n_charts):
        self.chartfs, self.work, self.env = chartfs, work, env
        self.ns, self.n_charts = ns, n_charts
        self.seq = 0

    def _dir(self, what):
        self.seq += 1
        return os.path.join(self.work, "%s%d" % (what, self.seq))

    def _mount_all(self, n, host, mirror):
        """n fresh daemons (own cache dir and mount point), mounted at once."""
        base = self._dir("fleet")
        mnts, cmds = [], []
        for i in range(n):
            mnt, cache = os.path.join(base, "mnt%d" % i), os.path.join(base, "cache%d" % i)
            os.makedirs(mnt)
            opts = "plain_http,ro,ttl=600,cache_dir=%s" % cache
            if mirror:
                opts += ",mirror=http://%s" % mirror
            cmds.append("%s -o %s %s %s" % (shlex.quote(self.chartfs), opts, host,
                                             shlex.quote(mnt)))
            mnts.append(mnt)
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            for r in ex.map(lambda c: _sh(c, self.env), cmds):
                if r.returncode:
                    raise RuntimeError("mount failed: %s" % r.stderr)
        return mnts

    def _grep_all(self, mnts):
        with concurrent.futures.ThreadPoolExecutor(len(mnts)) as ex:
            list(ex.map(lambda m: _sh(GREP % shlex.quote(os.path.join(m, self.ns)),
                                      self.env), mnts))

    def _unmount(self, mnts):
        for mnt in mnts:
            _sh("fusermount3 -u %s 2>/dev/null || fusermount3 -u -z %s 2>/dev/null || true"
                % (shlex.quote(mnt), shlex.quote(mnt)), self.env)

    def _waves(self, waves, host, mirror):
        """Each wave: that many daemons mounted and grepping at once, after
        the wave before it is done. The wall time of all."""
        mnts = []
        t = time.perf_counter()
        try:
            for n in waves:
                wave = self._mount_all(n, host, mirror)
                mnts += wave
                self._grep_all(wave)
            return time.perf_counter() - t
        finally:
            self._unmount(mnts)

    def chartfs_run(self, waves, origin, mirror, counter=None):
        """One run (mirror None, "cold" or "warm"), at origin ("host:port"):
        (wall s, requests the mirror served or None); counter, the proxy in
        front of origin, is reset when the measured part starts."""
        reg = served = None
        if mirror:
            reg = Registry(self._dir("mirror"),
                           extra_config="proxy: {remoteurl: 'http://%s'}\n" % origin)
            served = RegistryProxy(reg.host)
        try:
            if mirror == "warm":
                self._waves([sum(waves)], origin, served.host)
            if counter:
                counter.reset()
            if served:
                served.reset()
            wall = self._waves(waves, origin, served.host if served else None)
            return wall, served.count() if served else None
        finally:
            if served:
                served.stop()
                reg.stop()

    def helm_run(self, n, origin, helm_bin, counter=None):
        """n concurrent `helm pull --untar` loops + grep: wall s."""
        base = self._dir("helm")
        cmds, envs = [], []
        for i in range(n):
            h = Helm(helm_bin, os.path.join(base, "home%d" % i))
            out = os.path.join(base, "out%d" % i)
            pulls = " && ".join(
                "%s pull oci://%s/%s/bench-%02d --version 1.0.0 --untar --untardir %s "
                "--plain-http" % (shlex.quote(helm_bin), origin, self.ns, c,
                                  shlex.quote(out)) for c in range(self.n_charts))
            cmds.append(pulls + " && " + GREP % shlex.quote(out))
            envs.append(h.env)
        if counter:
            counter.reset()
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            for r in ex.map(_sh, cmds, envs):
                if r.returncode not in (0, 1):
                    raise RuntimeError("helm loop failed: %s" % r.stderr)
        wall = time.perf_counter() - t
        shutil.rmtree(base, ignore_errors=True)
        return wall


# (label, waves of daemons, mirror)
SCENARIOS = [
    ("1 mount, no mirror", [1], None),
    ("8 mounts at once, no mirror", [8], None),
    ("1 mount, one mirror (cold)", [1], "cold"),
    ("8 mounts at once, one mirror (cold)", [8], "cold"),
    ("8 mounts, one then 7 at once, one mirror (cold)", [1, 7], "cold"),
    ("8 mounts at once, one mirror (warm)", [8], "warm"),
]


def _median(values):
    return statistics.median(values)


def fleet_rows(chartfs, work, env, origin, helm_bin, ns, n_charts, runs):
    """The fleet table's rows: (what, wall s, origin requests, of them blob
    GETs, of them tag lists and manifests, requests the mirror served or
    None); medians of `runs` runs each."""
    f = Fleet(chartfs, work, env, ns, n_charts)
    rows = []
    with RegistryProxy(origin.host) as counter:
        for what, waves, mirror in SCENARIOS:
            walls, counts, served = [], [], []
            for _ in range(runs):
                walls.append(f.chartfs_run(waves, origin.host, mirror)[0])
                served.append(f.chartfs_run(waves, counter.host, mirror, counter)[1])
                counts.append(_counts(counter))
            rows.append((what, _median(walls),
                         *(_median(c[i] for c in counts) for i in range(3)),
                         _median(served) if mirror else None))
        walls, counts = [], []
        for _ in range(runs):
            walls.append(f.helm_run(8, origin.host, helm_bin))
            f.helm_run(8, counter.host, helm_bin, counter)
            counts.append(_counts(counter))
        rows.append(("8 `helm pull --untar` loops ×%d + grep, no mirror" % n_charts,
                     _median(walls), *(_median(c[i] for c in counts) for i in range(3)),
                     None))
    return rows


def print_fleet(rows, n_charts):
    print()
    print("| fleet: cold `grep -r` over %d charts, each daemon its own cache dir "
          "| wall time | origin requests | of them blob GETs | tag lists, manifests "
          "| mirror served |" % n_charts)
    print("|---|---:|---:|---:|---:|---:|")
    for what, wall, req, blobs, names, served in rows:
        print("| %s | %.3f s | %d | %d | %d | %s |" % (
            what, wall, req, blobs, names, "-" if served is None else "%d" % served))
