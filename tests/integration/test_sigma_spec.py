#!/usr/bin/env python3
"""The Sigma specification's own example files (sigma-specification
tests/schema: two rules, two filters, eight correlations) load in mamori and
behave as the specification says.

Why: the examples are the specification's smallest statement of each
feature. Each is loaded from the conformance copy as written; the rules the
correlations and filters refer to are not in that directory, so this test
writes them (and every event) itself, loads them beside the example, and
runs `mamori rules test` over events that must and must not trigger it.

What the specification leaves to the tool, and what mamori does:
- A correlation whose `rules:` names a rule that is not loaded cannot run:
  `rules check` names the missing rules and counts the correlation as not
  loaded (exit status 1); given the rules, it loads.
- `generate` defaults to false: the rules a correlation refers to (and a
  correlation another one refers to) do not alert on their own.
- Filters: the filter's condition is added to each rule it names whose
  logsource the filter's contains, as pySigma (the reference implementation)
  and SigmaHQ's filter documentation apply it, so `condition: selection`
  keeps only what the selection matches and an exclusion is written
  `condition: not selection`.
- value_percentile: the p-th percentile (condition.percentile, 95 when not
  given, as pySigma) of the numeric values of condition.field within the
  timespan, compared with the condition; values that are not numbers (the
  example's Image paths) are not counted.
- taxonomy: ecs means the field names are the event's own (ECS) names, read
  without mapping; the taxonomy's generic `category: network` with
  `service: dns` covers DNS events.

The corpus comes from $MAMORI_CONFORMANCE_DIR (default
$MAMORI_SOURCE_DIR/../shared); the test fails when it is absent.
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, SRC, TestFailure, check, run  # noqa: E402

CORPUS = os.environ.get("MAMORI_CONFORMANCE_DIR", os.path.join(SRC, "..", "shared"))
SPEC = os.path.join(CORPUS, "sigma", "spec", "tests", "schema")
EXAMPLES = [
    "rules/rule_1.yml", "rules/rule_ecs.yml",
    "filter/filter_1.yml", "filter/filter_ecs.yml",
    "correlation/event_count.yml", "correlation/event_count_ecs.yml",
    "correlation/value_count.yml", "correlation/temporal.yml",
    "correlation/temporal_ordered.yml", "correlation/value_sum.yml",
    "correlation/value_avg.yml", "correlation/value_percentile.yml",
]
T0 = datetime.datetime(2026, 3, 2, 8, 0, 0, tzinfo=datetime.timezone.utc)
TMP = None


def spec(rel):
    path = os.path.join(SPEC, rel)
    if not os.path.isfile(path):
        raise TestFailure(f"specification example {path} not found "
                          "(set MAMORI_CONFORMANCE_DIR to the directory holding sigma/spec/)")
    return path


def ts(seconds):
    return (T0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def win(t, eid, channel, computer, data, provider="Microsoft-Windows-Security-Auditing"):
    """A Windows event as EVTX-to-JSON converters render it."""
    return json.dumps({"Event": {
        "System": {"Provider": {"#attributes": {"Name": provider}}, "EventID": eid,
                   "TimeCreated": {"#attributes": {"SystemTime": ts(t)}},
                   "Channel": channel, "Computer": computer},
        "EventData": data}})


def sysmon_proc(t, computer, user, image, cmd):
    return win(t, 1, "Microsoft-Windows-Sysmon/Operational", computer,
               {"Image": image, "CommandLine": cmd, "User": user},
               provider="Microsoft-Windows-Sysmon")


def flat(t, **fields):
    return json.dumps(dict({"@timestamp": ts(t)}, **fields))


def rules_check(*paths):
    p = subprocess.run([BIN, "rules", "check"] + list(paths), capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def check_loads(*paths):
    rc, out = rules_check(*paths)
    m = re.search(r"(\d+) loaded, (\d+) unsupported, (\d+) errors", out)
    check(rc == 0 and m and m.group(2) == "0" and m.group(3) == "0",
          f"rules check {' '.join(os.path.basename(p) for p in paths)}: exit {rc}\n{out}")


def hits(rule_paths, events):
    """[(record number, rule id, title)] from `mamori rules test`."""
    ev = write("events.jsonl", "\n".join(events) + "\n")
    argv = [BIN, "rules", "test"]
    for r in rule_paths:
        argv += ["--rules", r]
    p = subprocess.run(argv + [ev], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"rules test exited {p.returncode}: {p.stderr}")
    check(" 0 errors" in p.stderr and "(0 unsupported" in p.stderr,
          f"rules did not all load: {p.stderr}")
    out = []
    for line in p.stdout.splitlines():
        m = re.match(r".*:(\d+): (\S+) \S+ (.*)$", line)
        check(m, f"unexpected output line {line!r}")
        out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def expect(got, want, what):
    check(got == want, f"{what}: got {got}, want {want}")


# ---- rules the correlations and filters refer to, written here ----

FAILED_LOGON = """title: Failed logon
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource: {product: windows, service: security}
detection:
  selection:
    EventID: 4625
  condition: selection
