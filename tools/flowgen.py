#!/usr/bin/env python3
"""flowgen: a flow-export traffic generator for testing mamori's DDoS pillar.

It simulates what a router sees -- background traffic plus an optional
attack -- second by second, samples it 1-in-N packets as a router would,
and exports the result as NetFlow v5, NetFlow v9, IPFIX or sFlow v5:

  * NetFlow/IPFIX: sampled packets are aggregated into flows in a flow
    cache; a flow is exported when it has been active for --active-timeout
    seconds or idle for --inactive-timeout seconds (and at the end), so a
    long attack arrives as records that each cover up to the active
    timeout, as from a real router. v9 and IPFIX announce the sampling rate
    in options data; v5 puts it in the header.
  * sFlow: every sampled packet is a flow sample with the packet's header
    (Ethernet, IPv4/IPv6, TCP/UDP/ICMP) and frame length; interface counter
    samples follow every 20 s.

Attack profiles: memcached (UDP from 11211, large fragmented responses),
dns (UDP from 53, fragmented), ntp (UDP from 123, 468-byte monlist
replies), syn (TCP SYN flood from random spoofed sources), carpet (UDP
reflection from 53/123/11211/1900/389 spread over every host of a /24 or
of the given prefix). IPv6 targets work with v9, IPFIX and sFlow.

Datagrams go over UDP to a loopback address (--host 127.0.0.1, the only
kind of address it sends to; --bind picks the loopback source address, so
several runs are several exporters), paced in real time unless --fast, or
to a file with --write: each datagram as a 2-byte big-endian length
followed by its bytes (the format bench_flow and the flow fuzzers read).
--drop N,M,... leaves out the N-th, M-th ... datagram (counted from 1)
after its sequence number was taken, as a lossy path would: a collector
that follows export sequence numbers should count exactly what the summary
says was dropped (flows for v5, data records for IPFIX, datagrams for v9
and sFlow). A summary of what was simulated (true packets and bytes per
stream, what was exported, sent and dropped) goes to stderr at the end, so
a test can compare what a collector reports with the truth.

Python 3 standard library only. Examples:

  tools/flowgen.py --format ipfix --port 2055 --attack memcached \\
      --target 203.0.113.10 --attack-pps 200000 --sampling 1000 --duration 60
  tools/flowgen.py --format sflow --write /tmp/carpet.flows --attack carpet \\
      --target 203.0.113.0/24 --attack-pps 508000 --duration 20
  tools/flowgen.py --format ipfix --bind 127.0.0.2 --drop 5,9 --duration 10
"""

import argparse
import ipaddress
import random
import socket
import struct
import sys
import time

MTU_PAYLOAD = 1400            # bytes of flow export per datagram, at most
TEMPLATE_EVERY = 20           # datagrams between template/options resends
COUNTER_INTERVAL = 20         # seconds between sFlow counter samples
SFLOW_HEADER_BYTES = 128      # bytes of each sampled packet kept

# name: (protocol, source port, IP packet size, share of later fragments)
VECTORS = {
    "memcached": (17, 11211, 1428, 0.5),
    "dns": (17, 53, 1500, 0.5),
    "ntp": (17, 123, 468, 0.0),
    "ssdp": (17, 1900, 320, 0.0),
    "cldap": (17, 389, 1472, 0.3),
}
CARPET_VECTORS = ["dns", "ntp", "memcached", "ssdp", "cldap"]

IF_UPLINK, IF_CUSTOMER = 1, 2


class Pkt:
    """One simulated packet (before sampling, a packet stands for itself)."""
    __slots__ = ("src", "dst", "sport", "dport", "proto", "flags", "size",
                 "frag", "icmp", "inbound")

    def __init__(self, src, dst, sport, dport, proto, size, flags=0, frag=0,
                 icmp=0, inbound=True):
        self.src, self.dst = src, dst          # ipaddress objects
        self.sport, self.dport = sport, dport
        self.proto, self.flags, self.size = proto, flags, size
        self.frag = frag                        # 0 none, 1 first, 2 later
        self.icmp = icmp                        # type << 8 | code
        self.inbound = inbound


