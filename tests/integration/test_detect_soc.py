#!/usr/bin/env python3
"""The detection and response chain end to end, in a running `mamori serve`:
events sent over syslog (TCP) and JSON lines (Suricata EVE over TCP) meet a
Sigma rule from a rules directory and a STIX 2.1 feed from the public
conformance data; alerts are stored and grouped into incidents (API); the
incident opened and its escalation reach a webhook listener on loopback,
and the escalation (routed by severity) reaches a mailbox through a real
Postfix on loopback; resolving the incident through the API notifies
again; events that match nothing raise nothing; after a restart the
incidents are still there.

Needs the conformance data (MAMORI_CONFORMANCE_DIR, default ../shared
beside the repository): the STIX bundle is read from there, and the test
fails, loudly, when it is absent.
"""
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import SRC, TOKEN, Mamori, TestFailure, check, run  # noqa: E402
from peers import Hooks, Postfix  # noqa: E402

CONF = os.environ.get("MAMORI_CONFORMANCE_DIR", os.path.join(os.path.dirname(SRC), "shared"))
STIX = os.path.join(CONF, "intel", "stix2", "examples", "threat-reports", "poisonivy.json")

RULE_ID = "5b0f6c1e-3f4d-4b8e-9a51-2f0c7d9e8a10"
RULE = f"""title: SSH password failure (integration test)
id: {RULE_ID}
status: test
description: A failed password for a user on the SSH daemon.
tags:
    - attack.credential-access
    - attack.t1110.001
logsource:
    product: linux
    service: sshd
detection:
    keywords:
        - 'Failed password for'
    condition: keywords
level: medium
"""

# Poison Ivy C2 infrastructure, in the STIX bundle.
BAD_IP = "219.76.208.163"
BAD_DOMAIN = "www.webserver.dynssl.com"


def api(m, method, path, body=None):
    url = f"http://127.0.0.1:{m.api_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what, fn, timeout=60, m=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise TestFailure(f"{what}: not seen within {timeout}s (last: {last!r})\n" + (m.read_log() if m else ""))


def send_tcp(port, lines):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall("".join(line + "\n" for line in lines).encode())


def syslog_line(i, ip, user="root"):
    return (f"<38>Nov 26 10:00:{i % 60:02d} web1 sshd[{1000 + i}]: Failed password for {user} "
            f"from {ip} port {40000 + i} ssh2")


def eve(ts, event_type, **kw):
    ev = {"timestamp": ts, "event_type": event_type, "src_ip": "10.1.1.5", "src_port": 51000,
          "dest_port": 443, "proto": "TCP"}
    ev.update(kw)
    return json.dumps(ev)