level: low
"""

FAILED_LOGON_ECS = """title: Query for a bad domain
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
taxonomy: ecs
logsource: {category: network, service: dns}
detection:
  selection:
    dns.question.name|endswith: '.bad.example'
  condition: selection
"""

RECON = """title: Recon whoami
name: recon_cmd_a
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\whoami.exe'
  condition: selection
---
title: Recon ipconfig
name: recon_cmd_b
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\ipconfig.exe'
  condition: selection
---
title: Recon net user
name: recon_cmd_c
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\net.exe'
    CommandLine|contains: ' user'
  condition: selection
"""

WHOAMI = "C:\\Windows\\System32\\whoami.exe"
IPCONFIG = "C:\\Windows\\System32\\ipconfig.exe"
NET = "C:\\Windows\\System32\\net.exe"


def recon(t, computer, user, which):
    image, cmd = {"a": (WHOAMI, "whoami /all"), "b": (IPCONFIG, "ipconfig /all"),
                  "c": (NET, "net user /domain")}[which]
    return sysmon_proc(t, computer, user, image, cmd)


def test_examples_present():
    for rel in EXAMPLES:
        spec(rel)
    found = sorted(os.path.relpath(os.path.join(d, f), SPEC)
                   for d, _, fs in os.walk(SPEC) for f in fs if f.endswith(".yml"))
    check(found == sorted(EXAMPLES), f"the examples changed: {found}")


def test_check_alone():
    """The directory alone: rules and filters load; each correlation names
    the rules it lacks and does not count as loaded."""
    spec("rules/rule_1.yml")
    rc, out = rules_check(SPEC)
    print(out, end="")
    check(rc == 1, f"rules check exited {rc}, want 1 (correlations without their rules)")
    check("4 loaded, 8 unsupported, 0 errors" in out, "summary: want 4 loaded, 8 unsupported")
    want = {
        "event_count.yml": "refers to rule 5638f7c0-ac70-491d-8465-2a65075e0d86, which is not loaded",
        "event_count_ecs.yml": "refers to rule 5638f7c0-ac70-491d-8465-2a65075e0d86, which is not loaded",
        "value_count.yml": "refers to rule 5638f7c0-ac70-491d-8465-2a65075e0d86, which is not loaded",
        "temporal.yml": "refers to rules recon_cmd_a, recon_cmd_b, recon_cmd_c, which are not loaded",
        "temporal_ordered.yml": "refers to rules recon_cmd_a, recon_cmd_b, recon_cmd_c, "
                                "which are not loaded",
        "value_sum.yml": "refers to rule website_access, which is not loaded",
        "value_avg.yml": "refers to rule rule_a_id, which is not loaded",
        "value_percentile.yml": "refers to rule process_creation, which is not loaded",
    }
    for f, why in want.items():
        check(re.search(rf"correlation/{re.escape(f)}: unsupported: correlation {re.escape(why)}$",
                        out, re.M), f"{f}: no line saying it {why}")
    for f in ["rule_1.yml", "rule_ecs.yml", "filter_1.yml", "filter_ecs.yml"]:
        check(re.search(rf"/{f}: loaded$", out, re.M), f"{f} did not load")
    check(": error:" not in out, "an example is reported as an error")


def test_rule_1():
    r = spec("rules/rule_1.yml")
    check_loads(r)
    got = hits([r], [
        win(0, 1000, "Application", "ws1", {"Data": "x"}, provider="Application Error"),
        win(1, 1002, "Application", "ws1", {"Data": "x"}, provider="Application Hang"),
        # the right provider in another channel is another logsource
        win(2, 1000, "System", "ws1", {"Data": "x"}, provider="Application Error"),
    ])
    expect(got, [(1, "545a5da6-f103-4919-a519-e9aec1026ee4", "A Title")], "rule_1")


def test_rule_ecs():
    r = spec("rules/rule_ecs.yml")
    check_loads(r)
    got = hits([r], [
        json.dumps({"event": {"module": "dns"}, "dns": {"question": {"name": "sigmahq"}}}),
        json.dumps({"event": {"module": "dns"}, "dns": {"question": {"name": "sigmahq.io"}}}),
        json.dumps({"event": {"module": "unbound"}, "dns": {"question": {"name": "SigmaHQ"}}}),
        # a field of that name outside DNS events is another logsource
        json.dumps({"event": {"module": "apache"}, "dns": {"question": {"name": "sigmahq"}}}),
    ])
    expect([h[0] for h in got], [1, 3], "rule_ecs")


def test_filter_1():
    f = spec("filter/filter_1.yml")
    rules = write("filter1_rules.yml", """title: Data compressed with rar.exe
