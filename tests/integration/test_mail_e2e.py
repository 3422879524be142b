#!/usr/bin/env python3
"""The mail gateway end to end, against real peers on loopback:

- a private Postfix with smtpd_milters pointing at `mamori serve`'s milter
  and a second smtpd (no milter) where released mail is re-injected;
- a private Unbound serving only the test domains' SPF, DKIM and DMARC
  records (and one zone forwarded to a dead server, for a DNS failure);
- a private clamd whose only signature is the hash of a file the test makes.

Messages go in with swaks. Asserted: a spoofed sender of a p=reject domain
is refused with 5.7.1; a DKIM-signed, SPF-aligned message is delivered with
our Authentication-Results (spf, dkim, dmarc pass) on top and a forged one
carrying our authserv-id removed; p=quarantine lands in mamori's
quarantine, is listed by the API and, released, reaches the mailbox; a DNS
failure on the DMARC lookup is a 4.x.x, never a pass or a reject; malware
(clamd) and an executable attachment are refused; a link to a domain of an
intel feed is held; several From addresses are refused; every decision is
an event in the store.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mail_peers import Clamd, Unbound, dkim_sign, gen_rsa_key  # noqa: E402
from mamori_test import TOKEN, Mamori, check, free_port, run  # noqa: E402
from peers import Postfix, need, wait_for  # noqa: E402

AUTHSERV = "mx.test.local"
MALWARE = b"MAMORI-TEST-MALWARE-" + b"X" * 64


def swaks(port, sender, to, data, timeout=60):
    """Sends data (a whole message) and returns (exit code, transcript)."""
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", sender, "--to", to,
                        "--helo", "mail.sender.example", "--data", "-", "--timeout", "50"],
                       input=data, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def message(frm, to, subject, body="hello\n", extra=""):
    return (f"From: {frm}\nTo: {to}\nSubject: {subject}\nDate: Thu, 26 Nov 2026 10:00:00 +0000\n"
            f"Message-ID: <{subject.replace(' ', '-')}-{time.time_ns()}@sender.example>\n"
            f"{extra}\n{body}")


def with_attachment(frm, to, subject, name, data):
    b64 = base64.encodebytes(data).decode()
    return (f"From: {frm}\nTo: {to}\nSubject: {subject}\nMIME-Version: 1.0\n"
            f"Message-ID: <{time.time_ns()}@sender.example>\n"
            "Content-Type: multipart/mixed; boundary=BOUND\n\n"
            "--BOUND\nContent-Type: text/plain\n\nsee attached\n"
            f"--BOUND\nContent-Type: application/octet-stream; name={name}\n"
            f"Content-Disposition: attachment; filename={name}\n"
            f"Content-Transfer-Encoding: base64\n\n{b64}--BOUND--\n")


def api(m, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{m.api_port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def test_mail_gateway():
    need("postfix", "swaks", "unbound", "clamd", "openssl")
    root = tempfile.mkdtemp(prefix="mamori-mail-")
    os.chmod(root, 0o755)  # Postfix daemons run as postfix
    for d in ("pf", "dns", "clamd", "m"):
        os.makedirs(os.path.join(root, d))
    key = os.path.join(root, "dkim.pem")
    pub = gen_rsa_key(key)
    records = [
        ("good.example", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.good.example", "TXT", "v=DMARC1; p=reject"),
        ("sel._domainkey.good.example", "TXT", "v=DKIM1; k=rsa; p=" + pub),
        ("bank.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.bank.example", "TXT", "v=DMARC1; p=reject"),
        ("shop.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.shop.example", "TXT", "v=DMARC1; p=quarantine"),
        ("plain.example", "A", "192.0.2.9"),
        ("broken.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
    ]
    dns = Unbound(os.path.join(root, "dns"), records,
                  extra='    local-zone: "_dmarc.broken.example." transparent\n'
                        'forward-zone:\n    name: "_dmarc.broken.example."\n'
                        '    forward-addr: 127.0.0.1@9\n')
    clam = Clamd(os.path.join(root, "clamd"), {"Mamori.Test.Malware": MALWARE})
    pf = Postfix(os.path.join(root, "pf"))
    m = None
    try:
        mport = free_port()
        pf.start(milter_port=mport, reinject=True)
        feed = os.path.join(root, "bad-domains.txt")
        with open(feed, "w") as f:
            f.write("phish.example\n")
        m = Mamori(extra_config=f"""intel:
  feeds:
    - name: local-phish
      kind: plain
      url: {feed}
      type: domain
mail:
  milter: 127.0.0.1:{mport}
  authserv_id: {AUTHSERV}
  dns: 127.0.0.1@{dns.port}
  dns_timeout: 2s
  clamd: {clam.socket}
  release_to: 127.0.0.1:{pf.reinject_port}
  local_domains: [test.local]
