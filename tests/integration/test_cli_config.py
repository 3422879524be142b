#!/usr/bin/env python3
"""The command line: --help on every subcommand, version, check-config
with good and bad files (file:line:col and exit status 2), serve refusing a
bad configuration with status 2, a port in use failing start-up, the API's
authentication, and the events search client.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, TOKEN, Mamori, check, run  # noqa: E402


def mamori(*args, env=None, timeout=30):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout, env=env)


def test_help_everywhere():
    r = mamori("--help")
    check(r.returncode == 0 and "serve" in r.stdout and "check-config" in r.stdout, r.stdout)
    for sub in (["serve"], ["check-config"], ["version"], ["events"], ["events", "search"],
                ["mail"], ["mail", "check"]):
        r = mamori(*sub, "--help")
        check(r.returncode == 0 and "usage" in r.stdout.lower(), f"{sub} --help: {r.stdout} {r.stderr}")
    r = mamori("bogus")
    check(r.returncode == 2 and "unknown command" in r.stderr, r.stderr)
    r = mamori("version")
    check(r.returncode == 0 and r.stdout.startswith("mamori "), r.stdout)


def test_mail_check():
    """`mamori mail check` runs the gateway on a file: DLP on outbound mail,
    and a resolver that does not answer gives a tempfail, never a pass."""
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "m.yaml")
    open(conf, "w").write("mail:\n  dns: 127.0.0.1@9\n  dns_timeout: 1s\n")
    msg = os.path.join(d, "m.eml")
    open(msg, "w").write("From: CEO <ceo@bank.example>\nTo: x@test.local\nSubject: hi\n\n"
                         "card 4111 1111 1111 1111\n")
    r = mamori("mail", "check", "-c", conf, "--auth", "bob", "--rcpt", "a@x.example", msg)
    check(r.returncode == 1 and "quarantine" in r.stdout and "credit_card" in r.stdout,
          f"{r.returncode} {r.stdout} {r.stderr}")
    r = mamori("mail", "check", "-c", conf, msg)
    check(r.returncode == 1 and "tempfail" in r.stdout and "451 4.7.1" in r.stdout,
          f"{r.returncode} {r.stdout} {r.stderr}")
    r = mamori("mail", "check", "-c", conf, "--json", msg)
    check('"event"' in r.stdout and '"tempfail"' in r.stdout, r.stdout)
    open(msg, "w").write(" continuation first\n")
    r = mamori("mail", "check", "-c", conf, msg)
    check(r.returncode == 2 and "not an RFC 5322 message" in r.stderr, r.stderr)
    shutil.rmtree(d, ignore_errors=True)


def test_check_config():
    d = tempfile.mkdtemp()
    good = os.path.join(d, "good.yaml")
    open(good, "w").write("data_dir: /tmp/x\ningest:\n  syslog_udp: \"\"\n  max_line: 64k\n")
    r = mamori("check-config", good)
    check(r.returncode == 0 and "ok" in r.stdout, f"{r.stdout} {r.stderr}")
    cases = [
        ("ingest:\n  max_line: lots\n", ":2:13: "),
        ("api:\n  listen: nowhere\n", ":2:11: "),
        ("nosuch: 1\n", ":1:1: unknown setting 'nosuch'"),
        ("ingest:\n  syslog_udp: [\n", ":3:1: "),
        ("store:\n  retention: 3 fortnights\n", ":2:14: "),
    ]
    for text, want in cases:
        bad = os.path.join(d, "bad.yaml")
        open(bad, "w").write(text)
        r = mamori("check-config", bad)
        check(r.returncode == 2, f"check-config {text!r}: status {r.returncode}")
        check(bad + want in r.stderr, f"check-config {text!r}: {r.stderr!r} lacks {want!r}")
        r = mamori("serve", "-c", bad)
        check(r.returncode == 2 and bad + want in r.stderr, f"serve {text!r}: {r.returncode} {r.stderr!r}")
    r = mamori("check-config", "--defaults")
    check(r.returncode == 0 and "syslog_udp" in r.stdout and "listen" in r.stdout, r.stdout)


def test_port_in_use_fails_startup():
    m = Mamori()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", m.json_port))
    blocker.listen(1)
    try:
        m.log = open(m.log_path, "ab")
        r = subprocess.run([BIN, "serve", "-c", m.config], capture_output=True, text=True, timeout=30)
        check(r.returncode == 1, f"status {r.returncode}: {r.stderr}")
        check(str(m.json_port) in r.stderr, f"names the address: {r.stderr}")
    finally:
        blocker.close()
        m.log.close()
        m.cleanup()


def test_api_auth_and_client():
    m = Mamori()
    try:
        m.start()
        status, body = m.get("/api/v1/health", auth=False)
        check(status == 200 and json.loads(body)["status"] == "ok", f"health {status}")
        status, _ = m.get("/api/v1/events", auth=False)
        check(status == 401, f"no token: {status}")
        status, _ = m.get("/api/v1/events", token="wrong")
        check(status == 401, f"wrong token: {status}")
        status, _ = m.get("/metrics", auth=False)
        check(status == 401, f"metrics without token: {status}")
        status, body = m.get("/", auth=False)
        check(status == 200 and b"<html" in body.lower(), "console page")
        s = socket.create_connection(("127.0.0.1", m.syslog_port))
        s.sendall(b"<13>1 2026-11-25T10:00:00Z web9 clientapp - - - clienttoken hello\n")
        s.close()
        m.wait_total(1, q="clienttoken")
        url = f"http://127.0.0.1:{m.api_port}"
        r = mamori("events", "search", "--url", url, "--token", TOKEN, "clienttoken")
        check(r.returncode == 0 and "clienttoken hello" in r.stdout and "web9" in r.stdout, r.stdout + r.stderr)
        env = dict(os.environ, MAMORI_API_TOKEN=TOKEN)
        r = mamori("events", "search", "--url", url, "--json", "host.name=web9", env=env)
        check(r.returncode == 0, r.stderr)
        ans = json.loads(r.stdout)
        check(ans["total"] == 1 and ans["events"][0]["host.name"] == "web9", r.stdout)
        r = mamori("events", "search", "--url", url, "--token", "wrong", "x")
        check(r.returncode != 0 and "401" in (r.stderr + r.stdout), f"client 401: {r.stderr}")
    finally:
        m.cleanup()


def test_generated_token():
    m = Mamori()
    text = open(m.config).read().replace(f"  tokens: [{TOKEN}]\n", "")
    open(m.config, "w").write(text)
    try:
        m.start()
        tok_file = os.path.join(m.data, "api-token")
        check(os.path.exists(tok_file), "token file generated")
        check(oct(os.stat(tok_file).st_mode & 0o777) == "0o600", "token file is private")
        tok = open(tok_file).read().strip()
        check(tok_file in m.read_log(), "the log says where the token is")
        status, _ = m.get("/api/v1/events", token=tok)
        check(status == 200, f"generated token works: {status}")
        status, _ = m.get("/api/v1/events", token=TOKEN)
        check(status == 401, "configured token removed")
    finally:
        m.cleanup()


def test_env_token():
    m = Mamori(env={"MAMORI_API_TOKEN": "env-token-abcdefghijklmnop"})
    try:
        m.start()
        status, _ = m.get("/api/v1/events", token="env-token-abcdefghijklmnop")
        check(status == 200, f"MAMORI_API_TOKEN: {status}")
    finally:
        m.cleanup()


def test_sighup_reload():
    import signal
    import time
    m = Mamori()
    try:
        m.start()
        status, _ = m.get("/api/v1/events")
        check(status == 200, f"old token before reload: {status}")
        new = "rotated-token-0123456789abcdef"
        text = open(m.config).read().replace(f"tokens: [{TOKEN}]", f"tokens: [{new}]").replace(
            "log_level: info", "log_level: debug").replace("ingest:\n", "ingest:\n  max_line: 32k\n", 1)
        open(m.config, "w").write(text)
        m.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "event=reloaded" not in m.read_log():
            time.sleep(0.05)
        check("event=reloaded" in m.read_log(), "reload logged")
        check("event=reload_needs_restart settings=ingest.max_line\n" in m.read_log(),
              "a setting that needs a restart is named: " + m.read_log()[-800:])
        status, _ = m.get("/api/v1/events")
        check(status == 401, f"old token after reload: {status}")
        status, _ = m.get("/api/v1/events", token=new)
        check(status == 200, f"new token after reload: {status}")
        # A broken file on reload changes nothing and the process stays up.
        open(m.config, "a").write("api:\n  bogus: [\n")
        m.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "event=reload_failed" not in m.read_log():
            time.sleep(0.05)
        check("event=reload_failed" in m.read_log(), "failed reload logged")
        status, _ = m.get("/api/v1/events", token=new)
        check(status == 200 and m.proc.poll() is None, f"still serving after a bad reload: {status}")
        check(m.stop() == 0, "clean stop")
    finally:
        m.cleanup()


if __name__ == "__main__":
    run([test_help_everywhere, test_mail_check, test_check_config, test_port_in_use_fails_startup,
         test_api_auth_and_client, test_generated_token, test_env_token, test_sighup_reload])