id: 6f3e2987-db24-4c78-a860-b4f4095a7095
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\rar.exe'
  condition: selection
---
title: Login on jump host
id: df0841c0-9846-4e9f-ad8a-7df91571771b
logsource: {product: windows, service: security}
detection:
  selection:
    EventID: 4624
    Computer: jump1
  condition: selection
---
title: Unrelated rar rule
id: 11111111-2222-4333-8444-555555555555
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\\\rar.exe'
  condition: selection
""")
    check_loads(f, rules)
    rar = "C:\\Program Files\\WinRAR\\rar.exe"
    got = hits([rules, f], [
        sysmon_proc(0, "ws1", "adm_alice", rar, "rar a x.rar docs"),
        sysmon_proc(1, "ws1", "bob", rar, "rar a x.rar docs"),
        win(2, 4624, "Security", "jump1", {"User": "bob"}),
    ])
    expect(got, [
        (1, "6f3e2987-db24-4c78-a860-b4f4095a7095", "Data compressed with rar.exe"),
        (1, "11111111-2222-4333-8444-555555555555", "Unrelated rar rule"),
        (2, "11111111-2222-4333-8444-555555555555", "Unrelated rar rule"),
        # the filter's logsource (process_creation) does not hold a security rule
        (3, "df0841c0-9846-4e9f-ad8a-7df91571771b", "Login on jump host"),
    ], "filter_1 (adds User|startswith adm_ to the rar rule only)")


def test_filter_ecs():
    f = spec("filter/filter_ecs.yml")
    rules = write("filterecs_rules.yml", """title: Google query
id: 6f3e2987-db24-4c78-a860-b4f4095a7095
taxonomy: ecs
logsource: {category: network, service: dns}
detection:
  selection:
    dns.question.name|contains: '.google.'
  condition: selection
