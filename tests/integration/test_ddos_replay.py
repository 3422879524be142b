#!/usr/bin/env python3
"""`mamori ddos replay` on pcap files the test writes:

- a mirror-port capture (Ethernet, snap length 64) of a memcached reflection
  at 3,000 packets/s of 1,400 bytes for 12 s against 203.0.113.10, with
  benign TCP to other hosts around it: one attack, named memcached
  amplification, that starts and ends on the capture's clock;
- the same attack as a router's NetFlow v5 export (flow records of one second
  each, in UDP datagrams to port 2055), read as flow export, not as traffic;
- a capture with only the benign traffic: no attack;
- a file that is not a pcap: a clear error, exit status 1.
"""
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, check, run  # noqa: E402

T0 = 1_790_000_000  # capture start (epoch seconds)
TARGET = bytes([203, 0, 113, 10])


def pcap_header(linktype=1, snaplen=64):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def record(ts, data, wire_len=None):
    sec, usec = int(ts), int((ts - int(ts)) * 1e6)
    return struct.pack("<IIII", sec, usec, len(data), wire_len or len(data)) + data


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, total_len=None):
    tl = total_len or 20 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl, 0, 0, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def eth(ip):
    return b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02" + b"\x08\x00" + ip


def udp(sport, dport, payload, length=None):
    return struct.pack("!HHHH", sport, dport, length or 8 + len(payload), 0) + payload


def benign(rng, t):
    src = bytes([198, 51, 100, rng.randrange(1, 250)])
    dst = bytes([203, 0, 113, rng.randrange(20, 30)])
    tcp = struct.pack("!HHIIBBHHH", rng.randrange(1024, 65535), 443, 1, 0, 0x50, 0x10, 65535, 0, 0)
    return record(t, eth(ipv4(src, dst, 6, tcp))[:64], 14 + 40 + 1000)


def mirror_pcap(path, attack=True):
    rng = random.Random(7)
    with open(path, "wb") as f:
        f.write(pcap_header())
        for s in range(40):
            for i in range(50):
                f.write(benign(rng, T0 + s + i / 50))
            if attack and 10 <= s < 22:
                for i in range(3000):
                    src = bytes([192, 0, 2, rng.randrange(1, 250)])
                    frame = eth(ipv4(src, TARGET, 17, udp(11211, 40000, b"VALUE x", 1400 - 28),
                                     total_len=1400))
                    f.write(record(T0 + s + i / 3000, frame[:64], 14 + 1400))


