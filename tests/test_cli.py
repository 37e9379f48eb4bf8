"""The command line as a user meets it: messages that reach them, in one
line each, and mounts that cannot go wrong silently (issue 15, points 5, 6)."""
import os
import subprocess

from proxy import RegistryProxy


def chartfs(chartfs_bin, env, *args):
    return subprocess.run([chartfs_bin, *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_unknown_options_are_named_once_and_before_the_registry_is_asked(
        chartfs_bin, registry, env, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with RegistryProxy(registry.host) as proxy:
        r = chartfs(chartfs_bin, env, "-o", "plain_http,password=s3cret,bogus,cache_dir=%s"
                    % (tmp_path / "cache"), proxy.host, str(mnt))
        assert r.returncode != 0
        assert proxy.count() == 0  # nothing was asked of the registry
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "unknown option" in lines[0] and "password" in lines[0] and "bogus" in lines[0]
    assert "s3cret" not in r.stderr
    assert not os.path.ismount(str(mnt))
    assert not (tmp_path / "cache").exists()


def test_libfuse_messages_have_one_prefix(chartfs_bin, env, tmp_path):
    r = chartfs(chartfs_bin, env, "127.0.0.1:1", str(tmp_path / "missing"))
    assert r.returncode != 0
    assert "bad mount point" in r.stderr
    assert "fuse: fuse:" not in r.stderr and "chartfs: fuse:" not in r.stderr


def test_help_lists_each_option_once(chartfs_bin, env):
    out = chartfs(chartfs_bin, env, "--help").stdout
    assert out.count("--help") == 1 and out.count("--version") == 1, out
    assert "-o ro " in out and "-o log_file=FILE" in out
    assert "syslog" in out  # where messages go


def test_mount_point_must_be_a_directory(chartfs_bin, registry, env, tmp_path):
    f = tmp_path / "file"
    f.write_text("not a directory")
    r = chartfs(chartfs_bin, env, "-o", "plain_http,cache_dir=%s" % (tmp_path / "c"),
                registry.host, str(f))
    assert r.returncode != 0 and "not a directory" in r.stderr, r.stderr
    assert f.read_text() == "not a directory"


def test_a_live_mount_is_not_mounted_over(chartfs_bin, registry, mount, env, tmp_path):
    m = mount(registry.host)
    before = open("/proc/mounts").read().count(m.mnt + " ")
    r = chartfs(chartfs_bin, env, "-o", "plain_http,cache_dir=%s" % (tmp_path / "c2"),
                registry.host, m.mnt + "/")
    assert r.returncode != 0 and "chartfs mount already" in r.stderr, r.stderr
    assert open("/proc/mounts").read().count(m.mnt + " ") == before == 1
    assert sorted(os.listdir(m.path())) == ["charts", "other"]


def test_log_file_gets_what_the_daemon_says(registry_factory, mount, helm4, packages):
    """-o log_file (the mount fixture sets it): once the daemon has
    detached, a failure's line lands there, with its time and pid."""
    reg = registry_factory()
    helm4.push(packages["web-1.0.0"], reg.host, "charts")
    m = mount(reg.host, ttl=0)
    reg.stop()
    try:
        os.listdir(m.path("charts/web"))
    except OSError:
        pass
    finally:
        reg.restart()
    with open(m.log_path) as f:
        lines = f.read().splitlines()
    assert any("chartfs[%d]: client:" % m.pid in l for l in lines), lines