class Stream:
    """Packets at a rate between two times; make() builds one packet."""

    def __init__(self, name, pps, start, end, make):
        self.name, self.pps, self.start, self.end, self.make = name, pps, start, end, make
        self.true_pkts = self.true_bytes = self.sampled = 0

    def active(self, t):
        return self.start <= t < self.end


def rand_host(rng, net):
    """A random host address inside net (not the network or broadcast)."""
    size = net.num_addresses
    if size <= 2:
        return net.network_address
    return net.network_address + rng.randrange(1, size - 1)


def make_streams(args, rng):
    """The background and attack streams the options describe."""
    v6 = args.target is not None and ":" in args.target
    protected = ipaddress.ip_network(args.protected or
                                     ("2001:db8:100::/64" if v6 else "203.0.113.0/24"))
    clients = ipaddress.ip_network("2001:db8:200::/48" if v6 else "198.51.100.0/24")
    reflectors = ipaddress.ip_network("2001:db8:300::/40" if v6 else "100.64.0.0/10")
    servers = [rand_host(rng, protected) for _ in range(16)]
    conns = [(rand_host(rng, clients), rng.choice(servers), rng.randrange(1024, 65535),
              rng.choice([443, 443, 443, 80, 22])) for _ in range(200)]
    streams = []

    def background():
        c = rng.choice(conns)
        r = rng.random()
        if r < 0.80:     # web in and out
            if rng.random() < 0.6:
                return Pkt(c[0], c[1], c[2], c[3], 6, rng.choice([52, 52, 1500]), 0x10)
            return Pkt(c[1], c[0], c[3], c[2], 6, rng.choice([52, 1500, 1500]), 0x18,
                       inbound=False)
        if r < 0.95:     # DNS queries from the servers
            return Pkt(c[1], c[0], rng.randrange(1024, 65535), 53, 17, 80, inbound=False)
        return Pkt(c[0], c[1], 0, 0, 58 if v6 else 1, 84, icmp=0x8000 if v6 else 0x0800)

    if args.background_pps > 0:
        streams.append(Stream("background", args.background_pps, 0, args.duration,
                              background))
    if args.attack == "none":
        return streams
    target = ipaddress.ip_network(args.target or ("203.0.113.0/24" if args.attack == "carpet"
                                                  else "203.0.113.10"), strict=False)
    srcs = [rand_host(rng, reflectors) for _ in range(args.sources)]

    def reflected(vec):
        proto, sport, size, later = VECTORS[vec]

        def make():
            dst = target.network_address if target.num_addresses == 1 else rand_host(rng, target)
            src = rng.choice(srcs)
            if rng.random() < later:
                return Pkt(src, dst, 0, 0, proto, 1500 if size > 1000 else size, frag=2)
            return Pkt(src, dst, sport, rng.randrange(1024, 65535), proto, size,
                       frag=1 if later else 0)
        return make

    def syn():
        dst = target.network_address if target.num_addresses == 1 else rand_host(rng, target)
        return Pkt(rand_host(rng, reflectors), dst, rng.randrange(1024, 65535),
                   rng.choice([80, 443]), 6, 40 if dst.version == 4 else 60, 0x02)

    def carpet():
        return reflected(rng.choice(CARPET_VECTORS))()

    make = {"syn": syn, "carpet": carpet}.get(args.attack) or reflected(args.attack)
    streams.append(Stream(args.attack, args.attack_pps, args.attack_start,
                          args.attack_start + args.attack_duration, make))
    return streams


class FlowCache:
    """A router's flow cache over sampled packets, with active and inactive
    timeouts."""

    def __init__(self, active_s, inactive_s):
        self.active_ms, self.inactive_ms = active_s * 1000, inactive_s * 1000
        self.flows = {}

    def add(self, p, ms):
        key = (p.src, p.dst, p.sport, p.dport, p.proto, p.frag == 2, p.icmp)
        f = self.flows.get(key)
        if f is None:
            f = self.flows[key] = {"p": p, "first": ms, "last": ms, "pkts": 0,
                                   "bytes": 0, "flags": 0}
        f["last"] = max(f["last"], ms)
        f["pkts"] += 1
        f["bytes"] += p.size
        f["flags"] |= p.flags

    def expire(self, now_ms, force=False):
        out = []
        for key, f in list(self.flows.items()):
            if (force or now_ms - f["first"] >= self.active_ms or
                    now_ms - f["last"] >= self.inactive_ms):
                out.append(f)
                del self.flows[key]
        return out


