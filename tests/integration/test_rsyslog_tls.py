#!/usr/bin/env python3
"""Syslog over TLS from a real rsyslog: rsyslog (Debian, OpenSSL stream
driver) receives from `logger` on UDP and forwards RFC 5424 over TLS to
mamori, verifying mamori's certificate against a test CA.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import Mamori, TestFailure, check, free_port, run  # noqa: E402


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    check(r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}")


def make_certs(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=mamori test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)


def test_rsyslog_forwards_over_tls():
    check(shutil.which("rsyslogd"), "rsyslogd is not installed (scripts/deps.sh installs it)")
    tls_port = free_port()
    m = Mamori()
    certs = os.path.join(m.dir, "tls")
    os.makedirs(certs)
    make_certs(certs)
    with open(m.config, "a") as f:
        pass
    # Add the TLS listener to the ingest section.
    text = open(m.config).read().replace(
        "ingest:\n",
        f"ingest:\n  syslog_tls: 127.0.0.1:{tls_port}\n  tls_cert: {certs}/server.pem\n"
        f"  tls_key: {certs}/server.key\n", 1)
    open(m.config, "w").write(text)

    rs_dir = os.path.join(m.dir, "rsyslog")
    os.makedirs(rs_dir)
    rs_port = free_port()
    conf = os.path.join(rs_dir, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(f"""global(workDirectory="{rs_dir}"
       DefaultNetstreamDriver="ossl"
       DefaultNetstreamDriverCAFile="{certs}/ca.pem")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{rs_port}")
action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp"
       StreamDriver="ossl" StreamDriverMode="1"
       StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
       template="RSYSLOG_SyslogProtocol23Format")
""")
    rs = None
    try:
        m.start()
        check(subprocess.run(["rsyslogd", "-N1", "-f", conf], capture_output=True).returncode == 0,
              "rsyslog config check failed")
        rs_log = open(os.path.join(rs_dir, "rsyslogd.out"), "wb")
        rs = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(rs_dir, "pid")],
                              stdout=rs_log, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        for i in range(5):
            subprocess.run(["logger", "-d", "-n", "127.0.0.1", "-P", str(rs_port), "-t", "tlsapp",
                            f"tlstoken message {i} through rsyslog"], check=True, timeout=30)
        try:
            ans = m.wait_total(5, q="tlstoken", timeout=40)
        except TestFailure:
            rs_log.flush()
            raise TestFailure("rsyslog output:\n" + open(os.path.join(rs_dir, "rsyslogd.out")).read()
                              + "\nmamori:\n" + m.read_log())
        check(ans["total"] == 5, f"total {ans['total']}")
        ev = ans["events"][0]
        check(ev.get("log.syslog.appname") == "tlsapp", f"appname via rsyslog: {ev}")
        check(ev.get("log.syslog.version") in (1, "1"), f"RFC 5424 from rsyslog: {ev}")
        status, body = m.get("/metrics")
        check(b'input="syslog_tls"' in body, "syslog_tls input in metrics")
    finally:
        if rs:
            rs.terminate()
            rs.wait(10)
        m.cleanup()


if __name__ == "__main__":
    run([test_rsyslog_forwards_over_tls])
