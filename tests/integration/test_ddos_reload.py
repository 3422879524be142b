#!/usr/bin/env python3
"""SIGHUP reload of the `ddos:` section in a running `mamori serve`.

A private serve protects 203.0.113.0/24 (TEST-NET-3: the addresses are only
values inside the flows; every datagram goes to 127.0.0.1) with a host
threshold far above the traffic, one tier (FlowSpec discard at 100 Mbit/s)
and mitigation back-end "none" (decided and recorded, never sent; hold
time 10 minutes). tools/flowgen.py sends sFlow (1:1000) of a memcached
amplification to .10 at 80 kpps (0.94 Gbit/s) for the whole run:

  - under the threshold: no attack;
  - a file with the threshold lowered but a bad ddos section, then SIGHUP:
    the error is logged and nothing is detected (the running
    configuration stays);
  - the threshold lowered below the traffic, SIGHUP: the reload is logged
    with its counts, and the attack is detected (/api/v1/ddos/attacks)
    and its mitigation recorded;
  - a bad ddos section again, SIGHUP: logged, the attack goes on (the
    same one, still active);
  - the same threshold with a changed cool-down, SIGHUP: the attack goes
    on, no new one starts;
  - .10 put on allow_destinations, SIGHUP: the attack ends and its
    mitigation is withdrawn at once, not after the 10-minute hold.

Every process is stopped by its own process id.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import SRC, Mamori, TestFailure, check, free_port, run  # noqa: E402
from peers import wait_for  # noqa: E402

FLOWGEN = os.path.join(SRC, "tools", "flowgen.py")
TARGET = "203.0.113.10"


def ddos_section(sf, pps, cooldown="4s", allow="", bad=False):
    bad_line = "        udp: { pps: lots }\n" if bad else ""
    allow_line = f"  allow_destinations: [{allow}]\n" if allow else ""
    return f"""ddos:
  netflow: ""
  sflow: 127.0.0.1:{sf}
  update_interval: 2s
{allow_line}  groups:
    - name: customers
      prefixes: [203.0.113.0/24]
      trigger: 2s
      cooldown: {cooldown}
      baseline: 0
      thresholds:
        total: {{ bps: 100G, pps: {pps} }}
        amplification: {{ bps: 100G }}
        fragment: {{ pps: off }}
{bad_line}      tiers:
        - {{ name: flowspec-discard, bps: 100M }}
mitigation:
  backend: none
  hold_time: 600s