def ip_bytes(a):
    return a.packed


# ---- NetFlow v5 ----

class V5:
    def __init__(self, args, boot_ms):
        self.boot_ms, self.seq, self.rate = boot_ms, 0, args.sampling
        self.engine = args.exporter_id & 0xffff
        # Per datagram made: (flow records, what its sequence advanced by,
        # whether it carries templates).
        self.info = []

    def encode(self, flows, now_ms):
        flows = [f for f in flows if f["p"].src.version == 4]
        out = []
        for i in range(0, len(flows), 30):
            chunk = flows[i:i + 30]
            up = (now_ms - self.boot_ms) & 0xffffffff
            hdr = struct.pack("!HHIIIIBBH", 5, len(chunk), up, now_ms // 1000,
                              (now_ms % 1000) * 1000000, self.seq, self.engine >> 8,
                              self.engine & 0xff,
                              (0x4000 | min(self.rate, 0x3fff)) if self.rate > 1 else 0)
            body = b"".join(self.rec(f) for f in chunk)
            self.seq += len(chunk)
            self.info.append((len(chunk), len(chunk), False))
            out.append(hdr + body)
        return out

    def rec(self, f):
        p = f["p"]
        dport = p.icmp if p.proto == 1 else p.dport
        ifin, ifout = (IF_UPLINK, IF_CUSTOMER) if p.inbound else (IF_CUSTOMER, IF_UPLINK)
        return struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", ip_bytes(p.src), ip_bytes(p.dst),
                           b"\0\0\0\0", ifin, ifout, f["pkts"], f["bytes"],
                           (f["first"] - self.boot_ms) & 0xffffffff,
                           (f["last"] - self.boot_ms) & 0xffffffff, p.sport, dport,
                           0, f["flags"], p.proto, 0, 0, 0, 0, 0, 0)


# ---- NetFlow v9 and IPFIX ----

class Templated:
    """What v9 and IPFIX share: templates for IPv4 and IPv6 flows, options
    data with the sampling rate, packing records into datagrams."""

    T4, T6, TOPT = 256, 257, 258

    def __init__(self, args, boot_ms):
        self.boot_ms, self.rate, self.domain = boot_ms, args.sampling, args.exporter_id
        self.seq = 0
        self.sent = 0
        self.info = []      # per datagram, as V5.info

    def encode(self, flows, now_ms):
        """Datagrams for flows: templates and options data first when due,
        then data sets, each datagram at most MTU_PAYLOAD bytes of sets."""
        out, sets, size, nrec, ndata, tmpl = [], [], 0, 0, 0, False
        if self.sent % TEMPLATE_EVERY == 0:
            sets = [self.template_set(), self.options_template_set(), self.options_data()]
            size = sum(len(s) for s in sets)
            nrec, ndata = 4, 1      # 2 templates, 1 options template, 1 options record
            tmpl = True
        by_tid = {self.T4: [], self.T6: []}
        for f in flows:
            by_tid[self.T6 if f["p"].src.version == 6 else self.T4].append(f)
        for tid, fl in by_tid.items():
            recs, rlen = [], 0
            for f in fl:
                r = self.record(f, tid == self.T6)
                if size + 4 + rlen + len(r) + 3 > MTU_PAYLOAD and (recs or sets):
                    if recs:
                        sets.append(self.set(tid, b"".join(recs)))
                        nrec += len(recs)
                        ndata += len(recs)
                    out.append(self.message(sets, nrec, ndata, now_ms))
                    self.info.append((ndata - tmpl, self.seq_units(ndata), tmpl))
                    sets, size, nrec, ndata, recs, rlen, tmpl = [], 0, 0, 0, [], 0, False
                recs.append(r)
                rlen += len(r)
            if recs:
                s = self.set(tid, b"".join(recs))
                sets.append(s)
                size += len(s)
                nrec += len(recs)
                ndata += len(recs)
        if sets:
            out.append(self.message(sets, nrec, ndata, now_ms))
            self.info.append((ndata - tmpl, self.seq_units(ndata), tmpl))
        return out

    @staticmethod
    def fields_pack(fields):
        return b"".join(struct.pack("!HH", t, n) for t, n in fields)


