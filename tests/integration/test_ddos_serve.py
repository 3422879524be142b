#!/usr/bin/env python3
"""The DDoS pillar inside `mamori serve`, end to end on loopback.

A private serve protects 203.0.113.0/24 (TEST-NET-3: the addresses are only
values inside the flows; every packet goes to 127.0.0.1) with two tiers
(FlowSpec discard at 500 Mbit/s, blackhole at 2 Gbit/s), notifies a
webhook on loopback, and mitigates through a BIRD 2 speaker fed by
mamori's include file, peering with a BIRD 2 "router" (peers.BgpLab).
tools/flowgen.py sends NetFlow v9 and sFlow, sampled 1:1000, NetFlow with
a 60 s active timeout:

  - background traffic alone (100 kpps in each format) raises nothing;
  - a memcached amplification to .10 in NetFlow v9 (300 kpps, 3.5 Gbit/s)
    and one to .20 in sFlow (80 kpps, 0.94 Gbit/s) are detected, named,
    sized within 10 % of what flowgen generated, notified at start and end,
    mitigated (blackhole of .10, FlowSpec discard of UDP from 11211 to .20)
    at the router and withdrawn after the end and the hold; the history
    API shows them with their timeline and mitigation steps, and the
    attack events are searchable in /api/v1/events;
  - an NTP reflection to .30 followed by a memcached one: its FlowSpec
    rule on UDP from 123 is replaced, at the router, by one that also
    matches 11211, and a notice says the vector changed;
  - a carpet bombing of 254 hosts at 2 kpps each is one attack, on the /24.

And a real exporter: softflowd (Debian) capturing on lo what tcpreplay
replays from a pcap the test writes (packets to 198.18.0.77, which no
interface has: the kernel drops them after the capture) exports IPFIX to
serve; the records are counted and the addresses decoded right.

Prints figures (detection, notification and mitigation delays, peak error)
on the way. Every daemon is stopped by its own process id.
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamori_test  # noqa: E402
from mamori_test import Mamori, TestFailure, check, free_port, run  # noqa: E402
from peers import BgpLab, Hooks, Proc, need, wait_for  # noqa: E402

# bird, birdc and softflowd live in sbin, which CI's PATH may lack.
os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
COMM = "(65535,666)"


def udp_port():
    return free_port(socket.SOCK_DGRAM)


def figure(name, value):
    print(f"FIGURE {name}: {value}", flush=True)


class Flowgen(mamori_test.Flowgen):
    """One flowgen run in the background (ahead of other work, as a router
    is); its stderr summary is parsed."""

    def __init__(self, fmt, port, *args):
        super().__init__(["--format", fmt, "--port", port, "--sampling", "1000",
                          "--active-timeout", "60", *args], nice=True)

    def wait(self, timeout=180):
        super().wait(timeout)
        return self

    def stream(self, name):
        """(packets/s, bits/s) flowgen generated for one stream."""
        m = re.search(r"stream %s\s+(\d+) pps\s+([0-9.]+) Gbit/s" % re.escape(name), self.text)
        check(m, f"no stream {name} in flowgen's summary: {self.text}")
        return int(m.group(1)), float(m.group(2)) * 1e9


def mid_second():
    """Waits until 0.4 s into a second: flowgen then sends each second's
    datagrams in the middle of a second, away from the collector's
    boundaries (a batch late by a few milliseconds would otherwise count
    twice in one second and once in none)."""
    frac = time.time() % 1.0
    time.sleep((0.4 - frac) % 1.0)


def api_json(m, path, params=None, expect=200):
    status, body = m.get(path, params)
    check(status == expect, f"GET {path} {params}: {status} {body[:300]!r}")
    return json.loads(body)


def attacks(m, **params):
    return api_json(m, "/api/v1/ddos/attacks", params)["attacks"]


def hook_titles(hooks):
    out = []
    for _path, _headers, body in list(hooks.received):
        try:
            out.append(json.loads(body))
        except ValueError:
            pass
    return out


def find_hook(hooks, *words):
    for n in hook_titles(hooks):
        if all(w in n.get("title", "") for w in words):
            return n
    return None


def named_notice(hooks, target):
    """The start notice of the attack on target, or, when it started from
    too few records to be named ("classifying"), the notice that named it
    later (status classified or vector_changed)."""
    n = find_hook(hooks, f"DDoS attack on {target}:")
    if n and "(classifying)" in n["title"]:
        for m in hook_titles(hooks):
            if m.get("fields", {}).get("target") == target and \
                    m["fields"].get("status") in ("classified", "vector_changed"):
                return n, m
        return n, None
    return n, n


def within(value, truth, share, what):
    err = (value - truth) / truth
    check(abs(err) <= share, f"{what}: {value:.4g} vs {truth:.4g} generated ({err:+.1%})")
    return err


# ---- the lab ----

class Env:
    def __init__(self):
        need("bird", "birdc")
        self.lab = BgpLab()
        self.hooks = Hooks()
        self.m = None
        self.nf = udp_port()
        self.sf = udp_port()

    def start(self):
        self.lab.start_router()
        self.lab.start_speaker()
        extra = f"""notify:
  channels:
    - name: hook
      type: webhook
      url: http://127.0.0.1:{self.hooks.port}/ddos
      max_per_window: 1000