"""


class Env:
    def __init__(self):
        self.sf = free_port(socket.SOCK_DGRAM)
        self.m = Mamori(extra_config=ddos_section(self.sf, "1M"))
        self.gen = None
        self.gen_log = None

    def rewrite(self, **kw):
        """The serve's file with another ddos: section (the rest as written)."""
        with open(self.m.config) as f:
            text = f.read()
        head = text[:text.index("ddos:\n")]
        tail = text[text.index("mail:\n"):] if "mail:\n" in text else ""
        with open(self.m.config, "w") as f:
            f.write(head + ddos_section(self.sf, **kw) + tail)

    def hup(self):
        mark = len(self.log())
        self.m.proc.send_signal(signal.SIGHUP)
        wait_for_log(self, r"event=(reloaded|reload_failed) ", since=mark)
        return mark

    def log(self):
        with open(self.m.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start_flows(self, seconds):
        self.gen_log = tempfile.NamedTemporaryFile(prefix="flowgen-", suffix=".log", delete=False)
        self.gen = subprocess.Popen(
            [sys.executable, FLOWGEN, "--format", "sflow", "--port", str(self.sf),
             "--sampling", "1000", "--attack", "memcached", "--target", TARGET,
             "--attack-pps", "80000", "--attack-start", "0", "--attack-duration", str(seconds),
             "--background-pps", "2000", "--duration", str(seconds), "--seed", "7"],
            stdout=self.gen_log, stderr=subprocess.STDOUT)

    def stop_flows(self):
        if self.gen and self.gen.poll() is None:
            self.gen.send_signal(signal.SIGTERM)
            try:
                self.gen.wait(10)
            except subprocess.TimeoutExpired:
                self.gen.kill()
                self.gen.wait()
        self.gen = None
        if self.gen_log:
            self.gen_log.close()
            os.unlink(self.gen_log.name)
            self.gen_log = None


def wait_for_log(e, pattern, since=0, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, e.log()[since:])
        if m:
            return m
        time.sleep(0.1)
    raise TestFailure(f"no log line /{pattern}/ after {timeout}s:\n{e.log()[since:][-3000:]}")


def api(e, path, params=None):
    status, body = e.m.get(path, params)
    check(status == 200, f"GET {path}: {status} {body[:300]!r}")
    return json.loads(body)


def attacks(e, **params):
    return api(e, "/api/v1/ddos/attacks", params)["attacks"]


def mitigations(e):
    ans = api(e, "/api/v1/ddos/mitigations")
    return ans["mitigations"] if isinstance(ans, dict) else ans


def wait_until(what, fn, timeout=20):
    return wait_for(what, fn, timeout=timeout, interval=0.2)


E = None


def test_reload_thresholds_and_allow_list():
    global E
    e = E = Env()
    e.m.start()
    e.start_flows(120)
    time.sleep(6)   # delay + trigger + a margin
    check(attacks(e) == [], f"attacks under the threshold: {attacks(e)}")

    # A bad ddos section: refused, logged, nothing changes.
    e.rewrite(pps="20k", bad=True)
    mark = e.hup()
    line = wait_for_log(e, r"event=reload_failed error=\"[^\"]*udp[^\"]*\"", since=mark).group(0)
    check("running configuration stays" in e.log()[mark:], f"hint: {line}")
    check("event=ddos_reloaded" not in e.log()[mark:], "a bad file was put in force")
    time.sleep(5)
    check(attacks(e) == [], f"attacks after a refused reload: {attacks(e)}")

    # The threshold below the traffic: detected without a restart.
    t = time.time()
    e.rewrite(pps="20k")
    mark = e.hup()
    line = wait_for_log(e, r"event=ddos_reloaded [^\n]*", since=mark).group(0)
    check("groups=1 " in line and "prefixes=1 " in line and "tiers=1 " in line, line)
    check("attacks_kept=0 " in line and "attacks_ended=0 " in line, line)
    check("event=reload_needs_restart" not in e.log()[mark:], e.log()[mark:])
    # Detected, and named (it may show "unclassified flood (classifying)"
    # until enough of its records are in).
    got = wait_until("the attack detected and named after the reload",
                     lambda: [a for a in attacks(e, active="true") if a["target"] == TARGET
                              and "classifying" not in a["summary"]])
    print(f"FIGURE SIGHUP -> attack detected and named: {time.time() - t:.2f} s", flush=True)
    attack = got[0]
    check("memcached amplification" in attack["summary"], attack)
    check(attack["group"] == "customers", attack)
    mit = wait_until("the attack's mitigation recorded",
                     lambda: [x for x in mitigations(e) if x.get("attack_id") == attack["attack_id"]])
    check(mit[0]["dry_run"] and mit[0]["state"] == "active", mit)

    # Bad again: the running configuration, and the attack, go on.
    e.rewrite(pps="20k", bad=True)
    mark = e.hup()
    wait_for_log(e, r"event=reload_failed", since=mark)
    time.sleep(3)
    now = [a for a in attacks(e, active="true") if a["target"] == TARGET]
    check(len(now) == 1 and now[0]["id"] == attack["id"], f"after a refused reload: {now}")

    # A changed cool-down: the same attack goes on, none starts.
    e.rewrite(pps="20k", cooldown="6s")
    mark = e.hup()
    line = wait_for_log(e, r"event=ddos_reloaded [^\n]*", since=mark).group(0)
    check("attacks_kept=1 " in line and "attacks_ended=0 " in line, line)
    time.sleep(4)
    every = [a for a in attacks(e) if a["target"] == TARGET]
    check(len(every) == 1 and every[0]["active"], f"one attack, still active: {every}")

    # Allow-listed: the attack ends and its mitigation goes now, not after
    # the 10-minute hold.
    t = time.time()
    e.rewrite(pps="20k", cooldown="6s", allow=TARGET)
    mark = e.hup()
    line = wait_for_log(e, r"event=ddos_reloaded [^\n]*", since=mark).group(0)
    check("attacks_ended=1 " in line and "allow_destinations=1 " in line, line)
    wait_for_log(e, r"event=attack_end [^\n]*ended by a reload: the target is allow-listed", since=mark)
    ended = wait_until("the attack ended", lambda: [a for a in attacks(e, target=TARGET)
                                                    if a["id"] == attack["id"] and not a["active"]])
    check(ended[0]["end"], ended)
    wait_until("the mitigation withdrawn", lambda: not [x for x in mitigations(e)
                                                        if TARGET in x.get("target", "")], timeout=10)
    print(f"FIGURE SIGHUP (allow-listed) -> mitigation withdrawn: {time.time() - t:.2f} s", flush=True)
    wait_for_log(e, r"event=hold [^\n]*released: withdrawn without a hold", since=mark)
    wait_for_log(e, r"event=withdraw [^\n]*" + re.escape(TARGET), since=mark)

    e.stop_flows()
    rc = e.m.stop()
    check(rc == 0, f"serve exit status {rc}")


def main():
    try:
        run([test_reload_thresholds_and_allow_list])
    finally:
        if E:
            E.stop_flows()
            E.m.cleanup()


if __name__ == "__main__":
    main()