class V9(Templated):
    F4 = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (5, 1), (1, 4), (2, 4),
          (22, 4), (21, 4), (10, 2), (14, 2), (88, 2), (32, 2)]
    F6 = [(27, 16), (28, 16)] + F4[2:14] + [(139, 2)]

    def template_set(self):
        body = b"".join(struct.pack("!HH", tid, len(f)) + self.fields_pack(f)
                        for tid, f in ((self.T4, self.F4), (self.T6, self.F6)))
        return self.set(0, body)

    def options_template_set(self):
        # scope System (4 bytes); SAMPLING_INTERVAL (4), SAMPLING_ALGORITHM (1)
        body = struct.pack("!HHH", self.TOPT, 4, 8) + self.fields_pack([(1, 4)]) + \
            self.fields_pack([(34, 4), (35, 1)])
        return self.set(1, body)

    def options_data(self):
        return self.set(self.TOPT, struct.pack("!IIB", 0, self.rate, 2))

    @staticmethod
    def set(sid, body):
        pad = (-len(body)) % 4
        return struct.pack("!HH", sid, 4 + len(body) + pad) + body + b"\0" * pad

    def record(self, f, v6):
        p = f["p"]
        ifin, ifout = (IF_UPLINK, IF_CUSTOMER) if p.inbound else (IF_CUSTOMER, IF_UPLINK)
        tail = struct.pack("!HHBBBIIIIHHHH", p.sport, p.dport, p.proto, f["flags"], 0,
                           f["bytes"] & 0xffffffff, f["pkts"] & 0xffffffff,
                           (f["first"] - self.boot_ms) & 0xffffffff,
                           (f["last"] - self.boot_ms) & 0xffffffff, ifin, ifout,
                           185 if p.frag == 2 else 0, p.icmp)
        return ip_bytes(p.src) + ip_bytes(p.dst) + tail

    @staticmethod
    def seq_units(ndata):
        return 1            # the sequence counts export packets

    def message(self, sets, nrec, ndata, now_ms):
        self.sent += 1
        self.seq += 1
        up = (now_ms - self.boot_ms) & 0xffffffff
        return struct.pack("!HHIIII", 9, nrec, up, now_ms // 1000, self.seq,
                           self.domain) + b"".join(sets)


class IPFIX(Templated):
    F4 = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 2), (5, 1), (1, 8), (2, 8),
          (152, 8), (153, 8), (10, 4), (14, 4), (88, 2), (32, 2)]
    F6 = [(27, 16), (28, 16)] + F4[2:14] + [(139, 2)]

    def template_set(self):
        body = b"".join(struct.pack("!HH", tid, len(f)) + self.fields_pack(f)
                        for tid, f in ((self.T4, self.F4), (self.T6, self.F6)))
        return self.set(2, body)

    def options_template_set(self):
        # scope observationDomainId; samplingInterval, samplingAlgorithm
        body = struct.pack("!HHH", self.TOPT, 3, 1) + \
            self.fields_pack([(149, 4), (34, 4), (35, 1)])
        return self.set(3, body)

    def options_data(self):
        return self.set(self.TOPT, struct.pack("!IIB", self.domain, self.rate, 2))

    @staticmethod
    def set(sid, body):
        return struct.pack("!HH", sid, 4 + len(body)) + body

    @staticmethod
    def seq_units(ndata):
        return ndata        # the sequence counts data records (options ones too)

    def record(self, f, v6):
        p = f["p"]
        ifin, ifout = (IF_UPLINK, IF_CUSTOMER) if p.inbound else (IF_CUSTOMER, IF_UPLINK)
        tail = struct.pack("!HHBHBQQQQIIHH", p.sport, p.dport, p.proto, f["flags"], 0,
                           f["bytes"], f["pkts"], f["first"], f["last"], ifin, ifout,
                           185 if p.frag == 2 else 0, p.icmp)
        return ip_bytes(p.src) + ip_bytes(p.dst) + tail

    def message(self, sets, nrec, ndata, now_ms):
        self.sent += 1
        body = b"".join(sets)
        msg = struct.pack("!HHIII", 10, 16 + len(body), now_ms // 1000,
                          self.seq & 0xffffffff, self.domain) + body
        self.seq += ndata    # RFC 7011: data records sent before this message
        return msg


