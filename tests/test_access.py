"""Who may write through a mount: root mounts with -o allow_other (as the
shipped unit file and fstab line do), another local user (nobody, uid
65534) reads through it, but every write acts on the registry with the
mounter's credentials and is refused to that user with EACCES and one log
line; -o write_group widens writes to a group's members. Modes and owners
say so: write bits where a write is accepted, for whom it is accepted.

Real registry, real mount, real tools run as the other user through
setpriv(1). The mount point lives in a directory nobody can traverse (the
pytest tmp dirs are root's, 0700), and so do the packages it copies.
"""
import errno
import os
import shutil
import subprocess
import tempfile

import pytest

from util import Foreground, read, sanitizer_env, sanitizer_reports

NOBODY = 65534
REPO = "charts/helm-oci-test"
PKG = "helm-oci-test-0.1.0.tgz"
DENIED = os.strerror(errno.EACCES)  # "Permission denied"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, setpriv)")


def as_user(cmd, uid=NOBODY, gid=NOBODY, groups=None):
    """cmd run as uid/gid with no supplementary groups but `groups`."""
    ids = ["--reuid=%d" % uid, "--regid=%d" % gid]
    ids += ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    return subprocess.run(["setpriv", *ids, "--", *cmd], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})


class Daemon(Foreground):
    """chartfs -f -o allow_other,... as root, its log in a file. With
    uid: run as that user, given CAP_SYS_ADMIN to mount (so no fuse.conf
    user_allow_other is needed) and CAP_DAC_OVERRIDE to open this
    container's 0600 /dev/fuse; its cache and home in pub."""

    def __init__(self, binary, host, pub, work, env, opts=(), uid=None):
        self.mnt = os.path.join(pub, "mnt%d" % len(os.listdir(pub)))
        os.mkdir(self.mnt)
        os.chmod(self.mnt, 0o755)
        self.log_path = os.path.join(work, "chartfs-%s.log" % os.path.basename(self.mnt))
        cache = os.path.join(work, "cache-" + os.path.basename(self.mnt))
        cmd = [binary]
        if uid is not None:
            home = os.path.join(pub, "home-" + os.path.basename(self.mnt))
            os.mkdir(home)
            os.chown(self.mnt, uid, uid)
            os.chown(home, uid, uid)
            cache = os.path.join(home, "cache")
            env = dict(env, HOME=home, XDG_CONFIG_HOME=home, XDG_CACHE_HOME=home,
                       DOCKER_CONFIG=home, HELM_CONFIG_HOME=home,
                       HELM_REGISTRY_CONFIG=os.path.join(home, "config.json"))
            # Sanitizer reports go where that user can write them.
            for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
                env[var] = env[var].replace("log_path=", "log_path=%s/" % home)
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                   "--inh-caps=+sys_admin,+dac_override",
                   "--ambient-caps=+sys_admin,+dac_override", "--", binary]
        self.home = home if uid is not None else None
        o = ",".join(["plain_http", "allow_other", "ttl=0", "cache_dir=" + cache, *opts])
        super().__init__([*cmd, "-f", "-o", o, host, self.mnt], self.mnt, self.log_path, env)

    def refusals(self):
        return [l for l in self.log().splitlines() if "by uid %d refused" % NOBODY in l]


