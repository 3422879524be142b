#!/usr/bin/env python3
"""`mamori notify test` against real peers on loopback: a private Postfix
(its own config_directory, queue and mail spool under a temp dir, a free
port, STARTTLS with a throw-away certificate) delivering to a mailbox file
for root@test.local, and Python HTTP servers receiving the webhooks.

Checks: the message arrives in the mailbox with the expected (RFC 2047
encoded, non-ASCII) subject, once over plain SMTP and once with STARTTLS
required and the certificate verified; a wrong CA fails; a minimal
submission server in Python sees STARTTLS before AUTH PLAIN with the right
password, and a refused login is not retried; the generic and the
Slack-shaped JSON arrive with the custom header; a webhook that always
answers 500 is tried max_attempts times and makes the command fail with the
reason; --channel picks one channel; a bad configuration exits 2 with
file:line:col. Postfix is stopped in every case. Standard library only (plus
the postfix and openssl binaries).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, TestFailure, check, run  # noqa: E402
from peers import Hooks, Postfix  # noqa: E402

TITLE = "Prüfung 東京 notify integration"


def mamori(*args, timeout=120):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout)


def require_notify_command():
    """The lead wires `notify` into main.c: a binary without it is a failure,
    never a skip."""
    r = mamori("notify", "--help", timeout=30)
    if "unknown command" in r.stderr:
        raise TestFailure("`mamori notify` is not wired into src/cli/main.c "
                          "(cli_notify_main in src/cli/notify_cmd.c): " + r.stderr.strip())
    check(r.returncode == 0 and "notify test" in r.stdout, f"notify --help: {r.returncode} {r.stdout} {r.stderr}")


class FakeSubmission:
    """A minimal SMTP submission server on 127.0.0.1 (STARTTLS, then AUTH
    PLAIN) to check what Postfix without SASL cannot: that mamori logs in,
    only over TLS, and that a refused login is not retried."""

    USER, PASSWORD = "notifier", "s3cret pass"

    def __init__(self, cert, key):
        import base64
        import socketserver
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        log = self.log = []
        user, password = self.USER, self.PASSWORD

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sock, tls, authed = self.request, False, False
                f = sock.makefile("rb")

                def send(line):
                    sock.sendall(line.encode() + b"\r\n")

                send("220 fake.test.local ESMTP")
                while True:
                    line = f.readline(1000)
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = cmd.split(" ")[0].upper()
                    log.append(("tls" if tls else "plain", verb))
                    if verb == "EHLO":
                        send("250-fake.test.local")
                        send("250 AUTH PLAIN" if tls else "250 STARTTLS")
                    elif verb == "STARTTLS" and not tls:
                        send("220 go ahead")
                        sock = ctx.wrap_socket(sock, server_side=True)
                        f = sock.makefile("rb")
                        tls = True
                    elif verb == "AUTH" and tls:
                        parts = cmd.split(" ")
                        if len(parts) < 3:
                            send("334 ")
                            resp = f.readline(1000).decode().strip()
                        else:
                            resp = parts[2]
                        try:
                            _, u, p = base64.b64decode(resp).decode().split("\0")
                        except ValueError:
                            u = p = None
                        log.append(("auth", u, p))
                        authed = u == user and p == password
                        send("235 2.7.0 ok" if authed else "535 5.7.8 bad credentials")
                    elif verb in ("MAIL", "RCPT") and authed:
                        send("250 ok")
                    elif verb == "DATA" and authed:
                        send("354 go")
                        data = []
                        while True:
                            dl = f.readline(10000)
                            if not dl or dl == b".\r\n":
                                break
                            data.append(dl)
                        log.append(("data", b"".join(data)))
                        send("250 queued")
                    elif verb == "QUIT":
                        send("221 bye")
                        return
                    else:
                        send("530 5.7.0 not now")

        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def write_config(d, pf, ok, bad, sub, other_cert):
    path = os.path.join(d, "mamori.yaml")
    with open(path, "w") as f:
        f.write(f"""data_dir: {d}/var