# ---- sFlow v5 ----

def packet_header(p):
    """The first bytes of the frame of p as it was on the wire, and the
    frame length (Ethernet header and FCS included)."""
    eth = b"\x00\x11\x22\x33\x44\x55\x00\x66\x77\x88\x99\xaa"
    if p.proto == 6:
        l4 = struct.pack("!HHIIBBHHH", p.sport, p.dport, 1, 0, 0x50, p.flags, 1024, 0, 0)
    elif p.proto in (1, 58):
        l4 = struct.pack("!BBHI", p.icmp >> 8, p.icmp & 0xff, 0, 0)
    else:
        l4 = struct.pack("!HHHH", p.sport, p.dport, max(8, p.size - 20), 0)
    if p.src.version == 4:
        frag = 0
        if p.frag == 1:
            frag = 0x2000
        elif p.frag == 2:
            frag, l4 = 185, b""
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, p.size, 1, frag, 64, p.proto, 0,
                         ip_bytes(p.src), ip_bytes(p.dst))
        eth += b"\x08\x00"
    else:
        nh, ext = p.proto, b""
        if p.frag:
            off = 0 if p.frag == 1 else 185
            ext = struct.pack("!BBHI", p.proto, 0, (off << 3) | (p.frag == 1), 7)
            nh = 44
            if p.frag == 2:
                l4 = b""
        ip = struct.pack("!IHBB16s16s", 0x60000000, max(0, p.size - 40), nh, 64,
                         ip_bytes(p.src), ip_bytes(p.dst)) + ext
        eth += b"\x86\xdd"
    frame_len = 14 + p.size + 4
    hdr = (eth + ip + l4 + b"\0" * SFLOW_HEADER_BYTES)[:min(SFLOW_HEADER_BYTES, frame_len - 4)]
    return hdr, frame_len


class SFlow:
    def __init__(self, args, boot_ms):
        self.boot_ms, self.rate = boot_ms, args.sampling
        self.agent = ipaddress.ip_address(args.agent)
        self.seq = 0
        self.sample_seq = 0
        self.pool = 0
        self.counters = {IF_UPLINK: [0, 0], IF_CUSTOMER: [0, 0]}   # octets, packets
        self.last_counters = None
        self.info = []      # per datagram, as V5.info

    def flow_sample(self, p):
        hdr, frame_len = packet_header(p)
        pad = (-len(hdr)) % 4
        raw = struct.pack("!IIII", 1, frame_len, 4, len(hdr)) + hdr + b"\0" * pad
        ext = struct.pack("!IIII", 0, 0, 0, 0)   # extended switch: VLANs, priorities
        recs = struct.pack("!II", 1, len(raw)) + raw + struct.pack("!II", 1001, len(ext)) + ext
        ifin, ifout = (IF_UPLINK, IF_CUSTOMER) if p.inbound else (IF_CUSTOMER, IF_UPLINK)
        self.sample_seq += 1
        self.pool += self.rate
        body = struct.pack("!IIIIIIII", self.sample_seq, ifin, self.rate, self.pool, 0,
                           ifin, ifout, 2) + recs
        return struct.pack("!II", 1, len(body)) + body

    def counter_sample(self, ifindex):
        octets, pkts = self.counters[ifindex]
        rec = struct.pack("!IIQIIQIIIIIIQIIIIII", ifindex, 6, 10 ** 10, 1, 3,
                          octets & (2 ** 64 - 1), pkts & 0xffffffff, 0, 0, 0, 0, 0,
                          octets & (2 ** 64 - 1), pkts & 0xffffffff, 0, 0, 0, 0, 0)
        body = struct.pack("!III", self.sample_seq, ifindex, 1) + \
            struct.pack("!II", 1, len(rec)) + rec
        return struct.pack("!II", 2, len(body)) + body

    def datagram(self, samples, now_ms, nflows):
        self.seq += 1
        self.info.append((nflows, 1, False))
        if self.agent.version == 4:
            agent = struct.pack("!I4s", 1, self.agent.packed)
        else:
            agent = struct.pack("!I16s", 2, self.agent.packed)
        return struct.pack("!I", 5) + agent + \
            struct.pack("!IIII", 0, self.seq, (now_ms - self.boot_ms) & 0xffffffff,
                        len(samples)) + b"".join(samples)

    def encode_packets(self, pkts, now_ms, counters_due):
        out, samples, size, nflows = [], [], 0, 0
        if counters_due:
            samples = [self.counter_sample(IF_UPLINK), self.counter_sample(IF_CUSTOMER)]
            size = sum(len(s) for s in samples)
        for p in pkts:
            s = self.flow_sample(p)
            if size + len(s) > MTU_PAYLOAD and samples:
                out.append(self.datagram(samples, now_ms, nflows))
                samples, size, nflows = [], 0, 0
            samples.append(s)
            size += len(s)
            nflows += 1
        if samples:
            out.append(self.datagram(samples, now_ms, nflows))
        return out