def nf5_pcap(path):
    """The same memcached reflection as NetFlow v5 from 127.0.0.2."""
    with open(path, "wb") as f:
        f.write(pcap_header(snaplen=65535))
        seq = 0
        for s in range(40):
            recs = []
            if 10 <= s < 22:
                for k in range(30):  # 30 sources x 100 pkts = 3,000 pps
                    recs.append(struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH",
                                            bytes([192, 0, 2, 10 + k]), TARGET, b"\0\0\0\0",
                                            1, 2, 100, 100 * 1400, 0, 0, 11211, 40000,
                                            0, 0, 17, 0, 0, 0, 24, 24, 0))
            recs.append(struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH",
                                    bytes([198, 51, 100, 7]), bytes([203, 0, 113, 20]), b"\0\0\0\0",
                                    1, 2, 50, 50 * 1000, 0, 0, 50000, 443, 0, 0x18, 6, 0,
                                    0, 0, 24, 24, 0))
            # sysUptime 1000 s; flows from uptime-1000 ms to uptime.
            uptime = 1_000_000 + s * 1000
            for r_i in range(0, len(recs), 30):
                chunk = recs[r_i:r_i + 30]
                fixed = []
                for r in chunk:
                    fields = list(struct.unpack("!4s4s4sHHIIIIHHBBBBHHBBH", r))
                    fields[7], fields[8] = uptime - 1000, uptime
                    fixed.append(struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", *fields))
                hdr = struct.pack("!HHIIIIBBH", 5, len(fixed), uptime, T0 + s, 0, seq, 0, 0, 0)
                seq += len(fixed)
                payload = hdr + b"".join(fixed)
                frame = eth(ipv4(bytes([127, 0, 0, 2]), bytes([127, 0, 0, 1]), 17,
                                 udp(40001, 2055, payload)))
                f.write(record(T0 + s + 0.5, frame))


CONFIG = """data_dir: {d}/var
ddos:
  netflow: ""
  sflow: ""
  groups:
    - name: hosting
      prefixes: [203.0.113.0/24]
      trigger: 2s
      cooldown: 5s
      thresholds:
        total: {{ pps: 1k }}
"""


def replay(d, *files, extra=()):
    conf = os.path.join(d, "m.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(d=d))
    return subprocess.run([BIN, "ddos", "replay", "-c", conf, *extra, *files],
                          capture_output=True, text=True, timeout=120)


def test_mirror_capture():
    d = tempfile.mkdtemp()
    p = os.path.join(d, "mirror.pcap")
    mirror_pcap(p)
    r = replay(d, p)
    check(r.returncode == 0, f"{r.returncode} {r.stderr}")
    starts = [ln for ln in r.stdout.splitlines() if " start: " in ln]
    ends = [ln for ln in r.stdout.splitlines() if " end: " in ln]
    check(len(starts) == 1 and "203.0.113.10" in starts[0] and "memcached" in starts[0],
          f"one memcached attack on 203.0.113.10 expected:\n{r.stdout}\n{r.stderr}")
    check(len(ends) == 1, f"the attack must end on the capture's clock:\n{r.stdout}")
    check("attacks 1" in r.stderr and "traffic packets" in r.stderr, r.stderr)
    # The attack started in the capture's second 10-12, not at replay time.
    check(starts[0].startswith("2026-09-21T"), starts[0])
    r = replay(d, p, extra=("--json",))
    check('"ddos-attack-started"' in r.stdout and '"203.0.113.10"' in r.stdout, r.stdout[:500])
    shutil.rmtree(d, ignore_errors=True)


def test_flow_export_capture():
    d = tempfile.mkdtemp()
    p = os.path.join(d, "nf5.pcap")
    nf5_pcap(p)
    r = replay(d, p)
    check(r.returncode == 0, f"{r.returncode} {r.stderr}")
    check("flow datagrams 52 (0 malformed" in r.stderr and "traffic packets 0" in r.stderr, r.stderr)
    starts = [ln for ln in r.stdout.splitlines() if " start: " in ln]
    check(len(starts) == 1 and "203.0.113.10" in starts[0], f"{r.stdout}\n{r.stderr}")
    # Named at the start, or (from fewer than 32 records: "classifying")
    # by the update that follows; named at the end either way.
    named = [ln for ln in r.stdout.splitlines() if "203.0.113.10: memcached amplification" in ln]
    ends = [ln for ln in r.stdout.splitlines() if " end: " in ln]
    check(named and ends and "memcached amplification" in ends[0] and
          ("memcached" in starts[0] or "(classifying)" in starts[0]), f"{r.stdout}\n{r.stderr}")
    shutil.rmtree(d, ignore_errors=True)


def test_benign_and_bad_input():
    d = tempfile.mkdtemp()
    p = os.path.join(d, "benign.pcap")
    mirror_pcap(p, attack=False)
    r = replay(d, p)
    check(r.returncode == 0 and " start: " not in r.stdout and "attacks 0" in r.stderr,
          f"{r.stdout} {r.stderr}")
    bad = os.path.join(d, "bad.pcap")
    with open(bad, "wb") as f:
        f.write(b"not a capture at all")
    r = replay(d, bad)
    check(r.returncode == 1 and "bad.pcap" in r.stderr, f"{r.returncode} {r.stderr}")
    # No protected group: a configuration error.
    conf = os.path.join(d, "none.yaml")
    with open(conf, "w") as f:
        f.write(f"data_dir: {d}/var\n")
    r = subprocess.run([BIN, "ddos", "replay", "-c", conf, p], capture_output=True, text=True)
    check(r.returncode == 2 and "ddos.groups" in r.stderr, r.stderr)
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_mirror_capture, test_flow_export_capture, test_benign_and_bad_input])
