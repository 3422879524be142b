#!/usr/bin/env python3
"""Time to mitigate, end to end, through each BGP speaker.

A real `mamori serve` (sFlow listener, one protected /24, FlowSpec tier at
500 Mbit/s, blackhole tier at 2 Gbit/s, an e-mail channel) mitigates through
GoBGP (gobgpd and its CLI), ExaBGP (its command pipe) and BIRD 2 (the
include file and `birdc configure`), each peering on loopback with a BIRD 2
"router" (tests/integration/peers.BgpLab). A plain SMTP sink on loopback
stamps every message when its DATA ends.

N times per speaker, tools/flowgen.py sends a memcached amplification to a
new host (alternately 0.94 Gbit/s, FlowSpec, and 3.5 Gbit/s, blackhole);
the benchmark reads the decision (the `event=attack_start` log line, ms
resolution) and the announcement (`event=announce`), watches the router's
RIB through a persistent connection to its control socket (a query of its
master4 and flowtab4 tables every POLL_MS, no process per poll), and records:

  first attack datagram -> decision        (detection; bench_ddos covers it)
  decision -> route at the peer            (target: <= 100 ms)
  announcement -> e-mail at the SMTP sink  (target: <= 5 s)
  decision -> e-mail at the SMTP sink
  hold expiry (the `event=hold` line + hold_time) -> route gone at the peer

The `event=announce` line is written once the speaker has taken the route
(the gobgp command returned, the pipe written, `birdc configure` answered),
and the notifier mails in parallel with the mitigation worker: an e-mail
can be at the sink a few ms before that line (a negative figure). The
`event=attack_start` line follows the hand-over to the mitigation worker
by a few microseconds (same thread, no I/O between). Holds are kept in
whole seconds and expire on the worker's one-second tick, so a withdrawal
reaches the peer up to about a second after the nominal expiry.

Prints p50/p95/max per speaker. A benchmark: it prints figures, it never
passes or fails. Loopback only; every daemon is stopped by its own pid.

  python3 bench/ddos_mitigate.py [N] [gobgp|exabgp|bird ...]
      N attacks per speaker (20); BUILD=dir (default build); KEEP=1 keeps
      the lab's directory (logs, configurations) and lists what the sink got.
"""
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
os.environ.setdefault("MAMORI_SOURCE_DIR", SRC)
BUILD = os.environ.get("BUILD", os.path.join(SRC, "build"))
os.environ.setdefault("MAMORI_BIN", os.path.abspath(os.path.join(BUILD, "mamori")))
# bird, birdc and exabgp live in sbin, which a user's PATH may lack.
os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from mamori_test import Mamori, free_port  # noqa: E402
from peers import BgpLab, need  # noqa: E402

FLOWGEN = os.path.join(SRC, "tools", "flowgen.py")
POLL_MS = 2
HOLD_S = 2
SPEAKERS = {"gobgp": "gobgp", "exabgp": "exa", "bird": "spk"}   # backend -> router protocol