# ---- output ----

class Output:
    def __init__(self, args):
        self.sock = self.file = None
        self.datagrams = self.bytes = 0
        if args.write:
            self.file = open(args.write, "wb")
        else:
            host = ipaddress.ip_address(args.host)
            if not host.is_loopback:
                sys.exit("flowgen: --host must be a loopback address")
            fam = socket.AF_INET6 if host.version == 6 else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            if args.bind:
                src = ipaddress.ip_address(args.bind)
                if not src.is_loopback or src.version != host.version:
                    sys.exit("flowgen: --bind must be a loopback address of --host's family")
                self.sock.bind((args.bind, 0))
            self.dest = (args.host, args.port)

    def send(self, d):
        if len(d) > 65507:
            raise ValueError("datagram too large")
        self.datagrams += 1
        self.bytes += len(d)
        if self.file:
            self.file.write(struct.pack("!H", len(d)) + d)
        else:
            self.sock.sendto(d, self.dest)

    def close(self):
        if self.file:
            self.file.close()
        if self.sock:
            self.sock.close()


def sampled_count(n, rate, rng):
    """How many of n packets a 1-in-rate sampler takes: the expected count
    with the fraction decided at random, so totals stay exact on average."""
    whole, frac = divmod(n, rate)
    return whole + (1 if rng.random() * rate < frac else 0)