""")
    check_loads(f, rules)
    got = hits([rules, f], [
        json.dumps({"event": {"module": "dns"}, "dns": {"question": {"name": "www.google.com"}}}),
        json.dumps({"event": {"module": "dns"}, "dns": {"question": {"name": "mail.google.com"}}}),
    ])
    expect([h[0] for h in got], [1], "filter_ecs")


def test_event_count():
    c = spec("correlation/event_count.yml")
    base = write("failed_logon.yml", FAILED_LOGON)
    check_loads(c, base)
    ev = []
    # dc1: 100 failures in 50 minutes: the 100th fires.
    ev += [win(30 * i, 4625, "Security", "dc1", {"User": f"u{i}"}) for i in range(100)]
    # dc2: 100 failures over two hours: never 100 within an hour.
    ev += [win(72 * i, 4625, "Security", "dc2", {"User": "bob"}) for i in range(100)]
    # dc3: 100 successful logons.
    ev += [win(i, 4624, "Security", "dc3", {"User": "bob"}) for i in range(100)]
    # dc4: 99 failures in a minute.
    ev += [win(i / 2, 4625, "Security", "dc4", {"User": "bob"}) for i in range(99)]
    got = hits([base, c], ev)
    expect(got, [(100, "0e95725d-7320-415d-80f7-004da920fc11", "Many failed logins")],
           "event_count (the referenced rule, generate false, is silent)")


def test_event_count_ecs():
    c = spec("correlation/event_count_ecs.yml")
    base = write("bad_query.yml", FAILED_LOGON_ECS)
    check_loads(c, base)

    def q(t, name):
        return json.dumps({"@timestamp": ts(t), "event": {"module": "dns"},
                           "dns": {"question": {"name": name}}})
    ev = [q(i, "c2.bad.example") for i in range(99)]
    ev += [q(100 + i, f"h{i}.bad.example") for i in range(100)]   # 100 names, one each
    ev += [q(200 + i, "www.good.example") for i in range(100)]
    ev.append(q(3000, "c2.bad.example"))                            # the 100th within 1h
    got = hits([base, c], ev)
    expect(got, [(len(ev), "0e95725d-7320-415d-80f7-004da920fc11", "Many failed logins")],
           "event_count_ecs (grouped by dns.question.name)")


def test_value_count():
    c = spec("correlation/value_count.yml")
    base = write("failed_logon.yml", FAILED_LOGON)
    check_loads(c, base)
    ev = []
    # dc1/ws1: 100 distinct users within a day: fires on the 100th.
    ev += [win(60 * i, 4625, "Security", "dc1", {"User": f"user{i}", "WorkstationName": "ws1"})
           for i in range(100)]
    # dc1/ws2: 200 failures by 99 users.
    ev += [win(60 * i, 4625, "Security", "dc1", {"User": f"user{i % 99}", "WorkstationName": "ws2"})
           for i in range(200)]
    # dc2: 100 users, but on 100 workstations.
    ev += [win(i, 4625, "Security", "dc2", {"User": f"user{i}", "WorkstationName": f"ws{i}"})
           for i in range(100)]
    # dc3/ws1: 100 users over more than a day.
    ev += [win(1000 * i, 4625, "Security", "dc3", {"User": f"user{i}", "WorkstationName": "ws1"})
           for i in range(100)]
    got = hits([base, c], ev)
    expect(got, [(100, "0e95725d-7320-415d-80f7-004da920fc12", "Failed login")], "value_count")


def test_temporal():
    c = spec("correlation/temporal.yml")
    base = write("recon.yml", RECON)
    check_loads(c, base)
    ev = [
        # ws1/alice: c, a, b within three minutes: fires on the third.
        recon(0, "ws1", "CORP\\alice", "c"), recon(60, "ws1", "CORP\\alice", "a"),
        recon(180, "ws1", "CORP\\alice", "b"),
        # ws2/bob: a and b, then c six minutes later.
        recon(0, "ws2", "CORP\\bob", "a"), recon(30, "ws2", "CORP\\bob", "b"),
        recon(400, "ws2", "CORP\\bob", "c"),
        # ws3: a and b by alice, c by carol.
        recon(0, "ws3", "CORP\\alice", "a"), recon(10, "ws3", "CORP\\alice", "b"),
        recon(20, "ws3", "CORP\\carol", "c"),
        # ws4/dave: one of each, twice the same rule is not two rules.
        recon(0, "ws4", "CORP\\dave", "a"), recon(10, "ws4", "CORP\\dave", "a"),
        recon(20, "ws4", "CORP\\dave", "b"),
    ]
    got = hits([base, c], ev)
    expect(got, [(3, "temporal.yml", "Recon")], "temporal (any order, 5m, same host and user)")


def test_temporal_ordered():
    c = spec("correlation/temporal_ordered.yml")
    base = write("recon.yml", RECON)
    check_loads(c, base)
    ev = [
        # ws1/alice: a, b, c: fires on c.
        recon(0, "ws1", "CORP\\alice", "a"), recon(60, "ws1", "CORP\\alice", "b"),
        recon(120, "ws1", "CORP\\alice", "c"),
        # ws2/bob: c, b, a.
        recon(0, "ws2", "CORP\\bob", "c"), recon(60, "ws2", "CORP\\bob", "b"),
        recon(120, "ws2", "CORP\\bob", "a"),
        # ws3/carol: a, c, b.
        recon(0, "ws3", "CORP\\carol", "a"), recon(60, "ws3", "CORP\\carol", "c"),
        recon(120, "ws3", "CORP\\carol", "b"),
        # ws4/dave: a, b, then c after the five minutes.
        recon(0, "ws4", "CORP\\dave", "a"), recon(60, "ws4", "CORP\\dave", "b"),
        recon(360, "ws4", "CORP\\dave", "c"),
    ]
    got = hits([base, c], ev)
    expect(got, [(3, "temporal_ordered.yml", "Recon ordered")], "temporal_ordered")


def test_value_sum():
    c = spec("correlation/value_sum.yml")
    base = write("website_access.yml", """title: Website access
name: website_access
detection:
  selection:
    url|startswith: 'https://'
  condition: selection