ddos:
  netflow: 127.0.0.1:{self.nf}
  sflow: 127.0.0.1:{self.sf}
  update_interval: 2s
  groups:
    - name: customers
      prefixes: [203.0.113.0/24]
      trigger: 2s
      cooldown: 4s
      prefix_thresholds:
        total: {{ bps: 10G, pps: 450k }}
      tiers:
        - {{ name: flowspec-discard, bps: 500M }}
        - {{ name: blackhole, bps: 2G }}
mitigation:
  backend: bird
  bird_include: {self.lab.include}
  bird_socket: {self.lab.spk_ctl}
  hold_time: 5s
  command_timeout: 10s
"""
        os.makedirs(os.path.join(self.lab.dir, "m"))
        self.m = Mamori(extra_config=extra, workdir=os.path.join(self.lab.dir, "m"))
        self.m.start()

    def stop(self):
        rc = self.m.stop() if self.m and self.m.proc else None
        return rc

    def cleanup(self):
        if self.m:
            self.m.cleanup()
        self.hooks.stop()
        self.lab.cleanup()


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
        try:
            ENV.start()
        except Exception:
            ENV.cleanup()
            ENV = None
            raise
    return ENV


def test_background_raises_nothing():
    e = env()
    mid_second()
    v9 = Flowgen("v9", e.nf, "--background-pps", "100000", "--duration", "10", "--seed", "11")
    sf = Flowgen("sflow", e.sf, "--background-pps", "100000", "--duration", "10", "--seed", "12")
    v9.wait()
    sf.wait()
    time.sleep(4)   # delay + trigger + a margin
    status, body = e.m.get("/metrics")
    check(status == 200, "metrics")
    counted = re.search(rb"^mamori_ddos_records_counted_total (\d+)", body, re.M)
    check(counted and int(counted.group(1)) > 500, f"background counted: {counted and counted.group(0)}")
    check(attacks(e.m) == [], f"attacks from background traffic: {attacks(e.m)}")
    check(hook_titles(e.hooks) == [], f"notifications from background: {hook_titles(e.hooks)}")
    routes = e.lab.all_routes("spk")
    check("203.0.113." not in routes, f"routes from background: {routes}")


def test_amplification_v9_and_sflow():
    e = env()
    mid_second()
    t0 = time.time()
    # NetFlow v9: the attack from second 3 to 18, from 100,000 reflectors
    # (memcached's 2018 count), so each sampled packet is a flow of its own,
    # exported by the 15 s inactive timeout; the run lasts until every one
    # has been (a forced export at the end would land all at once).
    v9 = Flowgen("v9", e.nf, "--attack", "memcached", "--target", "203.0.113.10",
                 "--attack-pps", "300000", "--attack-start", "3", "--attack-duration", "15",
                 "--sources", "100000", "--duration", "36", "--seed", "21")
    sf = Flowgen("sflow", e.sf, "--attack", "memcached", "--target", "203.0.113.20",
                 "--attack-pps", "80000", "--attack-start", "3", "--attack-duration", "15",
                 "--duration", "20", "--seed", "22")
    seen = {}

    def progress():
        now = time.time()
        for key, words in (("hook20", ("203.0.113.20:",)), ("hook10", ("203.0.113.10:",))):
            if key not in seen and find_hook(e.hooks, "DDoS attack on", *words):
                seen[key] = now
        if "fs20" not in seen and "flow4 { dst 203.0.113.20/32; proto 17; sport 11211; }" in \
                e.lab.routes("spk", "flowtab4"):
            seen["fs20"] = now
        if "bh10" not in seen:
            r4 = e.lab.routes("spk", "master4")
            if "203.0.113.10/32" in r4 and COMM in r4:
                seen["bh10"] = now
        return len(seen) == 4

    wait_for("both attacks notified and mitigated at the router", progress, timeout=90, interval=0.2)
    attack_t = t0 + 3
    figure("sFlow 1:1000, 80 kpps memcached: attack start -> webhook", f"{seen['hook20'] - attack_t:.2f} s")
    figure("sFlow 1:1000, 80 kpps memcached: attack start -> FlowSpec at the router",
           f"{seen['fs20'] - attack_t:.2f} s")
    figure("NetFlow v9 (15 s inactive timeout), 300 kpps: attack start -> webhook",
           f"{seen['hook10'] - attack_t:.2f} s")
    figure("NetFlow v9 (15 s inactive timeout), 300 kpps: attack start -> blackhole at the router",
           f"{seen['bh10'] - attack_t:.2f} s")
    r4 = e.lab.routes("spk", "master4")
    check("BGP.next_hop: 192.0.2.1" in r4, f"blackhole next hop: {r4}")

    # The start notifications: named, sized, what was done. An attack whose
    # first seconds stay under the blackhole tier starts with FlowSpec and
    # is escalated (and told so) when its peak passes 2 Gbit/s.
    n10, named10 = named_notice(e.hooks, "203.0.113.10")
    check(named10 and "memcached amplification" in named10["title"] and "Gbps" in n10["title"],
          f"{n10 and n10['title']} / {named10 and named10['title']}")
    check(n10["kind"] == "generic", n10)
    f = n10["fields"]
    check(f["target"] == "203.0.113.10" and f["status"] == "started", f)
    check(f["top_sources"].startswith("100."), f)
    if f["action"].startswith("blackhole 203.0.113.10/32"):
        check(n10["severity"] == "critical", n10)
    else:
        check(f["action"].startswith("flowspec-discard 203.0.113.10/32 udp" +
                                     (" sport 11211" if named10 is n10 else "")), f)
        esc = find_hook(e.hooks, "DDoS attack on 203.0.113.10 escalated to blackhole")
        check(esc and esc["severity"] == "critical" and "then blackhole 203.0.113.10/32" in
              esc["fields"]["action"], f"escalation: {esc}")
    # At 1:1000 the decision may come from fewer samples than a name needs
    # (32): then the start says "classifying", its rule matches UDP alone
    # (or waits), and the notice that names it replaces the rule.
    n20, named20 = named_notice(e.hooks, "203.0.113.20")
    check(n20["severity"] == "high", n20)
    check(named20 and "memcached amplification" in named20["title"], f"{n20} / {named20}")
    if named20 is n20:
        check(n20["fields"]["action"].startswith("flowspec-discard 203.0.113.20/32 udp sport 11211"),
              n20["fields"])
    else:
        check(n20["fields"]["action"].startswith("flowspec-discard 203.0.113.20/32 udp (") or
              "waits" in n20["fields"]["action"], n20["fields"])
        check("then flowspec-discard 203.0.113.20/32 udp sport 11211" in named20["fields"]["action"],
              named20["fields"])
        figure("sFlow 1:1000, 80 kpps memcached: started classifying, named by", named20["title"])
    # Whatever the path, the router ends with the rule on 11211 alone: one
    # on UDP without the port (had it been announced) is withdrawn.
    wait_for("no FlowSpec rule on UDP without the port", lambda: "dst 203.0.113.20/32; proto 17; }"
             not in e.lab.routes("spk", "flowtab4"), timeout=20, interval=0.2)

    active = attacks(e.m, active="true")
    check({a["target"] for a in active} >= {"203.0.113.10", "203.0.113.20"}, f"active: {active}")

    v9.wait()
    sf.wait()
    # The end: cool-down, notification, hold, withdrawal.
    ended = {}

    def ended_all():
        now = time.time()
        for t in ("203.0.113.10", "203.0.113.20"):
            if t not in ended and find_hook(e.hooks, f"DDoS attack on {t} ended"):
                ended[t] = now
        text = e.lab.all_routes("spk")
        if "gone" not in ended and len(ended) == 2 and "203.0.113.10" not in text and \
                "203.0.113.20" not in text:
            ended["gone"] = now
        return "gone" in ended

    wait_for("both attacks ended and their routes withdrawn", ended_all, timeout=90, interval=0.2)
    figure("end notification -> withdrawal at the router (hold 5 s)",
           f"{ended['gone'] - max(ended['203.0.113.10'], ended['203.0.113.20']):.2f} s")

    # Sizes against what flowgen generated.
    for gen, target in ((v9, "203.0.113.10"), (sf, "203.0.113.20")):
        pps, bps = gen.stream("memcached")
        got = attacks(e.m, target=target)
        check(len(got) == 1, f"one attack on {target}: {got}")
        a = got[0]
        check(not a["active"] and a["end"], a)
        check("memcached amplification" in a["summary"], a["summary"])
        check("memcached amplification" in a["vectors"], a["vectors"])
        eb = within(a["peak_bps"], bps, 0.10, f"{target} peak bit/s")
        ep = within(a["peak_pps"], pps, 0.10, f"{target} peak packet/s")
        figure(f"{target} peak vs generated", f"{eb:+.1%} bit/s, {ep:+.1%} packet/s")
        one = api_json(e.m, f"/api/v1/ddos/attacks/{a['id']}")
        pts = one["timeline"]["points"]
        check(len(pts) >= 10 and max(p[1] for p in pts) == a["peak_bps"], f"timeline: {pts[:5]}")
        steps = [s["what"] for s in one["mitigations"]]
        check(steps[:1] == ["announce"] and "hold" in steps and "withdraw" in steps, steps)
        check(any(s["what"] == "withdraw" for s in one["mitigations"]), one["mitigations"])

    # The events: searchable like any other.
    ev = e.m.search(**{"event.module": "ddos", "event.action": "ddos-attack-started"})
    check(ev["total"] >= 2, f"start events: {ev}")
    dst = {x.get("destination.ip") for x in ev["events"]}
    check({"203.0.113.10", "203.0.113.20"} <= dst, f"event targets: {dst}")
    ev = e.m.search(**{"event.action": "ddos-attack-ended", "destination.ip": "203.0.113.10"})
    check(ev["total"] == 1 and "memcached amplification" in ev["events"][0]["message"], ev)
    ev = e.m.search(**{"event.dataset": "ddos.mitigation", "destination.ip": "203.0.113.20"})
    check(ev["total"] >= 3, f"mitigation events: {ev['total']}")


def test_vector_change_replaces_flowspec():
    """An NTP reflection (sFlow 1:1000, 150 kpps, over the FlowSpec tier)
    is followed by a memcached one to the same host: once the new
    vector has held two seconds the attack's rule on UDP from 123 is
    replaced by one that also matches 11211 — at the router the old rule
    is withdrawn, the new one there — and a notice says the vector
    changed. Then it ends and both go."""
    e = env()
    target = "203.0.113.30"
    old_rule = f"dst {target}/32; proto 17; sport 123; }}"
    mid_second()
    # NTP 150 kpps (580 Mbit/s) for 4 s, then memcached 100 kpps (1.2
    # Gbit/s, half of it non-first fragments), one after the other: under
    # the 2 Gbit/s blackhole tier, which would make the vector moot.
    # Memcached's first fragments pass a fifth of the attack's bytes in
    # its second second.
    ntp = Flowgen("sflow", e.sf, "--attack", "ntp", "--target", target, "--attack-pps", "150000",
                  "--attack-start", "2", "--attack-duration", "4", "--duration", "19",
                  "--seed", "31")
    mc = Flowgen("sflow", e.sf, "--attack", "memcached", "--target", target,
                 "--attack-pps", "100000", "--attack-start", "6", "--attack-duration", "12",
                 "--duration", "19", "--seed", "32")
    wait_for("the rule on UDP from 123 at the router",
             lambda: old_rule in e.lab.routes("spk", "flowtab4"), timeout=60, interval=0.2)

    def replaced():
        f4 = e.lab.routes("spk", "flowtab4")
        return old_rule not in f4 and any(f"dst {target}/32;" in ln and "11211" in ln
                                           for ln in f4.splitlines())
    wait_for("the rule replaced by one on 123 and 11211", replaced, timeout=60, interval=0.2)
    # The notice goes through the notifier, the rule through the speaker:
    # either may be first.
    n = wait_for("the vector-change notice",
                 lambda: find_hook(e.hooks, f"DDoS attack on {target}: vector changed to"),
                 timeout=30, interval=0.2)
    check(n and "memcached amplification" in n["title"] and "(was NTP amplification" in n["title"]
          and n["fields"]["status"] == "vector_changed", n)
    check("replacing filter 203.0.113.30/32 proto 17 sport 123" in n["fields"]["action"], n["fields"])
    ntp.wait()
    mc.wait()
    wait_for("the attack ended and its rules withdrawn", lambda: (
        find_hook(e.hooks, f"DDoS attack on {target} ended") and
        target not in e.lab.all_routes("spk")), timeout=90, interval=0.2)
    got = attacks(e.m, target=target)
    check(len(got) == 1, f"one attack on {target}: {got}")
    one = api_json(e.m, f"/api/v1/ddos/attacks/{got[0]['id']}")
    notes = [(m["what"], m.get("detail") or "") for m in one["mitigations"]]
    check(any(w == "withdraw" and "replaced by" in d for w, d in notes), notes)


def test_carpet_bombing_is_one_attack():
    e = env()
    before = {a["id"] for a in attacks(e.m)}
    mid_second()
    t0 = time.time()
    sf = Flowgen("sflow", e.sf, "--attack", "carpet", "--target", "203.0.113.0/24",
                 "--attack-pps", "508000", "--attack-start", "2", "--attack-duration", "10",
                 "--duration", "13", "--seed", "31")
    seen = {}

    def started():
        if "hook" not in seen and find_hook(e.hooks, "DDoS attack on 203.0.113.0/24:"):
            seen["hook"] = time.time()
        if "bh" not in seen and "203.0.113.0/24" in e.lab.routes("spk", "master4"):
            seen["bh"] = time.time()
        return len(seen) == 2

    wait_for("the carpet attack notified and blackholed", started, timeout=60, interval=0.2)
    figure("carpet 254 x 2 kpps, sFlow 1:1000: attack start -> webhook", f"{seen['hook'] - t0 - 2:.2f} s")
    figure("carpet: attack start -> /24 blackhole at the router", f"{seen['bh'] - t0 - 2:.2f} s")
    sf.wait()
    wait_for("the carpet attack over", lambda: find_hook(e.hooks, "DDoS attack on 203.0.113.0/24 ended"),
             timeout=60)
    new = [a for a in attacks(e.m) if a["id"] not in before]
    check(len(new) == 1, f"one attack, not one per host: {[(a['target'], a['summary']) for a in new]}")
    a = new[0]
    check(a["kind"] == "prefix" and a["target"] == "203.0.113.0/24", a)
    check(a["summary"].startswith("carpet bombing of 203.0.113.0/24"), a["summary"])
    check("carpet bombing" in a["vectors"], a["vectors"])
    check(a["hosts"] >= 100, f"hosts at the peak: {a['hosts']}")
    pps, _bps = sf.stream("carpet")
    err = within(a["peak_pps"], pps, 0.10, "carpet peak packet/s")
    figure("carpet peak vs generated", f"{err:+.1%} packet/s")
    wait_for("the /24 blackhole withdrawn", lambda: "203.0.113.0/24" not in e.lab.routes("spk", "master4"),
             timeout=60)
    check(e.stop() == 0, "clean stop")


# ---- a real exporter: softflowd on lo, fed by tcpreplay ----

def write_pcap(path, n, sources, dst):
    """n UDP packets (1000-byte payload) from the sources, round robin, to
    dst port 40000+i; Ethernet framing as on lo."""
    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff

    def ip4(s):
        return bytes(int(x) for x in s.split("."))

    t = time.time()
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            src = sources[i % len(sources)]
            l4 = struct.pack("!HHHH", 11211, 40000 + i % len(sources), 1008, 0) + b"x" * 1000
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xffff, 0, 64, 17, 0,
                            ip4(src), ip4(dst))
            h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
            frame = b"\0" * 12 + b"\x08\x00" + h + l4
            ts = t + i * 0.001
            f.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(frame), len(frame)) + frame)


def test_softflowd_exporter():
    need("softflowd", "tcpreplay")
    d = tempfile.mkdtemp(prefix="mamori-softflowd-")
    os.makedirs(os.path.join(d, "m"))
    nf = udp_port()
    m = Mamori(extra_config=f"""ddos:
  netflow: 127.0.0.1:{nf}
  sflow: ""
  groups:
    - name: lab
      prefixes: [198.18.0.0/24]
      trigger: 1s
      cooldown: 3s
      thresholds:
        total: {{ pps: 300 }}