def run(args):
    rng = random.Random(args.seed)
    streams = make_streams(args, rng)
    start_ms = int((args.start if args.start is not None else time.time()) * 1000)
    boot_ms = start_ms - 86400000
    out = Output(args)
    fmt = args.format
    enc = {"v5": V5, "v9": V9, "ipfix": IPFIX, "sflow": SFlow}[fmt](args, boot_ms)
    cache = FlowCache(args.active_timeout, args.inactive_timeout) if fmt != "sflow" else None
    records = 0
    wall0 = time.monotonic()
    made = 0                          # datagrams made, dropped or not
    sent_recs = dropped = dropped_recs = dropped_units = dropped_tmpl = 0

    for sec in range(args.duration + 1):
        last = sec == args.duration
        now_ms = start_ms + sec * 1000
        if not args.fast and not args.write:
            delay = wall0 + sec - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sampled = []
        for s in streams if not last else []:
            if not s.active(sec):
                continue
            k = sampled_count(s.pps, args.sampling, rng)
            s.sampled += k
            s.true_pkts += s.pps
            for _ in range(k):
                p = s.make()
                s.true_bytes += p.size * args.sampling
                sampled.append((now_ms + rng.randrange(1000), p))
        sampled.sort(key=lambda x: x[0])
        if cache is not None:
            for ms, p in sampled:
                cache.add(p, ms)
            flows = cache.expire(now_ms + 1000, force=last)
            records += len(flows)
            dgs = enc.encode(flows, now_ms + 1000) if flows or sec % 10 == 0 else []
        else:
            for ms, p in sampled:
                c = enc.counters[IF_UPLINK if p.inbound else IF_CUSTOMER]
                c[0] += p.size * args.sampling
                c[1] += args.sampling
            records += len(sampled)
            dgs = enc.encode_packets([p for _, p in sampled], now_ms + 1000,
                                     sec % COUNTER_INTERVAL == 0)
        info, enc.info = enc.info, []
        for d, (nflows, units, tmpl) in zip(dgs, info):
            made += 1
            if made in args.drop:
                dropped += 1
                dropped_recs += nflows
                dropped_units += units
                dropped_tmpl += tmpl
                continue
            sent_recs += nflows
            out.send(d)
    out.close()

    print("flowgen: %s, %d s from %d ms, sampling 1:%d, active timeout %d s" %
          (fmt, args.duration, start_ms, args.sampling, args.active_timeout), file=sys.stderr)
    for s in streams:
        secs = max(1, min(s.end, args.duration) - s.start)
        print("  stream %-10s %10d pps  %8.3f Gbit/s  packets %d  bytes ~%d  sampled %d" %
              (s.name, s.pps, s.true_bytes * 8 / secs / 1e9, s.true_pkts, s.true_bytes,
               s.sampled), file=sys.stderr)
    print("  exported %d %s, %d datagrams, %d bytes" %
          (records, "samples" if fmt == "sflow" else "flow records", out.datagrams,
           out.bytes), file=sys.stderr)
    print("  sent %d datagrams, %d flow records" % (out.datagrams, sent_recs), file=sys.stderr)
    if args.drop:
        print("  dropped %d datagrams, %d flow records, sequence loss %d %s, %d with templates" %
              (dropped, dropped_recs, dropped_units,
               "records" if fmt in ("v5", "ipfix") else "datagrams", dropped_tmpl),
              file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--format", choices=["v5", "v9", "ipfix", "sflow"], default="ipfix")
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to send to")
    ap.add_argument("--port", type=int, default=None,
                    help="UDP port (default 2055, 6343 for sflow)")
    ap.add_argument("--write", metavar="FILE", help="write datagrams to FILE instead")
    ap.add_argument("--duration", type=int, default=10, help="seconds simulated")
    ap.add_argument("--start", type=float, default=None,
                    help="simulated start, Unix seconds (default now)")
    ap.add_argument("--fast", action="store_true", help="do not pace in real time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--background-pps", type=int, default=2000)
    ap.add_argument("--protected", default=None,
                    help="protected network (default 203.0.113.0/24 or 2001:db8:100::/64)")
    ap.add_argument("--attack", default="none",
                    choices=["none", "memcached", "dns", "ntp", "syn", "carpet"])
    ap.add_argument("--target", default=None,
                    help="attacked host, or prefix for carpet (default 203.0.113.10 / .0/24)")
    ap.add_argument("--attack-pps", type=int, default=100000,
                    help="attack packets per second, before sampling")
    ap.add_argument("--attack-start", type=int, default=2, help="second the attack starts")
    ap.add_argument("--attack-duration", type=int, default=5)
    ap.add_argument("--sources", type=int, default=1000, help="reflectors / bots")
    ap.add_argument("--sampling", type=int, default=1000, help="1-in-N packet sampling")
    ap.add_argument("--active-timeout", type=int, default=60, help="seconds")
    ap.add_argument("--inactive-timeout", type=int, default=15, help="seconds")
    ap.add_argument("--exporter-id", type=int, default=1,
                    help="v9 source id, IPFIX observation domain, v5 engine type/id")
    ap.add_argument("--agent", default="192.0.2.254", help="sFlow agent address")
    ap.add_argument("--bind", default=None,
                    help="loopback source address to send from (one exporter per address)")
    ap.add_argument("--drop", default="",
                    help="datagrams (counted from 1, comma-separated) to leave out after "
                         "numbering them: a sequence gap")
    args = ap.parse_args(argv)
    try:
        args.drop = {int(x) for x in args.drop.split(",") if x.strip()}
    except ValueError:
        ap.error("--drop takes datagram numbers: 5,9")
    if any(n < 1 for n in args.drop):
        ap.error("--drop counts datagrams from 1")
    if args.port is None:
        args.port = 6343 if args.format == "sflow" else 2055
    if args.sampling < 1 or args.duration < 1 or args.sources < 1:
        ap.error("--sampling, --duration and --sources must be at least 1")
    if args.format == "v5" and args.target and ":" in args.target:
        ap.error("NetFlow v5 has no IPv6; use v9, ipfix or sflow")
    run(args)


if __name__ == "__main__":
    main()