notify:
  channels:
    - name: mail-plain
      type: smtp
      url: smtp://127.0.0.1:{pf.port}
      starttls: "off"
      from: "mamori SOC <soc@example.org>"
      to: [root@test.local]
      subject_prefix: "[mamori-it]"
      max_attempts: 2
      retry_base_ms: 200
    - name: mail-tls
      type: smtp
      url: smtp://127.0.0.1:{pf.port}
      starttls: required
      ca_file: {pf.cert}
      from: soc@example.org
      to: ["Root <root@test.local>"]
      subject_prefix: "[mamori-tls]"
      max_attempts: 2
      retry_base_ms: 200
    - name: mail-auth
      type: smtp
      url: smtp://127.0.0.1:{sub.port}
      starttls: required
      ca_file: {pf.cert}
      user: {sub.USER}
      password: "{sub.PASSWORD}"
      from: soc@example.org
      to: [analyst@example.org]
      max_attempts: 3
      retry_base_ms: 50
    - name: mail-badpass
      type: smtp
      url: smtp://127.0.0.1:{sub.port}
      starttls: required
      ca_file: {pf.cert}
      user: {sub.USER}
      password: wrong
      from: soc@example.org
      to: [analyst@example.org]
      max_attempts: 3
      retry_base_ms: 50
    - name: mail-badca
      type: smtp
      url: smtp://127.0.0.1:{pf.port}
      starttls: required
      ca_file: {other_cert}
      from: soc@example.org
      to: [root@test.local]
      max_attempts: 1
    - name: hook-generic
      type: webhook
      url: http://127.0.0.1:{ok.port}/generic
      headers: ["Authorization: Bearer it-token"]
    - name: hook-slack
      type: webhook
      url: http://127.0.0.1:{ok.port}/slack
      format: slack
    - name: hook-broken
      type: webhook
      url: http://127.0.0.1:{bad.port}/broken
      max_attempts: 3
      retry_base_ms: 50
