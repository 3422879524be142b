#!/usr/bin/env python3
"""The DDoS collector on two threads (ddos.threads: 2) inside `mamori serve`.

One protected group spans three /24s, owned by different collector threads
(the partition hashes the destination's /24; ddos_shard_of, pinned in
tests/unit/test_ddos_shard.c, and mirrored by shard_of() below). Three
tools/flowgen.py exporters, each from its own loopback address (the
kernel's socket steering puts an exporter on one thread, so records cross
threads through the hand-off):

  - NetFlow v9 from 127.0.0.2: a memcached amplification to 198.18.10.10
    (300 kpps, 1:1000) over 2 kpps of background on 198.18.10.0/24;
  - IPFIX from 127.0.0.3: 100 kpps of background around 203.0.113.0/24;
  - sFlow from 127.0.0.4: 100 kpps of background around 198.18.11.0/24.

flowgen sends part of its background outside the protected /24s. The
group's threshold (400 kpps) is below its total during the attack and its
busiest /24 carries most of it, so it is no carpet. Checked: the host
attack is detected, named and counted once (one attack in the history,
one started, one ended, no group or /24 attack); the group's figure in
the API is exactly the sum of its three /24s' (two counted by the other
thread) and the attacked /24's is about the attack's; a SIGHUP reload
during the attack keeps it; every record sent goes through one detector
exactly once (counted + unprotected = decoded = sent, no hand-off drops);
each exporter is listed once.

Then a carpet over two /24s of a group, one on each thread, each under the
group's threshold and the whole over it: one attack, on the group.
Loopback only; serve is stopped by its own process id.
"""
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamori_test  # noqa: E402
from mamori_test import Mamori, TestFailure, check, free_port, run  # noqa: E402

DURATION = 16
TARGET = "198.18.10.10"
M64 = (1 << 64) - 1


def shard_of(ip, n, plen=24):
    """ddos_shard_of() of an IPv4 address (src/ddos/ddos_shard.c)."""
    a = bytearray(bytes(10) + b"\xff\xff" + ipaddress.IPv4Address(ip).packed)
    net = int.from_bytes(a[12:], "big") & (M64 << (32 - plen)) & 0xffffffff
    a[12:] = net.to_bytes(4, "big")
    hi, lo = int.from_bytes(a[:8], "big"), int.from_bytes(a[8:], "big")
    h = ((hi ^ 0x5bd1e9955bd1e995) * 0x9e3779b97f4a7c15) & M64
    h ^= (lo + 0x632be59bd9b4e019 + ((h << 6) & M64) + (h >> 2)) & M64
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & M64
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & M64
    h ^= h >> 33
    return (h >> 32) % n


class Flowgen(mamori_test.Flowgen):
    def __init__(self, fmt, port, *args):
        super().__init__(["--format", fmt, "--port", port, "--duration", DURATION,
                          "--sampling", 1000, "--active-timeout", 2, "--inactive-timeout", 2,
                          *args], nice=True)

    def wait(self, timeout=180):
        text = super().wait(timeout)
        m = re.search(r"sent (\d+) datagrams, (\d+) flow records", text)
        check(m, f"no summary from flowgen: {text}")
        self.sent_datagrams, self.sent_records = int(m.group(1)), int(m.group(2))
        print("  " + text.strip().replace("\n", "\n  "), flush=True)
        return self


def api(m, path, params=None):
    st, body = m.get(path, params)
    check(st == 200, f"GET {path} {params}: {st} {body[:300]!r}")
    return json.loads(body)


def steered(ip, n):
    """The thread the kernel gives an IPv4 exporter (the reuseport BPF
    program in src/ddos/collect_thread.c)."""
    v = int(ipaddress.IPv4Address(ip))
    return (v ^ (v >> 16)) % n