""", workdir=os.path.join(d, "m"))
    sources = [f"198.51.100.{i}" for i in range(1, 6)]
    pcap = os.path.join(d, "flows.pcap")
    sfd = None
    try:
        write_pcap(pcap, 12000, sources, "198.18.0.77")
        m.start()
        before = m.metric("mamori_ddos_records_total")
        # Only what the pcap holds (a BPF filter), no promiscuous mode,
        # short timeouts so flows are exported while they last.
        sfd = Proc(["softflowd", "-d", "-N", "-i", "lo", "-n", f"127.0.0.1:{nf}", "-v", "10",
                    "-p", os.path.join(d, "softflowd.pid"), "-c", os.path.join(d, "softflowd.ctl"),
                    "-t", "udp=2", "-t", "maxlife=1", "-t", "expint=1", "dst net 198.18.0.0/24"],
                   os.path.join(d, "softflowd.log"))
        time.sleep(1.5)
        r = subprocess.run(["tcpreplay", "-i", "lo", "--pps", "1000", pcap], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0, f"tcpreplay: {r.stdout} {r.stderr}")
        wait_for("softflowd's records counted", lambda: m.metric("mamori_ddos_records_counted_total") >= 10,
                 timeout=30)
        got = m.metric("mamori_ddos_records_total") - before
        figure("softflowd IPFIX records decoded", got)
        check(m.metric("mamori_ddos_decode_errors_total") == 0, "decode errors")
        # Over the lab's 300 packet/s: an attack, whose records (and so
        # whose top talkers) are all counted; read once it is over.
        wait_for("the attack on 198.18.0.77 over",
                 lambda: [a for a in attacks(m, target="198.18.0.77") if not a["active"]], timeout=40)
        a = attacks(m, target="198.18.0.77")[0]
        top = api_json(m, "/api/v1/ddos/top", {"target": "198.18.0.77"})
        check(top["group"] == "lab" and top["host"] is not None, top)
        check(top["prefix"]["prefix"] == "198.18.0.0/24", top)
        srcs = {s["ip"] for s in top["host"]["top_sources"]}
        check(srcs == {s["ip"] for s in a["top_sources"]}, f"top talkers {srcs} vs {a['top_sources']}")
        check(srcs and srcs <= set(sources), f"decoded sources: {srcs}")
        check(any(p["port"] == 11211 and p["protocol"] == 17 for p in a["top_ports"]), a["top_ports"])
        # 1000 packets/s of 1028-byte IP packets, unsampled. softflowd's
        # records arrive a second or two after they start, so they are
        # moved forward and may overlap by a second: a sanity bound only.
        check(500 <= a["peak_pps"] <= 2500, f"softflowd peak {a['peak_pps']} packet/s")
        figure("softflowd peak", f"{a['peak_pps']:.0f} packet/s, {a['peak_bps'] / 1e6:.2f} Mbit/s "
               f"(1000 packet/s, 8.2 Mbit/s replayed)")
        check(m.stop() == 0, "clean stop")
    except TestFailure:
        if os.path.exists(os.path.join(d, "softflowd.log")):
            with open(os.path.join(d, "softflowd.log"), errors="replace") as f:
                print("softflowd:", f.read()[-2000:])
        print(m.read_log())
        raise
    finally:
        if sfd:
            sfd.stop()
        m.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def nf5_datagram(seq, n, uptime=600000):
    """A NetFlow v5 datagram of n records (UDP 11211 -> 198.18.0.0/24)."""
    now = int(time.time())
    out = struct.pack("!HHIIIIBBH", 5, n, uptime, now, 0, seq, 0, 0, 0)
    for i in range(n):
        out += struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", socket.inet_aton(f"198.51.100.{1 + i % 50}"),
                           socket.inet_aton(f"198.18.0.{1 + i % 200}"), bytes(4), 0, 0, 10,
                           14000, uptime - 500, uptime - 100, 11211, 40000 + i, 0, 0, 17, 0, 0,
                           0, 0, 0, 0)
    return out


def test_gso_runs_cut_exactly():
    """An exporter's datagrams that reach the socket as one run (sent with
    UDP GSO; the collector's sockets take runs with UDP_GRO) are cut and
    decoded one by one: every datagram and record counted, none taken as
    a decode error, a shorter last datagram of a run too."""
    nf = udp_port()
    m = Mamori(extra_config=f"""ddos:
  netflow: 127.0.0.1:{nf}
  sflow: ""
  groups:
    - name: lab
      prefixes: [198.18.0.0/24]