@pytest.fixture
def pub():
    """A directory every user can traverse (unlike pytest's tmp dirs)."""
    d = tempfile.mkdtemp(prefix="chartfs-access-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(chartfs_bin, env, tmp_path, pub):
    """start(host, opts) -> a Daemon mounted with allow_other as root.
    After the test: unmounted; fails on a dead daemon or sanitizer report."""
    san = str(tmp_path / "sanitizers")
    os.makedirs(san)
    daemons = []

    def start(host, opts=(), uid=None):
        d = Daemon(chartfs_bin, host, pub, str(tmp_path), sanitizer_env(env, san), opts, uid)
        daemons.append(d)
        return d

    yield start
    problems = [p for p in (d.stop() for d in daemons) if p]
    problems += sanitizer_reports(san)
    for d in daemons:
        if d.home:
            problems += sanitizer_reports(d.home + san)
    assert not problems, "\n".join(problems)


@pytest.fixture
def seeded_reg(registry_factory, helm4, packages):
    """A registry holding charts/helm-oci-test:0.1.0, pushed by helm."""
    reg = registry_factory()
    helm4.push(packages["helm-oci-test-0.1.0"], reg.host, "charts")
    return reg


@pytest.fixture
def public_pkg(pub, packages):
    """A package the other user can read: web-1.0.0.tgz, 0644 in a 0755 dir."""
    d = os.path.join(pub, "pkgs")
    os.mkdir(d)
    os.chmod(d, 0o755)
    dst = os.path.join(d, "web-1.0.0.tgz")
    shutil.copy(packages["web-1.0.0"], dst)
    os.chmod(dst, 0o644)
    return dst


@pytest.fixture
def group():
    """A throwaway group (name, gid), deleted after the test."""
    name = "chartfs-t%d" % os.getpid()
    subprocess.run(["groupdel", name], capture_output=True)
    subprocess.run(["groupadd", name], check=True, capture_output=True)
    gid = int(subprocess.run(["getent", "group", name], check=True, capture_output=True,
                             text=True).stdout.split(":")[2])
    yield name, gid
    subprocess.run(["groupdel", name], capture_output=True)


def mode(path):
    """(permission bits, gid) as stat(1) shows them."""
    out = subprocess.run(["stat", "-c", "%a %g", path], check=True, capture_output=True,
                         text=True).stdout.split()
    return out[0], int(out[1])


def test_another_user_reads_but_every_write_is_refused(seeded_reg, daemon, public_pkg):
    reg = seeded_reg
    d = daemon(reg.host)
    pkg = d.path(REPO, PKG)
    # Reads stay open to the users allow_other admits.
    r = as_user(["cat", d.path(REPO, "0.1.0", "Chart.yaml")])
    assert r.returncode == 0 and "name: helm-oci-test" in r.stdout, r.stderr
    r = as_user(["ls", d.path(REPO)])
    assert r.returncode == 0 and PKG in r.stdout.split(), r.stderr
    assert as_user(["cmp", pkg, pkg]).returncode == 0
    # access(2) answers as the modes and the refusals below do: readable,
    # searchable, not writable for this user.
    for path in (d.path("charts"), d.path(REPO), pkg):
        r = as_user(["sh", "-c", 'test -r "$1" && test ! -w "$1"', "-", path])
        assert r.returncode == 0, path
    assert as_user(["sh", "-c", 'cd "$1" && ls', "-", d.path(REPO, "0.1.0")]).returncode == 0

    # cp into the mount: a push with root's credentials. Refused, nothing pushed.
    r = as_user(["cp", public_pkg, d.path("charts") + "/"])
    assert r.returncode != 0 and DENIED in r.stderr, (r.returncode, r.stderr)
    assert reg.tags("charts/web") == []
    # Overwriting an existing package (open for writing) and truncating it.
    r = as_user(["cp", public_pkg, pkg])
    assert r.returncode != 0 and DENIED in r.stderr, r.stderr
    r = as_user(["truncate", "-s", "0", pkg])
    assert r.returncode != 0 and DENIED in r.stderr, r.stderr
    assert reg.tags(REPO) == ["0.1.0"]

    # rm of a package: a tag delete. Refused, the tag stays.
    before = len(d.refusals())
    r = as_user(["rm", "-f", pkg])
    assert r.returncode != 0 and DENIED in r.stderr, r.stderr
    assert reg.tags(REPO) == ["0.1.0"]
    # One log line naming the uid and the path.
    lines = d.refusals()[before:]
    assert len(lines) == 1, lines
    assert "uid %d" % NOBODY in lines[0] and "/" + REPO + "/" + PKG in lines[0], lines

    # Every other modifying request.
    for cmd in (["mkdir", d.path("charts", "new")],
                ["rmdir", d.path(REPO)],
                ["mv", pkg, d.path(REPO, "moved.tgz")],
                ["touch", pkg],
                ["touch", d.path("charts", "new.tgz")],
                ["chmod", "0666", pkg],
                ["chown", "%d" % NOBODY, pkg],
                ["setfattr", "-n", "user.x", "-v", "1", pkg],
                ["setfattr", "-x", "user.oci.digest", pkg],
                ["ln", "-s", "x", d.path("charts", "link")],
                ["ln", pkg, d.path("charts", "hard.tgz")]):
        before = len(d.refusals())
        r = as_user(cmd)
        assert r.returncode != 0 and DENIED in r.stderr, (cmd, r.returncode, r.stderr)
        assert len(d.refusals()) > before, (cmd, d.log())
    assert not os.path.exists(d.path("charts", "new"))
    assert reg.tags(REPO) == ["0.1.0"]
    assert sorted(reg.catalog()) == [REPO]

    # The mounting user (root) still writes: cp pushes, rm deletes.
    r = subprocess.run(["cp", public_pkg, d.path("charts") + "/"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert reg.tags("charts/web") == ["1.0.0"]
    os.unlink(pkg)
    assert reg.tags(REPO) == []
    assert "by uid 0 refused" not in d.log(), d.log()


def test_the_mounters_group_alone_admits_nobody(seeded_reg, daemon, public_pkg):
    """Writes are the mounting uid's: a caller in the mounter's group (gid
    0 here) is still refused without -o write_group."""
    d = daemon(seeded_reg.host)
    r = as_user(["cp", public_pkg, d.path("charts") + "/"], gid=0)
    assert r.returncode != 0 and DENIED in r.stderr, r.stderr
    assert seeded_reg.tags("charts/web") == []


def test_root_is_refused_on_another_users_mount(seeded_reg, daemon, public_pkg):
    """Mounted by nobody: its credentials are lent to nobody else, root
    included (root can mount with its own); nobody itself writes."""
    reg = seeded_reg
    d = daemon(reg.host, uid=NOBODY)
    pkg = d.path(REPO, PKG)
    assert b"name: helm-oci-test" in read(d.path(REPO, "0.1.0", "Chart.yaml"))
    for cmd in (["cp", public_pkg, d.path("charts") + "/"], ["rm", pkg],
                ["mkdir", d.path("charts", "new")]):
        r = subprocess.run(cmd, capture_output=True, text=True, env={"LC_ALL": "C",
                                                                     "PATH": "/usr/bin:/bin"})
        assert r.returncode != 0 and DENIED in r.stderr, (cmd, r.stderr)
    lines = [l for l in d.log().splitlines() if "by uid 0 refused" in l]
    assert len(lines) == 3 and "only uid %d" % NOBODY in lines[0], d.log()
    assert reg.tags("charts/web") == [] and reg.tags(REPO) == ["0.1.0"]
    assert mode(d.path(REPO)) == ("755", NOBODY)
    r = as_user(["cp", public_pkg, d.path("charts") + "/"])
    assert r.returncode == 0, r.stderr
    assert reg.tags("charts/web") == ["1.0.0"]
    r = as_user(["rm", pkg])
    assert r.returncode == 0, r.stderr
    assert reg.tags(REPO) == []


@pytest.mark.parametrize("how", ["supplementary", "primary"])
def test_write_group_admits_its_members(seeded_reg, daemon, public_pkg, group, how):
    name, gid = group
    reg = seeded_reg
    d = daemon(reg.host, opts=["write_group=" + name])
    # Not in the group: refused as before.
    r = as_user(["cp", public_pkg, d.path("charts") + "/"])
    assert r.returncode != 0 and DENIED in r.stderr, r.stderr
    assert reg.tags("charts/web") == []
    # In it (as a supplementary group, or as the process's own gid): cp pushes.
    if how == "supplementary":
        r = as_user(["cp", public_pkg, d.path("charts") + "/"], groups=[gid])
    else:
        r = as_user(["cp", public_pkg, d.path("charts") + "/"], gid=gid)
    assert r.returncode == 0, r.stderr
    assert reg.tags("charts/web") == ["1.0.0"]
    # And deletes.
    r = as_user(["rm", d.path(REPO, PKG)], groups=[gid])
    assert r.returncode == 0, r.stderr
    assert reg.tags(REPO) == []
    # Modes say so: group write bits, and the group owns the entries.
    assert mode(d.path("charts")) == ("775", gid)
    assert mode(d.path("charts", "web", "web-1.0.0.tgz")) == ("664", gid)
    assert mode(d.path("charts", "web", "1.0.0")) == ("555", gid)
    assert mode(d.path("charts", "web", "1.0.0", "Chart.yaml")) == ("444", gid)


def test_a_gid_names_the_write_group_too(seeded_reg, daemon, public_pkg, group):
    _, gid = group
    d = daemon(seeded_reg.host, opts=["write_group=%d" % gid])
    r = as_user(["cp", public_pkg, d.path("charts") + "/"], groups=[gid])
    assert r.returncode == 0, r.stderr
    assert seeded_reg.tags("charts/web") == ["1.0.0"]


def test_an_unknown_write_group_fails_the_mount(chartfs_bin, seeded_reg, env, tmp_path, pub):
    mnt = os.path.join(pub, "mnt")
    os.mkdir(mnt)
    r = subprocess.run([chartfs_bin, "-o", "plain_http,allow_other,write_group=no-such-group-x,"
                        "cache_dir=%s" % (tmp_path / "cache"), seeded_reg.host, mnt],
                       env=env, capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        subprocess.run(["fusermount3", "-u", mnt])
    assert r.returncode != 0
    assert "write_group=no-such-group-x: no such group" in r.stderr, r.stderr
    assert not os.path.ismount(mnt)


def test_modes_show_who_may_write(seeded_reg, daemon):
    rw = daemon(seeded_reg.host)
    ro = daemon(seeded_reg.host, opts=["ro"])
    # Read-write: the mounting user (root, gid 0) may create in the root,
    # namespaces and repositories, and overwrite packages; a tag directory
    # and the chart in it are the registry's, by digest: read-only.
    want = {(): "755", ("charts",): "755", (REPO,): "755", (REPO, PKG): "644",
            (REPO, "0.1.0"): "555", (REPO, "0.1.0", "Chart.yaml"): "444",
            (REPO, "0.1.0", "templates"): "555"}
    for parts, bits in want.items():
        assert mode(rw.path(*parts)) == (bits, 0), parts
    # Listed with attributes (READDIRPLUS) the same.
    out = subprocess.run(["ls", "-l", rw.path(REPO)], check=True, capture_output=True,
                         text=True).stdout
    assert "-rw-r--r--" in out and "dr-xr-xr-x" in out, out
    # access(2) says the same to the mounting user: `test -w` where a
    # write is accepted, no `test -x` on a file.
    for parts, bits in want.items():
        p = rw.path(*parts)
        assert os.access(p, os.W_OK) == bool(int(bits, 8) & 0o200), parts
        assert os.access(p, os.X_OK) == bool(int(bits, 8) & 0o100), parts
        assert os.access(p, os.R_OK), parts
    # Read-only: no write bit anywhere.
    for parts in want:
        bits, _ = mode(ro.path(*parts))
        assert not int(bits, 8) & 0o222, (parts, bits)
    # A file being written is the writer's.
    fd = os.open(rw.path("charts", "new.tgz"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert mode(rw.path("charts", "new.tgz")) == ("644", 0)
    finally:
        with pytest.raises(OSError):  # empty: nothing to publish (EINVAL)
            os.close(fd)