""")
    check_loads(c, base)
    u = "https://upload.example/x"
    ev = [
        # 10.0.0.1/bob: 1.2 MB within the hour: fires on the third.
        flat(0, url=u, SourceIP="10.0.0.1", User="bob", bytes_sent=400000),
        flat(600, url=u, SourceIP="10.0.0.1", User="bob", bytes_sent=400000),
        flat(1200, url=u, SourceIP="10.0.0.1", User="bob", bytes_sent=400000),
        # 10.0.0.2/bob: exactly 1,000,000 is not more.
        flat(0, url=u, SourceIP="10.0.0.2", User="bob", bytes_sent=500000),
        flat(10, url=u, SourceIP="10.0.0.2", User="bob", bytes_sent=500000),
        # ...and a third one two hours later starts a new window.
        flat(7200, url=u, SourceIP="10.0.0.2", User="bob", bytes_sent=500000),
        # 10.0.0.1/alice: 2 MB, but not over https (not website_access).
        flat(0, url="http://x.example/", SourceIP="10.0.0.1", User="alice", bytes_sent=2000000),
    ]
    got = hits([base, c], ev)
    expect(got, [(3, "value_sum.yml", "Possible Exfiltration to Website")], "value_sum")


def test_value_avg():
    c = spec("correlation/value_avg.yml")
    base = write("rule_a.yml", """title: Outbound transfer
id: rule_a_id
detection:
  selection:
    BytesOut|gt: 0
  condition: selection
""")
    check_loads(c, base)
    ev = [
        flat(0, SourceIP="10.0.0.1", User="bob", BytesOut=400),
        flat(60, SourceIP="10.0.0.1", User="bob", BytesOut=700),      # average 550
        flat(0, SourceIP="10.0.0.2", User="bob", BytesOut=400),
        flat(60, SourceIP="10.0.0.2", User="bob", BytesOut=600),      # average 500
        flat(0, SourceIP="10.0.0.3", User="eve", BytesOut=10000),     # fires on its own
        flat(90000, SourceIP="10.0.0.3", User="eve", BytesOut=10),    # a day later: alone
    ]
    got = hits([base, c], ev)
    expect([h[0] for h in got], [2, 5], "value_avg")
    check(all(h[2] == "Suspicious average network traffic" for h in got), f"value_avg: {got}")


def test_value_percentile():
    c = spec("correlation/value_percentile.yml")
    base = write("process_creation.yml", """title: Any process
name: process_creation
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|exists: true
  condition: selection
""")
    check_loads(c, base)
    ev = [
        # Image paths are not numbers: no percentile, nothing fires.
        sysmon_proc(0, "ws1", "bob", WHOAMI, "whoami"),
        sysmon_proc(1, "ws1", "bob", WHOAMI, "whoami"),
        # ws2: 5 then 0.5: the 95th percentile stays 5.
        sysmon_proc(0, "ws2", "bob", "5", "x"),
        sysmon_proc(1, "ws2", "bob", "0.5", "x"),
        # ws3: 0.5: its 95th percentile is 0.5, at most 1.
        sysmon_proc(0, "ws3", "bob", "0.5", "x"),
    ]
    got = hits([base, c], ev)
    expect([h[0] for h in got], [5], "value_percentile")


def test_chain():
    """The specification's own composite example (failed logins followed by
    a successful login): a correlation over a correlation and a rule, in one
    multi-document file, by names."""
    chain = write("mr_brute_force.yml", """title: Failed logons followed by a success
id: 2c7e1bd2-4a5f-4b8e-9f0c-1d2e3f405162
correlation:
  type: temporal_ordered
  rules:
    - many_failed
    - logon_ok
  group-by:
    - User
  timespan: 10m
level: high
---
title: Many failed logons
name: many_failed
correlation:
  type: event_count
  rules:
    - logon_failed
  group-by:
    - User
  timespan: 10m
  condition:
    gte: 3
---
title: Failed logon
name: logon_failed
logsource: {product: windows, service: security}
detection:
  selection:
    EventID: [529, 4625]
  condition: selection
---
title: Successful logon
name: logon_ok
logsource: {product: windows, service: security}
detection:
  selection:
    EventID: [528, 4624]
  condition: selection
""")
    check_loads(chain)
    ev = []
    for user, seq in [("bob", "fffs"), ("alice", "ffs"), ("carol", "sfff"), ("dave", "fff")]:
        for i, k in enumerate(seq):
            ev.append(win(60 * i, 4625 if k == "f" else 4624, "Security", "dc1", {"User": user}))
    got = hits([chain], ev)
    expect(got, [(4, "2c7e1bd2-4a5f-4b8e-9f0c-1d2e3f405162",
                  "Failed logons followed by a success")],
           "chain (the inner correlation and the rules are silent)")


def main():
    global TMP
    TMP = tempfile.mkdtemp(prefix="mamori-sigma-spec-")
    try:
        run([test_examples_present, test_check_alone, test_rule_1, test_rule_ecs,
             test_filter_1, test_filter_ecs, test_event_count, test_event_count_ecs,
             test_value_count, test_temporal, test_temporal_ordered, test_value_sum,
             test_value_avg, test_value_percentile, test_chain])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