class SmtpSink:
    """Plain SMTP on 127.0.0.1: accepts everything, stamps each message with
    the wall clock when its final dot arrives."""

    def __init__(self):
        got = self.got = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                w = self.wfile
                w.write(b"220 sink.test.local ESMTP\r\n")
                while True:
                    line = self.rfile.readline(4096)
                    if not line:
                        return
                    verb = line.split(b" ")[0].strip().upper()
                    if verb in (b"EHLO", b"HELO"):
                        w.write(b"250 sink.test.local\r\n")
                    elif verb == b"DATA":
                        w.write(b"354 go\r\n")
                        data = []
                        while True:
                            dl = self.rfile.readline(65536)
                            if not dl or dl == b".\r\n":
                                break
                            data.append(dl)
                        t = time.time()
                        subj = re.search(rb"^Subject: (.*)$", b"".join(data), re.M | re.I)
                        got.append((t, subj.group(1).decode("utf-8", "replace").strip() if subj else ""))
                        w.write(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        w.write(b"221 bye\r\n")
                        return
                    else:
                        w.write(b"250 ok\r\n")

        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def first(self, *words, after=0.0):
        for t, s in list(self.got):
            if t >= after and all(w in s for w in words):
                return t
        return None

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class Birdc:
    """One connection to BIRD's control socket, kept open: a query costs a
    round trip, not a birdc process."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self._reply()   # 0001 BIRD ... ready.

    def _reply(self):
        out = []
        while True:
            line = self.f.readline()
            if not line:
                raise OSError("BIRD closed its control socket")
            out.append(line)
            if re.match(rb"^\d{4} ", line):
                return b"".join(out).decode("utf-8", "replace")

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\n")
        return self._reply()

    def close(self):
        self.s.close()


def log_time(line):
    """The wall-clock time of a mamori log line (ISO 8601, ms, UTC)."""
    ts = line.split(" ", 1)[0]
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def log_find(m, pattern, after=0.0):
    """Time of the first log line matching pattern, at or after after."""
    try:
        with open(m.log_path, errors="replace") as f:
            for line in f:
                if re.search(pattern, line):
                    try:
                        t = log_time(line)
                    except ValueError:
                        continue
                    if t >= after - 0.002:
                        return t
    except OSError:
        pass
    return None


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def dist(xs, unit_ms=True):
    if not xs:
        return "no samples"
    f = (lambda v: f"{v * 1000:.0f} ms") if unit_ms else (lambda v: f"{v:.2f} s")
    return f"p50 {f(pct(xs, 50))}  p95 {f(pct(xs, 95))}  max {f(max(xs))}  (n={len(xs)})"


def ms(a, b):
    return "-" if a is None or b is None else f"{(a - b) * 1000:.0f} ms"


def serve_config(lab, backend, sf, smtp_port):
    return f"""notify:
  channels:
    - name: mail
      type: smtp
      url: smtp://127.0.0.1:{smtp_port}
      starttls: "off"
      from: mamori@test.local
      to: [noc@test.local]
      max_per_window: 10000
ddos:
  sflow: 127.0.0.1:{sf}
  update_interval: 2s
  groups:
    - name: customers
      prefixes: [203.0.113.0/24]
      trigger: 1s
      cooldown: 2s
      prefix_thresholds:
        total: {{ bps: 10G, pps: 450k }}
      tiers:
        - {{ name: flowspec-discard, bps: 500M }}
        - {{ name: blackhole, bps: 2G }}
mitigation:
  backend: {backend}
  communities: ["65535:666"]
  next_hop_v4: 192.0.2.1
  gobgp_api: 127.0.0.1:{lab.api}
  exabgp_pipe: {lab.fifo}
  bird_include: {lab.include}
  bird_socket: {lab.spk_ctl}
  hold_time: {HOLD_S}s
  command_timeout: 10s
"""


def at_peer(bc, proto, host):
    """'blackhole', 'flowspec' or '' for what the router holds for host."""
    r4 = bc.cmd(f"show route table master4 protocol {proto}")
    f4 = bc.cmd(f"show route table flowtab4 protocol {proto}")
    got = []
    if f"{host}/32" in r4:
        got.append("blackhole")
    if f"dst {host}/32" in f4:
        got.append("flowspec")
    return got


def wait_peer(bc, proto, host, present, timeout):
    """Polls every POLL_MS until the router holds (present) or lacks a route
    for host; the wall-clock time it was first seen so, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = time.time()
        if bool(at_peer(bc, proto, host)) == present:
            return t
        time.sleep(POLL_MS / 1000.0)
    return None


def run_speaker(lab, bc, backend, n, sink, base):
    proto = SPEAKERS[backend]
    sf = free_port(socket.SOCK_DGRAM)
    wd = os.path.join(lab.dir, f"m-{backend}")
    os.makedirs(wd)
    m = Mamori(extra_config=serve_config(lab, backend, sf, sink.port), workdir=wd)
    m.start()
    keys = ("detect", "route", "announce_peer", "mail", "decision_mail", "withdraw", "end_gone")
    res = {k: [] for k in keys}
    try:
        time.sleep(1.5)   # the worker's start-up reconciliation
        for i in range(n):
            host = f"203.0.113.{base + i}"
            pps = 80000 if i % 2 == 0 else 300000
            # Each second's datagrams in the middle of a second (see
            # test_ddos_serve.mid_second).
            time.sleep((0.4 - time.time() % 1.0) % 1.0)
            t0 = time.time()
            gen = subprocess.Popen([sys.executable, FLOWGEN, "--format", "sflow", "--port", str(sf),
                                    "--sampling", "1000", "--attack", "memcached", "--target", host,
                                    "--attack-pps", str(pps), "--attack-start", "0",
                                    "--attack-duration", "3", "--duration", "3", "--seed", str(100 + i)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seen = wait_peer(bc, proto, host, True, 20)
            hre = re.escape(host)
            decided = log_find(m, rf"event=attack_start .*target={hre} ", t0)
            gen.wait(30)
            # Logged once the speaker took it, which may be after the peer
            # has it: read once the attack is over.
            announced = log_find(m, rf"event=announce key=\"[^\"]* {hre}/32", t0)
            if seen is None or decided is None:
                print(f"  {backend} #{i} {host}: route seen={seen} decision={decided}: skipped", flush=True)
                continue
            res["detect"].append(decided - t0)
            res["route"].append(seen - decided)
            if announced is not None:
                res["announce_peer"].append(seen - announced)
            # The e-mail: within 30 s of the announcement, or counted missing.
            deadline = time.time() + 30
            mail = None
            while time.time() < deadline and mail is None:
                mail = sink.first(f"{host}:", after=t0)   # "DDoS attack on H: ..."
                if mail is None:
                    time.sleep(0.02)
            if mail is not None and announced is not None:
                res["mail"].append(mail - announced)
            if mail is not None:
                res["decision_mail"].append(mail - decided)
            # The end: cool-down, hold, withdrawal at the peer.
            gone = wait_peer(bc, proto, host, False, 30)
            held = log_find(m, rf"event=hold key=\"[^\"]* {hre}/32", t0)
            withdrawn = held + HOLD_S if held is not None else None
            ended = log_find(m, rf"event=attack_end .*target={hre} ", t0)
            if gone is not None and withdrawn is not None:
                res["withdraw"].append(gone - withdrawn)
            if gone is not None and ended is not None:
                res["end_gone"].append(gone - ended)
            print(f"  {backend} #{i} {host} {'fs' if pps == 80000 else 'bh'}: decision->peer "
                  f"{ms(seen, decided)}, mail {ms(mail, announced)}, hold expiry->gone {ms(gone, withdrawn)}",
                  flush=True)
    finally:
        m.stop()
    return res


def main():
    args = sys.argv[1:]
    n = int(args.pop(0)) if args and args[0].isdigit() else int(os.environ.get("N", "20"))
    speakers = args or list(SPEAKERS)
    try:
        need("bird", "birdc")
    except Exception as e:   # a benchmark reports, it does not fail
        print(f"ddos_mitigate: not run: {e}")
        return 0
    if not os.path.exists(os.environ["MAMORI_BIN"]):
        print(f"no {os.environ['MAMORI_BIN']}: build first (make build)")
        return 1
    lab = BgpLab()
    sink = SmtpSink()
    results = {}
    try:
        lab.start_router()
        bc = Birdc(lab.ctl)
        for k, sp in enumerate(speakers):
            try:
                if sp == "gobgp":
                    need("gobgpd", "gobgp")
                    lab.start_gobgp()
                elif sp == "exabgp":
                    need("exabgp")
                    lab.start_exabgp()
                elif sp == "bird":
                    lab.start_speaker()
                else:
                    print(f"unknown speaker {sp}")
                    continue
            except Exception as e:   # a missing speaker skips its row
                print(f"== {sp}: not run ({e})")
                continue
            print(f"== {sp}: {n} attacks (sFlow 1:1000, memcached, FlowSpec and blackhole tiers, "
                  f"hold {HOLD_S} s, peer polled every {POLL_MS} ms)", flush=True)
            results[sp] = run_speaker(lab, bc, sp, n, sink, 10 + 60 * k)
        bc.close()
    finally:
        sink.stop()
        if os.environ.get("KEEP") == "1":
            print("\n".join(f"{t:.3f} {subj}" for t, subj in sink.got))
            lab.stop()
            print(f"kept {lab.dir}")
        else:
            lab.cleanup()
    print()
    print(f"== time to mitigate ({os.cpu_count()} CPUs; a shared machine is noisy)")
    for sp, r in results.items():
        print(f"{sp}:")
        print(f"  first attack datagram -> decision : {dist(r['detect'], False)}")
        print(f"  decision -> route at the peer     : {dist(r['route'])}")
        print(f"  announcement -> route at the peer : {dist(r['announce_peer'])}")
        print(f"  announcement -> e-mail received   : {dist(r['mail'])}")
        print(f"  decision -> e-mail received       : {dist(r['decision_mail'])}")
        print(f"  hold expiry -> route gone at peer : {dist(r['withdraw'])}")
        print(f"  attack end -> route gone (hold {HOLD_S} s): {dist(r['end_gone'], False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
