#!/usr/bin/env python3
"""Started as root with `user: nobody`, mamori hands its data directory to
nobody, runs as nobody (uid and gid, no way back to root), still binds a
port below 1024, and stores and searches as usual. Without `user` it warns
that it runs as root.
"""
import os
import pwd
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import Mamori, check, run  # noqa: E402


def low_free_port():
    for port in range(700, 1000):
        ok = True
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise AssertionError("no free port below 1024")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def test_drop_to_nobody_keeps_low_port():
    check(os.geteuid() == 0, "this test must run as root (CI and `make test` do)")
    nobody = pwd.getpwnam("nobody")
    low = low_free_port()
    m = Mamori(extra_config="user: nobody\n")
    os.chmod(m.dir, 0o755)   # nobody must reach its data directory
    text = open(m.config).read().replace(f"syslog_udp: 127.0.0.1:{m.syslog_port}",
                                         f"syslog_udp: 127.0.0.1:{low}")
    open(m.config, "w").write(text)
    try:
        m.start()
        st = proc_status(m.proc.pid)
        check(all(int(x) == nobody.pw_uid for x in st["Uid"]), f"uids: {st['Uid']}")
        check(all(int(x) == nobody.pw_gid for x in st["Gid"]), f"gids: {st['Gid']}")
        check(int(st["CapEff"][0], 16) == 1 << 10, f"only CAP_NET_BIND_SERVICE: {st['CapEff']}")
        check("event=privileges_dropped" in m.read_log(), "logged")
        for name in os.listdir(m.data):
            check(os.stat(os.path.join(m.data, name)).st_uid == nobody.pw_uid, f"{name} owned by nobody")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"<13>Nov 25 10:00:00 host app: lowporttoken over udp", ("127.0.0.1", low))
        s.close()
        m.wait_total(1, q="lowporttoken")
        check(m.stop() == 0, "clean stop")
    finally:
        m.cleanup()


def test_root_without_user_warns():
    m = Mamori()
    try:
        m.start()
        check("event=running_as_root" in m.read_log(), "warning when running as root")
    finally:
        m.cleanup()


def test_unknown_user_is_a_config_error():
    import subprocess
    from mamori_test import BIN
    m = Mamori(extra_config="user: no-such-user-here\n")
    try:
        r = subprocess.run([BIN, "serve", "-c", m.config], capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and "no-such-user-here" in r.stderr, f"{r.returncode}: {r.stderr}")
    finally:
        m.cleanup()


if __name__ == "__main__":
    run([test_drop_to_nobody_keeps_low_port, test_root_without_user_warns,
         test_unknown_user_is_a_config_error])