""")
    s = None
    try:
        m.start()
        d0 = m.metric("mamori_ddos_datagrams_total")
        r0 = m.metric("mamori_ddos_records_total")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_UDP, 103, 24 + 30 * 48)   # UDP_SEGMENT
        seq, dgrams, records = 0, 0, 0
        for k in range(20):
            # 40 full datagrams and, every other send, a short last one.
            run = b""
            for _ in range(40):
                run += nf5_datagram(seq, 30)
                seq += 30
            dgrams, records = dgrams + 40, records + 1200
            if k % 2:
                run += nf5_datagram(seq, 7)
                seq += 7
                dgrams, records = dgrams + 1, records + 7
            s.sendto(run, ("127.0.0.1", nf))
        wait_for("every record counted",
                 lambda: m.metric("mamori_ddos_records_total") - r0 >= records, timeout=20)
        time.sleep(0.5)
        got_r = m.metric("mamori_ddos_records_total") - r0
        got_d = m.metric("mamori_ddos_datagrams_total") - d0
        figure("GSO runs: datagrams, records", f"{got_d}, {got_r}")
        check(got_r == records, f"records {got_r} != {records}")
        check(got_d == dgrams, f"datagrams {got_d} != {dgrams}")
        check(m.metric("mamori_ddos_decode_errors_total") == 0, "decode errors")
        check(m.metric("mamori_ddos_kernel_drops_total") == 0, "kernel drops")
    finally:
        if s:
            s.close()
        m.cleanup()


def main():
    tests = [test_background_raises_nothing, test_amplification_v9_and_sflow,
             test_vector_change_replaces_flowspec, test_carpet_bombing_is_one_attack, test_softflowd_exporter,
             test_gso_runs_cut_exactly]
    try:
        run(tests)
    finally:
        if ENV:
            if ENV.m and ENV.m.proc:
                print(ENV.m.read_log()[-4000:])
            ENV.cleanup()


if __name__ == "__main__":
    main()