def incidents(m, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    st, body = api(m, "GET", "/api/v1/incidents" + ("?" + q if q else ""))
    check(st == 200, f"GET incidents: {st} {body!r}")
    return body


def alerts(m, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    st, body = api(m, "GET", "/api/v1/alerts" + ("?" + q if q else ""))
    check(st == 200, f"GET alerts: {st} {body!r}")
    return body


def test_detect_soc_notify():
    if not os.path.isfile(STIX):
        raise TestFailure(f"conformance data missing: {STIX} (set MAMORI_CONFORMANCE_DIR)")
    root = None
    pf = hooks = m = None
    try:
        import tempfile
        root = tempfile.mkdtemp(prefix="mamori-soc-")
        os.chmod(root, 0o755)  # Postfix's daemons run as postfix and must traverse it
        pf = Postfix(os.path.join(root, "postfix"))
        pf.start()
        hooks = Hooks()
        rules = os.path.join(root, "rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "ssh_fail.yml"), "w") as f:
            f.write(RULE)
        extra = f"""detect:
  rules: [{rules}]
  bundled_rules: false
  suppress: 0
soc:
  window: 1h
intel:
  feeds:
    - name: poisonivy
      kind: stix
      url: {STIX}
      refresh: 1h
notify:
  channels:
    - name: soc-mail
      type: smtp
      url: smtp://127.0.0.1:{pf.port}
      starttls: "off"
      from: mamori@test.local
      to: [root@test.local]
      min_severity: high
    - name: hook
      type: webhook
      url: http://127.0.0.1:{hooks.port}/hook
      min_severity: informational
"""
        os.makedirs(os.path.join(root, "m"))
        m = Mamori(extra_config=extra, workdir=os.path.join(root, "m"))
        m.start()
        wait_for("indicators loaded", lambda: "event=indicators_loaded" in m.read_log(), m=m)

        # Negative first: nothing here matches the rule or the feed.
        send_tcp(m.syslog_port, ["<38>Nov 26 09:59:00 web1 sshd[999]: Accepted publickey for deploy "
                                 "from 10.9.9.9 port 50000 ssh2"])
        send_tcp(m.json_port, [eve("2026-11-26T09:59:01.000000+0000", "flow", dest_ip="198.51.100.7"),
                               eve("2026-11-26T09:59:02.000000+0000", "dns", dest_ip="10.1.1.1",
                                   dest_port=53, proto="UDP",
                                   dns={"type": "query", "rrname": "www.example.org", "rrtype": "A"})])
        m.wait_total(3)

        # Twelve failures from one address: one incident that escalates
        # (medium, then high from the tenth alert).
        send_tcp(m.syslog_port, [syslog_line(i, "203.0.113.50") for i in range(12)])
        got = wait_for("12 rule alerts", lambda: (lambda a: a if a["total"] >= 12 else None)(
            alerts(m, rule=RULE_ID)), m=m)
        check(got["total"] == 12, f"rule alerts: {got['total']}, expected 12")
        a0 = got["alerts"][0]
        check(a0["level"] == "medium" and "attack.t1110.001" in a0["tags"], f"alert: {a0}")
        inc = wait_for("the incident reaches 12 alerts", lambda: (lambda b: b if b["total"] == 1 and
                       b["incidents"][0]["count"] == 12 else None)(incidents(m, rule=RULE_ID)), m=m)
        it = inc["incidents"][0]
        check(it["severity"] == "high", f"escalated severity: {it}")
        check(it["status"] == "new", f"status: {it}")

        # Indicators: the C2 address in a flow, the C2 domain in a DNS query.
        send_tcp(m.json_port, [eve("2026-11-26T10:01:00.000000+0000", "flow", dest_ip=BAD_IP),
                               eve("2026-11-26T10:01:01.000000+0000", "dns", dest_ip="10.1.1.1",
                                   dest_port=53, proto="UDP",
                                   dns={"type": "query", "rrname": BAD_DOMAIN, "rrtype": "A"})])
        ip_al = wait_for("intel ip alert", lambda: (lambda a: a if a["total"] >= 1 else None)(
            alerts(m, rule="mamori-intel-ip")), m=m)
        check(ip_al["total"] == 1, f"ip alerts: {ip_al}")
        ind = ip_al["alerts"][0].get("indicator") or {}
        check(ind.get("value", "").startswith(BAD_IP) and ind.get("feed") == "poisonivy",
              f"indicator on the alert: {ip_al['alerts'][0]}")
        dom = wait_for("intel domain alert", lambda: (lambda a: a if a["total"] >= 1 else None)(
            alerts(m, rule="mamori-intel-domain")), m=m)
        check(dom["total"] == 1 and dom["alerts"][0]["indicator"]["value"] == BAD_DOMAIN,
              f"domain alerts: {dom}")
        # Nothing for the harmless events.
        all_al = alerts(m, limit=100)
        check(all_al["total"] == 14, f"alerts in all: {all_al['total']}, expected 12 + 2")

        # Webhook: the SSH incident opened and escalated, two intel incidents opened.
        def hook_titles():
            out = []
            for _, _, body in hooks.received:
                try:
                    out.append(json.loads(body)["title"])
                except (ValueError, KeyError):
                    out.append(body[:200])
            return out
        wait_for("webhooks", lambda: len(hooks.received) >= 4 or None, m=m)
        titles = hook_titles()
        check(any("opened" in t and "SSH password failure" in t for t in titles), f"webhooks: {titles}")
        check(any("escalated" in t and "SSH password failure" in t for t in titles), f"webhooks: {titles}")
        check(any("opened" in t and "threat-intelligence" in t for t in titles), f"webhooks: {titles}")

        # Mail: only high and above: the escalation and the intel IP hit
        # (the feed gives no confidence; STIX default decides the level).
        msgs = pf.wait_messages("root", 1)
        subjects = [str(x["Subject"]) for x in msgs]
        check(any("escalated" in s and "SSH password failure" in s for s in subjects), f"mail: {subjects}")
        check(not any("opened" in s and "SSH password failure" in s for s in subjects),
              f"medium incident mailed despite min_severity high: {subjects}")

        # Lifecycle: acknowledge, then resolve: the resolution is notified.
        iid = it["id"]
        st, body = api(m, "PATCH", f"/api/v1/incidents/{iid}",
                       {"status": "acknowledged", "assignee": "alice", "actor": "alice"})
        check(st == 200 and body["status"] == "acknowledged", f"ack: {st} {body}")
        st, body = api(m, "PATCH", f"/api/v1/incidents/{iid}", {"status": "resolved", "actor": "alice"})
        check(st == 200 and body["status"] == "resolved", f"resolve: {st} {body}")
        wait_for("resolved webhook", lambda: any("resolved" in t for t in hook_titles()) or None, m=m)

        # A new failure after resolution opens a new incident, not the old one.
        send_tcp(m.syslog_port, [syslog_line(99, "203.0.113.50")])
        inc2 = wait_for("second incident", lambda: (lambda b: b if b["total"] == 2 else None)(
            incidents(m, rule=RULE_ID)), m=m)
        counts = sorted(x["count"] for x in inc2["incidents"])
        check(counts == [1, 12], f"incident counts: {counts}")

        # Every event parsed went through detection once (workers hand
        # each run of a batch to it right after parsing it), none dropped.
        parsed = wait_for("18 events stored", lambda: (lambda v: v if v >= 18 else None)(
            m.metric("mamori_events_out_total")), m=m)
        check(m.metric("mamori_events_in_total") == parsed,
              f"parsed {m.metric('mamori_events_in_total')}, stored {parsed}")
        check(m.metric("mamori_detect_events_total") == parsed,
              f"detected {m.metric('mamori_detect_events_total')}, parsed {parsed}")
        check(m.metric("mamori_input_drops_total") == 0,
              f"drops: {m.metric('mamori_input_drops_total')}")

        # Restart: incidents and alerts are kept in soc.db.
        check(m.stop() == 0, "serve did not stop cleanly")
        m.start()
        check(incidents(m, rule=RULE_ID)["total"] == 2, "incidents lost over a restart")
        check(alerts(m, limit=100)["total"] == 15, "alerts lost over a restart")
        check(m.stop() == 0, "serve did not stop cleanly")
    finally:
        if m:
            m.cleanup()
        if hooks:
            hooks.stop()
        if pf:
            pf.stop()
        if root:
            import shutil
            shutil.rmtree(root, ignore_errors=True)


def test_suppression():
    """detect.suppress: a storm of one rule from one address is one alert
    per window; the next one carries the count, and the incident counts
    every detection."""
    import tempfile
    import shutil
    root = tempfile.mkdtemp(prefix="mamori-sup-")
    m = None
    try:
        rules = os.path.join(root, "rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "ssh_fail.yml"), "w") as f:
            f.write(RULE)
        os.makedirs(os.path.join(root, "m"))
        m = Mamori(extra_config=f"""detect:
  rules: [{rules}]
  bundled_rules: false
  suppress: 2s
""", workdir=os.path.join(root, "m"))
        m.start()
        send_tcp(m.syslog_port, [syslog_line(i, "203.0.113.60") for i in range(6)])
        # Another address is another key: not suppressed by the first.
        send_tcp(m.syslog_port, [syslog_line(50, "203.0.113.61")])
        m.wait_total(7)
        got = wait_for("first alerts", lambda: (lambda a: a if a["total"] >= 2 else None)(
            alerts(m, rule=RULE_ID)), m=m)
        time.sleep(0.5)
        got = alerts(m, rule=RULE_ID)
        check(got["total"] == 2, f"alerts during the storm: {got['total']}, expected 2 (one per address)")
        # After the window, the next failure is emitted with the 5 counted.
        time.sleep(2.5)
        send_tcp(m.syslog_port, [syslog_line(7, "203.0.113.60")])
        got = wait_for("the alert after the window", lambda: (lambda a: a if a["total"] >= 3 else None)(
            alerts(m, rule=RULE_ID)), m=m)
        newest = max(got["alerts"], key=lambda a: a["id"])
        check(newest["suppressed"] == 5 and newest["entity"].get("source.ip") == "203.0.113.60",
              f"suppressed count on the alert: {newest}")
        inc = incidents(m, rule=RULE_ID)
        counts = sorted(i["count"] for i in inc["incidents"])
        check(counts == [1, 7], f"incident counts with suppressed alerts: {counts}")
        st, body = m.get("/metrics")
        check(st == 200 and b"mamori_detect_alerts_suppressed_total" in body, "suppression metric missing")
        check(m.stop() == 0, "serve did not stop cleanly")
    finally:
        if m:
            m.cleanup()
        shutil.rmtree(root, ignore_errors=True)

ACCEPT_ID = "0d6f3a52-8e1b-4c07-a3f5-6b9e2d41c8a7"
ACCEPT_RULE = f"""title: SSH key login (integration test)
id: {ACCEPT_ID}
status: test
description: A public key login, on any Linux service's log.
logsource:
    product: linux
detection:
    keywords:
        - 'Accepted publickey for'
    condition: keywords
level: low
"""


def metric_value(m, name, labels):
    st, body = m.get("/metrics")
    check(st == 200, f"GET /metrics: {st}")
    for line in body.decode().splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return None


def test_merged_databases():
    """Rules of two buckets an sshd line meets (`linux` and `linux`/`sshd`)
    on one field (the keywords): serve merges the two databases on a
    thread of its own while it scans each meanwhile, says so in
    mamori_detect_merged_databases, and raises the same alerts before and
    after."""
    import shutil
    import tempfile
    root = tempfile.mkdtemp(prefix="mamori-merge-")
    m = None
    try:
        os.chmod(root, 0o755)
        rules = os.path.join(root, "rules")
        os.makedirs(rules)
        for name, text in (("ssh_fail.yml", RULE), ("ssh_key.yml", ACCEPT_RULE)):
            with open(os.path.join(rules, name), "w") as f:
                f.write(text)
        extra = f"""detect:
  rules: [{rules}]
  bundled_rules: false
  suppress: 0
"""
        os.makedirs(os.path.join(root, "m"))
        m = Mamori(extra_config=extra, workdir=os.path.join(root, "m"))
        m.start()

        def accepted(i):
            return (f"<38>Nov 26 10:00:{i:02d} web1 sshd[{2000 + i}]: Accepted publickey for deploy "
                    f"from 192.0.2.{i + 1} port 50000 ssh2")

        def both(n):
            a, f = alerts(m, rule=ACCEPT_ID), alerts(m, rule=RULE_ID)
            return (a["total"], f["total"]) if a["total"] >= n and f["total"] >= n else None

        send_tcp(m.syslog_port, [accepted(0), syslog_line(0, "203.0.113.70")])
        wait_for("an alert of each rule", lambda: both(1), m=m)

        # The metric is published with each batch: a harmless line each poll.
        def ready():
            send_tcp(m.syslog_port, ["<38>Nov 26 10:01:00 web1 cron[5]: (root) CMD (true)"])
            return metric_value(m, "mamori_detect_merged_databases", 'state="ready"')
        wait_for("a merged database", lambda: (ready() or 0) >= 1, m=m)
        check(metric_value(m, "mamori_detect_merged_databases", 'state="failed"') == 0,
              "a merge failed")

        send_tcp(m.syslog_port, [accepted(1), syslog_line(1, "203.0.113.71"),
                                 accepted(2), syslog_line(2, "203.0.113.72")])
        got = wait_for("three alerts of each rule", lambda: both(3), m=m)
        time.sleep(0.5)
        got = both(3)
        check(got == (3, 3), f"alerts (key logins, password failures): {got}, expected (3, 3)")
        check(m.stop() == 0, "serve did not stop cleanly")
    finally:
        if m:
            m.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run([test_detect_soc_notify, test_suppression, test_merged_databases])