""")
        m.start()

        # 1. A spoofed sender of a p=reject domain: refused with 5.7.1.
        rc, out = swaks(pf.port, "ceo@bank.example", "root@test.local",
                        message("CEO <ceo@bank.example>", "root@test.local", "wire money"))
        check(rc != 0 and "5.7.1" in out and "DMARC" in out, f"spoof not rejected: {out[-800:]}")

        # 2. A DKIM-signed, SPF-aligned message with a forged
        #    Authentication-Results of ours: delivered, forged one gone.
        signed = dkim_sign(message("Alice <alice@good.example>", "root@test.local", "signed one",
                                   extra=f"Authentication-Results: {AUTHSERV}; dmarc=pass\n"),
                           key, "good.example", "sel")
        rc, out = swaks(pf.port, "alice@good.example", "root@test.local", signed)
        check(rc == 0, f"good mail not accepted: {out[-800:]}")
        msgs = pf.wait_messages("root", 1)
        got = msgs[-1]
        ars = got.get_all("Authentication-Results") or []
        check(len(ars) == 1, f"expected only our Authentication-Results, got {ars}")
        ar = " ".join(str(ars[0]).split())
        for want in ("spf=pass", "dkim=pass", "dmarc=pass", "header.d=good.example",
                     "header.from=good.example"):
            check(want in ar, f"{want} missing in {ar}")
        check(ar.startswith(AUTHSERV), f"authserv-id: {ar}")

        # 3. p=quarantine: held by mamori, listed, released, delivered.
        rc, out = swaks(pf.port, "sales@shop.example", "root@test.local",
                        message("Sales <sales@shop.example>", "root@test.local", "held one"))
        check(rc == 0, f"quarantined mail should look accepted to the sender: {out[-600:]}")
        held = wait_for("the message in the quarantine",
                        lambda: [q for q in api(m, "GET", "/api/v1/mail/quarantine")["messages"]
                                 if "held one" in (q.get("subject") or "")])
        qid = held[0]["id"]
        detail = api(m, "GET", f"/api/v1/mail/quarantine/{qid}")
        check("dmarc" in json.dumps(detail.get("reasons", [])).lower(), f"reasons: {detail}")
        time.sleep(1)
        check(len(pf.wait_messages("root", 1)) == 1, "a held message was delivered")
        api(m, "POST", f"/api/v1/mail/quarantine/{qid}/release", {})
        msgs = pf.wait_messages("root", 2)
        check(any("held one" in str(x["Subject"]) for x in msgs), "released mail not delivered")

        # 4. DNS failure on the DMARC lookup: a temporary 4.x.x.
        rc, out = swaks(pf.port, "x@broken.example", "root@test.local",
                        message("X <x@broken.example>", "root@test.local", "dns fails"))
        check(rc != 0 and ("451" in out or "4.7.1" in out or " 4" in out),
              f"DNS failure must tempfail: {out[-800:]}")
        check("5.7.1" not in out, f"a DNS failure was answered with a reject: {out[-800:]}")

        # 5. Malware (clamd) and an executable attachment: refused.
        rc, out = swaks(pf.port, "bob@plain.example", "root@test.local",
                        with_attachment("bob@plain.example", "root@test.local", "report",
                                        "report.txt", MALWARE))
        check(rc != 0 and "Malware" in out, f"malware not rejected: {out[-800:]}")
        pe = b"MZ" + b"\x90" * 58 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 400
        rc, out = swaks(pf.port, "bob@plain.example", "root@test.local",
                        with_attachment("bob@plain.example", "root@test.local", "invoice",
                                        "invoice.pdf", pe))
        check(rc != 0 and "5.7.1" in out, f"executable not rejected: {out[-800:]}")

        # 6. A link to a domain of the indicator store: held in the quarantine.
        wait_for("the feed to load", lambda: "indicators_loaded" in m.read_log(), timeout=30)
        rc, out = swaks(pf.port, "bob@plain.example", "root@test.local",
                        message("bob@plain.example", "root@test.local", "please log in",
                                body="Log in at https://login.phish.example/account now.\n"))
        check(rc == 0, f"a quarantined message looks accepted to the sender: {out[-600:]}")
        held = wait_for("the phishing message in the quarantine",
                        lambda: [q for q in api(m, "GET", "/api/v1/mail/quarantine")["messages"]
                                 if "please log in" in (q.get("subject") or "")])
        check("phish.example" in json.dumps(held[0].get("reasons")), f"reasons: {held[0]}")

        # 7. Several From addresses: refused by policy.
        rc, out = swaks(pf.port, "bob@plain.example", "root@test.local",
                        message("a@plain.example, b@good.example", "root@test.local", "two from"))
        check(rc != 0 and "From" in out, f"multiple From not rejected: {out[-800:]}")

        # Every decision is an event in the store.
        ans = m.wait_total(8, timeout=30, **{"event.module": "mail", "limit": "50"})
        text = json.dumps(ans)
        for want in ("reject", "quarantine", "tempfail", "accept"):
            check(f'"{want}"' in text, f"no {want} event: {text[:2000]}")

        # The events feed the detection core: the bundled mail rules alert.
        for rule in ("a6142a6e-88a5-4e98-b790-7fa0d51c5643",   # malware
                     "845c7e0a-fbbc-4e41-82d2-580a53e155ef",   # spoofed sender
                     "10306e5b-9762-4690-b7b2-5b2a6f6d4296"):  # phishing link
            wait_for(f"an alert of rule {rule}",
                     lambda: api(m, "GET", f"/api/v1/alerts?rule={rule}")["total"] >= 1, timeout=30)
    finally:
        if m:
            m.stop()
            m.cleanup()
        pf.stop()
        clam.stop()
        dns.stop()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run([test_mail_gateway]))