""")
    return path


STATE = {}


def setup():
    require_notify_command()
    d = tempfile.mkdtemp(prefix="mamori-notify-")
    os.chmod(d, 0o755)  # Postfix's daemons run as postfix and must traverse it
    pf = Postfix(os.path.join(d, "postfix"))
    ok, bad = Hooks(), Hooks(fail=True)
    STATE.update(dir=d, pf=pf, ok=ok, bad=bad)
    pf.start()
    sub = STATE["sub"] = FakeSubmission(pf.cert, pf.key)
    other = os.path.join(d, "other.pem")
    pf.sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", os.path.join(d, "other.key"),
          "-out", other, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    STATE["config"] = write_config(d, pf, ok, bad, sub, other)


def test_all_channels():
    pf, ok, bad = STATE["pf"], STATE["ok"], STATE["bad"]
    r = mamori("notify", "test", "--config", STATE["config"], "--title", TITLE, "--severity", "high")
    out = r.stdout
    check(r.returncode == 1, f"one channel is broken, status must be 1: {r.returncode}\n{out}\n{r.stderr}")
    for name in ("mail-plain", "mail-tls", "mail-auth", "hook-generic", "hook-slack"):
        check(re.search(rf"^{name}: sent", out, re.M), f"{name} not sent:\n{out}\n{r.stderr}\n{pf.read_log()}")
    check(re.search(r"^hook-broken: failed: HTTP 500", out, re.M), f"hook-broken:\n{out}")
    check(len(bad.received) == 3, f"hook-broken attempts: {len(bad.received)} (max_attempts 3)")
    check(re.search(r"^mail-badpass: failed: Login denied", out, re.M), f"mail-badpass:\n{out}")
    check(re.search(r"^mail-badca: failed: .*(certificate|SSL)", out, re.M), f"mail-badca:\n{out}")

    # AUTH only after STARTTLS; the right password once; a refused login
    # is final (one AUTH for mail-badpass despite max_attempts 3).
    log = STATE["sub"].log
    auths = [e for e in log if e[0] == "auth"]
    check(sorted(a[2] for a in auths) == ["s3cret pass", "wrong"], f"AUTH attempts {auths}")
    check(all(e[0] != "plain" or e[1] in ("EHLO", "STARTTLS") for e in log), f"plain-text commands {log}")
    datas = [e[1] for e in log if e[0] == "data"]
    check(len(datas) == 1 and b"Subject: =?UTF-8?B?" in datas[0], f"submitted data {datas!r:.300}")

    msgs = pf.wait_messages("root", 2)
    subjects = sorted(str(m["subject"]) for m in msgs)
    check(subjects == [f"[mamori-it] [HIGH] {TITLE}", f"[mamori-tls] [HIGH] {TITLE}"], f"subjects {subjects}")
    for m in msgs:
        raw = m.as_bytes()
        check(b"=?UTF-8?B?" in raw, "the subject travels RFC 2047 encoded")
        check(m["message-id"] and m["message-id"].endswith("@example.org>"), f"Message-ID {m['message-id']}")
        check(m["date"] is not None and m.get_content_type() == "text/plain", "Date and text/plain")
        check(m.get_content_charset() == "utf-8", f"charset {m.get_content_charset()}")
        body = m.get_content()
        check("kind: test" in body and "severity: high" in body, f"body: {body!r}")
    tls = [m for m in msgs if "[mamori-tls]" in str(m["subject"])][0]
    # Postfix notes a TLS session in the Received header it adds.
    plain = [m for m in msgs if "[mamori-it]" in str(m["subject"])][0]
    check(" with ESMTPS " in str(tls["received"]), f"mail-tls went without TLS: {tls['received']}")
    check(" with ESMTP " in str(plain["received"]), f"mail-plain used TLS: {plain['received']}")

    by_path = {p: (h, b) for p, h, b in ok.received}
    check(set(by_path) == {"/generic", "/slack"}, f"webhook paths {list(by_path)}")
    h, b = by_path["/generic"]
    g = json.loads(b)
    check(g["kind"] == "test" and g["severity"] == "high" and g["title"] == TITLE, f"generic {g}")
    check(g["source"] == "mamori" and "host" in g["fields"], f"generic fields {g}")
    check(h.get("Authorization") == "Bearer it-token", f"header {h}")
    check(h.get("Content-Type") == "application/json", f"content type {h}")
    s = json.loads(by_path["/slack"][1])
    check(list(s) == ["text"] and TITLE in s["text"] and s["text"].startswith("*[HIGH]"), f"slack {s}")


def test_one_channel():
    ok = STATE["ok"]
    n = len(ok.received)
    r = mamori("notify", "test", "--config", STATE["config"], "--channel", "hook-slack")
    check(r.returncode == 0, f"status {r.returncode}: {r.stdout} {r.stderr}")
    check(r.stdout.strip().splitlines() == ["hook-slack: sent (webhook)"], r.stdout)
    check(len(ok.received) == n + 1 and ok.received[-1][0] == "/slack", "one POST to /slack")
    r = mamori("notify", "test", "--config", STATE["config"], "--channel", "nosuch")
    check(r.returncode == 2 and "no channel named 'nosuch'" in r.stderr, f"{r.returncode} {r.stderr}")


def test_bad_config():
    path = os.path.join(STATE["dir"], "bad.yaml")
    with open(path, "w") as f:
        f.write("notify:\n  channels:\n    - name: x\n      type: smtp\n      url: smtp://127.0.0.1:1\n"
                "      from: a@b\n      to: []\n")
    r = mamori("notify", "test", "--config", path)
    check(r.returncode == 2 and f"{path}:3:7: notify.channels[0]: to:" in r.stderr, f"{r.returncode} {r.stderr}")
    r = mamori("notify", "bogus")
    check(r.returncode == 2, f"unknown subcommand: {r.returncode}")


def teardown():
    errors = []
    for key in ("ok", "bad", "sub"):
        if key in STATE:
            STATE[key].stop()
    if "pf" in STATE:
        try:
            STATE["pf"].stop()
        except TestFailure as e:
            errors.append(str(e))
    if "dir" in STATE:
        shutil.rmtree(STATE["dir"], ignore_errors=True)
    if errors:
        raise TestFailure("; ".join(errors))


def test_notify_postfix():
    """Setup, every check, and teardown (Postfix stopped even on failure)."""
    try:
        setup()
        test_all_channels()
        test_one_channel()
        test_bad_config()
    except BaseException as e:
        try:
            teardown()
        except TestFailure as t:
            raise TestFailure(f"{e}; and at teardown: {t}") from e
        raise
    teardown()


if __name__ == "__main__":
    run([test_notify_postfix])