def metric_labels(m, name, labels):
    st, body = m.get("/metrics")
    check(st == 200, "metrics")
    text = body.decode() if isinstance(body, bytes) else body
    mm = re.search(r"^%s\{%s\} (\d+)" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(mm.group(1)) if mm else 0


def ddos_section(nf, sf, group_pps="400k"):
    return f"""ddos:
  netflow: 127.0.0.1:{nf}
  sflow: 127.0.0.1:{sf}
  threads: 2
  groups:
    - name: customers
      prefixes: [198.18.10.0/24, 198.18.11.0/24, 203.0.113.0/24]
      cooldown: 3s
      group_thresholds:
        total: {{ pps: {group_pps}, bps: 0 }}
"""


def full_log(m):
    with open(m.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def finish(m, gens):
    """Lets flowgen runs still going end, then stops serve."""
    for x in gens:
        try:
            x.wait()
        except TestFailure:
            pass
    m.stop()
    m.cleanup()


def within(got, want, share):
    return abs(got - want) <= share * want


def test_two_threads():
    # The /24s lie on both threads, the attacked one off thread 0 (whose
    # detector judges the groups): records, groups and questions cross.
    check(shard_of(TARGET, 2) == 1 and shard_of("198.18.11.1", 2) == 1 and
          shard_of("203.0.113.1", 2) == 0, "the partition the test relies on")
    nf, sf = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    m = Mamori(extra_config=ddos_section(nf, sf))
    gens = []
    try:
        m.start()
        check("event=collector_threads threads=2" in full_log(m), "two collector threads started")
        gens = [
            Flowgen("v9", nf, "--bind", "127.0.0.2", "--protected", "198.18.10.0/24",
                    "--attack", "memcached", "--target", TARGET, "--attack-pps", 300000,
                    "--attack-start", 3, "--attack-duration", 9, "--background-pps", 2000,
                    "--seed", 21),
            Flowgen("ipfix", nf, "--bind", "127.0.0.3", "--protected", "203.0.113.0/24",
                    "--background-pps", 100000, "--exporter-id", 5, "--seed", 22),
            Flowgen("sflow", sf, "--bind", "127.0.0.4", "--agent", "192.0.2.254",
                    "--protected", "198.18.11.0/24", "--background-pps", 100000,
                    "--seed", 23),
        ]

        # The attack, once.
        deadline = time.time() + 30
        while not api(m, "/api/v1/ddos/attacks")["attacks"]:
            if time.time() > deadline:
                raise TestFailure("no attack\n" + m.read_log())
            time.sleep(0.2)
        # An attack is named once enough of its records are in (it may
        # appear as "unclassified flood (classifying)" before).
        deadline = time.time() + 15
        a = api(m, "/api/v1/ddos/attacks")["attacks"]
        while "classifying" in a[0]["summary"] and time.time() < deadline:
            time.sleep(0.2)
            a = api(m, "/api/v1/ddos/attacks")["attacks"]
        check(len(a) == 1, f"one attack: {a}")
        check(a[0]["target"] == TARGET, f"attack target {a[0]['target']}")
        check("memcached" in a[0]["summary"], f"named: {a[0]['summary']}")
        print(f"  attack: {a[0]['attack_id']} {a[0]['summary']}", flush=True)

        # The group's figure is the whole group's: the sum of its three
        # /24s, two of them counted by the other thread (packets are the
        # same in every ring a record counts in). Read until the four
        # closed seconds are the same second.
        seen = None
        deadline = time.time() + 10
        while time.time() < deadline and not seen:
            tops = [api(m, "/api/v1/ddos/top", {"target": ip})
                    for ip in (TARGET, "198.18.11.1", "203.0.113.1")]
            views = [t["prefix"]["traffic"] for t in tops] + [tops[0]["group_traffic"]]
            h = tops[0]["host"]
            if (all(v and v["second"] == views[0]["second"] for v in views) and h and
                    h["in_attack"] and h["second"] == views[0]["second"] and
                    views[0]["pps"] > 150000 and views[1]["pps"] > 0 and views[2]["pps"] > 0):
                seen = (tops, views)
            else:
                time.sleep(0.2)
        check(seen, "a second of the attack in the top talkers of all three /24s")
        tops, (p, p11, p113, g) = seen
        print(f"  second {g['second']}: /24s {p['pps']:.0f} + {p11['pps']:.0f} + "
              f"{p113['pps']:.0f} pps, group {g['pps']:.0f} pps", flush=True)
        check(tops[0]["prefix"]["prefix"] == "198.18.10.0/24", "prefix")
        check(all(t["group"] == "customers" for t in tops), "group")
        check(within(p["pps"], 302000, 0.2), f"/24 pps {p['pps']}, expected about 302k")
        check(abs(g["pps"] - (p["pps"] + p11["pps"] + p113["pps"])) < 2,
              f"group pps {g['pps']} is not the sum of its /24s")
        check(any(x["target"] == TARGET for x in tops[0]["attacks"]),
              f"top's attacks {tops[0]['attacks']}")

        # A reload on both threads, the attack kept.
        mark = len(full_log(m))
        with open(m.config) as f:
            text = f.read()
        with open(m.config, "w") as f:
            f.write(text.replace("pps: 400k", "pps: 450k"))
        m.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 15
        while not re.search(r"event=ddos_reloaded .*attacks_kept=1", full_log(m)[mark:]):
            if time.time() > deadline:
                raise TestFailure("no reload\n" + full_log(m)[mark:])
            time.sleep(0.2)

        v9, ipfix, sflow = [x.wait() for x in gens]
        gens = []
        sent = v9.sent_records + ipfix.sent_records + sflow.sent_records
        # Every record through one detector exactly once (flowgen sends
        # part of its background outside the protected /24s), none lost
        # between the threads.
        deadline = time.time() + 20
        while True:
            got = [m.metric("mamori_ddos_records_total"),
                   m.metric("mamori_ddos_records_counted_total"),
                   m.metric("mamori_ddos_records_unprotected_total")]
            if got[0] == sent and got[1] + got[2] == sent:
                break
            if time.time() > deadline:
                raise TestFailure(f"decoded, counted, unprotected {got} of {sent} records sent")
            time.sleep(0.3)
        check(m.metric("mamori_ddos_handoff_drops_total") == 0, "hand-off drops")
        # Each exporter on one thread, the one the steering program picks.
        per = [0, 0]
        for x, ip in ((v9, "127.0.0.2"), (ipfix, "127.0.0.3"), (sflow, "127.0.0.4")):
            per[steered(ip, 2)] += x.sent_datagrams
        dg = [metric_labels(m, "mamori_ddos_thread_datagrams_total", f'thread="{k}"')
              for k in (0, 1)]
        check(dg == per and per[0] and per[1], f"datagrams per thread {dg}, expected {per}")
        check("reuseport_steering_failed" not in full_log(m), "steering refused")
        print(f"  {sent} records sent and decoded: {got[1]} counted, {got[2]} unprotected",
              flush=True)

        deadline = time.time() + 20
        while m.metric("mamori_ddos_attacks_ended_total") < 1:
            if time.time() > deadline:
                raise TestFailure("the attack did not end\n" + m.read_log())
            time.sleep(0.3)
        check(m.metric("mamori_ddos_attacks_started_total") == 1, "one attack started")
        check(m.metric("mamori_ddos_attacks_ended_total") == 1, "one attack ended")
        check(m.metric("mamori_ddos_attacks_active") == 0, "no attack active")
        a = api(m, "/api/v1/ddos/attacks")["attacks"]
        check(len(a) == 1 and a[0]["target"] == TARGET, f"the history: {a}")

        ex = api(m, "/api/v1/ddos/exporters")["exporters"]
        got = sorted((e["exporter"], e["protocol"]) for e in ex)
        check(got == [("127.0.0.2", "netflow9"), ("127.0.0.3", "ipfix"),
                      ("192.0.2.254", "sflow")], f"exporters {got}")
        rc = m.stop()
        check(rc == 0, f"serve exited with {rc} after SIGTERM\n" + full_log(m)[-3000:])
    finally:
        finish(m, gens)


def test_group_carpet_over_threads():
    """A carpet over two /24s of one group, one on each thread, each /24
    at 80 kpps: each thread's part of the group (80k) is under the group's
    120 kpps, the whole (160k) over it, and spread (carpet_max_share 70 %):
    one attack, on the group, named a carpet, from thread 0; no /24 or
    host attack."""
    check(shard_of("198.18.10.1", 2) != shard_of("203.0.113.1", 2), "the /24s' threads")
    sf = free_port(socket.SOCK_DGRAM)
    m = Mamori(extra_config=f"""ddos:
  netflow: ""
  sflow: 127.0.0.1:{sf}
  threads: 2
  carpet_max_share: 70
  groups:
    - name: customers
      prefixes: [198.18.10.0/24, 203.0.113.0/24]
      cooldown: 3s
      group_thresholds:
        total: {{ pps: 120k, bps: 0 }}
""")
    gens = []
    try:
        m.start()
        gens = [Flowgen("sflow", sf, "--bind", ip, "--agent", agent, "--protected", net,
                        "--attack", "carpet", "--target", net, "--attack-pps", 80000,
                        "--attack-start", 2, "--attack-duration", 10, "--background-pps", 0,
                        "--seed", seed)
                for ip, agent, net, seed in (("127.0.0.2", "192.0.2.1", "198.18.10.0/24", 31),
                                             ("127.0.0.3", "192.0.2.2", "203.0.113.0/24", 32))]
        for x in gens:
            x.wait()
        gens = []
        deadline = time.time() + 20
        while m.metric("mamori_ddos_attacks_ended_total") < 1:
            if time.time() > deadline:
                raise TestFailure("no group attack ended\n" + full_log(m)[-3000:])
            time.sleep(0.3)
        a = api(m, "/api/v1/ddos/attacks")["attacks"]
        print(f"  attacks: {[(x['target'], x['summary'], x['peak_pps']) for x in a]}", flush=True)
        check(len(a) == 1, f"one attack: {a}")
        check(a[0]["kind"] == "group" and a[0]["group"] == "customers", f"kind {a[0]['kind']}")
        check("carpet bombing of group customers" in a[0]["summary"], a[0]["summary"])
        check(within(a[0]["peak_pps"], 160000, 0.3), f"peak {a[0]['peak_pps']}")
        check(m.metric("mamori_ddos_attacks_started_total") == 1, "one attack started")
        rc = m.stop()
        check(rc == 0, f"serve exited with {rc}")
    finally:
        finish(m, gens)


if __name__ == "__main__":
    run([test_two_threads, test_group_carpet_over_threads])
