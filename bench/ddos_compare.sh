#!/bin/sh
# mamori's DDoS detection next to FastNetMon 1.2.4 (Debian 12 package
# `fastnetmon`), on the same flow stream in the same run, so that the README
# can print both figures.
#
#   1. a private `mamori serve` (data_dir in a temp dir, one group per
#      protected prefix) and a private FastNetMon (its own configuration in
#      the temp dir: NetFlow and sFlow on 127.0.0.1, the same prefixes, the
#      same per-host thresholds, a ban script that appends a timestamped line
#      per call; no BGP, no API, no redis/mongo/influx/graphite, no usage
#      report) listen on loopback ports of their own;
#   2. a relay (python3) receives what tools/flowgen.py exports and sends
#      every datagram to both, one right after the other: both see the same
#      datagrams at the same moment. flowgen sends each second's datagrams
#      in one burst; the relay spreads them at up to 5000 datagrams/s
#      (DDOS_COMPARE_RELAY_RATE), as an exporter would: a megabyte at once
#      overflows FastNetMon's socket, which keeps the kernel's default
#      receive buffer (net.core.rmem_default), and it then saw a 1.2x attack
#      as under 1.1x. Kernel drops at each socket are printed;
#   3. the scenarios, all on TEST-NET addresses (they are only values inside
#      the flows; every packet goes to 127.0.0.1):
#        a. a memcached amplification at 10x the per-host packet threshold
#           on one host (sFlow 1:100);
#        b. the same at 1.2x the threshold on another host (sFlow 1:100);
#        c. a carpet bombing of 203.0.113.0/24, 254 hosts x 2 kpps
#           (sFlow 1:100);
#        d. benign traffic, 5 kpps into one host, exported as NetFlow v9
#           1:10 by a router with a 60 s active timeout (it runs beside
#           a-c, on another prefix, because its first records come after
#           60 s);
#        e. memory: a carpet over 198.18.0.0/15 (131,072 hosts, 2.6 samples
#           each on average), then each one's RSS; FastNetMon allocates
#           every host of its networks_list at start, mamori those it sees
#           (up to ddos.max_hosts, 131,072 by default);
#      for a-c: the time from the attack's first record (sFlow: flowgen
#      sends a second's samples at its start, so the attack's start) to
#      mamori's attack (its API /api/v1/ddos/attacks, polled every 0.1 s)
#      and to FastNetMon's ban (its ban script's timestamp), whether it was
#      detected at all, and the reported size against what flowgen
#      generated;
#   4. no-loss rate per format (DDOS_COMPARE_LOSS=0 skips it; the argument
#      `loss` runs only this step): how many flow records a second (sFlow:
#      flow samples) one core decodes and counts with zero kernel drops.
#      A private `mamori serve` of its own (fresh counters, one group for
#      203.0.113.0/24) runs pinned to the last core with taskset, and
#      FastNetMon is pinned there too for its turn (taskset -a -p);
#      bench/bench_flowsend (C, UDP GSO sends) sends from core 0 a pool of
#      realistic datagrams per format (v5: 30 records; v9 and IPFIX: 1,400
#      bytes, templates every 20 datagrams; sFlow: 8 samples of sampled
#      headers, counter samples), four exporters with gap-free sequence
#      numbers, every destination inside 203.0.113.0/24, paced by a token
#      bucket, DDOS_LOSS_SECONDS (3) a step. Per format and collector: a
#      low-rate check first ("sent N, counted N": for mamori the records
#      decoded, mamori_ddos_records_total, must equal the records sent, and
#      all of them count towards the group), the sender's own limit
#      (unpaced, to the same collector), then steps up (NetFlow/IPFIX
#      0.25-16 M/s, sFlow 0.1-8 M/s, below the sender's limit) and two
#      bisections after the first loss. A step passes with 0 kernel drops
#      at the socket (/proc/net/udp) and every record counted (FastNetMon:
#      its total_simple_packets_processed against the low-rate check's
#      ratio, within 0.1 %); one that lost is tried once more
#      (DDOS_LOSS_TRIES, 2 in all), as a neighbour on a shared machine can
#      take the core from a step for a moment. The figure is the highest
#      passing rate the sender achieved; when the sender could not go
#      faster it is labelled "sender-bound". mamori's sequence-loss
#      counters (mamori_ddos_decoder_total{stat="seq_lost_*"}) are printed
#      too: the sender makes no gap, so any is the kernel's. Figures on a
#      shared machine are noisy: take the best of a few runs.
#
# Thresholds (both): per host 20 kpps (FastNetMon's default) and 1 Gbit/s,
# incoming; nothing else. mamori: the other per-host defaults (syn, rst,
# icmp, fragment, amplification, baseline) are switched off so that the
# thresholds are the same; its per-/24 defaults (300 kpps, 2 Gbit/s) stay:
# FastNetMon 1.2.4 (community) has no per-prefix threshold. Each keeps its
# own timing defaults: mamori delay 1 s and trigger 1 s (a second counts
# as over as soon as its traffic so far passes a threshold, before it
# closes), FastNetMon check_period 1 s and average_calculation_time 5 s.
#
# Usage: bench/ddos_compare.sh          (everything, with the no-loss step)
#        bench/ddos_compare.sh loss     (only the no-loss step, ~4 minutes,
#                                        ~8 with FastNetMon)
# Environment: BUILD (default build), KEEP=1 keeps the temp dir (configs,
# logs, ban script lines, flowgen summaries, mamori's /proc/PID/smaps
# before and after step e), DDOS_LOSS_SECONDS (3, per
# step), DDOS_LOSS_CORE (the last core: the collectors), DDOS_SENDER_CORE
# (0: bench_flowsend), DDOS_LOSS_FORMATS ("v5 v9 ipfix sflow"),
# DDOS_LOSS_TRIES (2: tries of a step that lost).
# It builds nothing, sends nothing off 127.0.0.1, prints figures, and never
# passes or fails on them; every process it starts is stopped at the end.
# About 5 minutes (2 without the loss step).
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=bench/lib.sh
. bench/lib.sh
B=${BUILD:-build}
# fastnetmon lives in sbin, which a user's PATH may lack.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
export PATH
MODE=${1:-all}
if [ "$MODE" != all ] && [ "$MODE" != loss ]; then
	echo "usage: bench/ddos_compare.sh [loss]" >&2
	exit 2
fi
for prog in mamori bench_flowsend; do
	if [ ! -x "$B/$prog" ]; then
		echo "ddos_compare: $B/$prog is missing; build it first (make build)" >&2
		exit 1
	fi
done
T=$(mktemp -d /tmp/mamori-ddos-compare.XXXXXX)
chmod 755 "$T"
MAMORI_PID=""
LOSS_PID=""
FNM_PID=""
RELAY_PID=""
cleanup() {
	# shellcheck disable=SC2086
	stop_pids $RELAY_PID $FNM_PID $MAMORI_PID $LOSS_PID
	remove_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM


HAVE_FNM=1
if ! command -v fastnetmon >/dev/null 2>&1; then
	HAVE_FNM=0
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
	echo "!! FastNetMon is NOT INSTALLED: no comparison is made; mamori's figures only."
	echo "!! Install it with:   sh scripts/deps.sh --bench"
	echo "!! (that is: apt-get install --no-install-recommends fastnetmon; deps.sh keeps"
	echo "!! its packaged service from starting, but the package enables it for the next boot)"
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
fi

TOKEN=ddos-compare-token-0123456789abcdef
API_PORT=$(free_port tcp)
M_NF=$(free_port udp)
M_SF=$(free_port udp)
F_NF=$(free_port udp)
F_SF=$(free_port udp)
R_NF=$(free_port udp)
R_SF=$(free_port udp)
PROM_PORT=$(free_port tcp)

# ---- mamori ----
# One host group per scenario prefix, all with FastNetMon's settings: the
# 20 kpps / 1 Gbit/s host threshold alone, no baseline.
mamori_head() { # dir api-port netflow-port sflow-port: a serve config up to its groups
	cat <<EOH
data_dir: $1/var
log_level: info
api:
  listen: 127.0.0.1:$2
  tokens: [$TOKEN]
ingest:
  syslog_udp: 127.0.0.1:$(free_port udp)
  syslog_tcp: 127.0.0.1:$(free_port tcp)
  json_tcp: 127.0.0.1:$(free_port tcp)
mail:
  milter: 127.0.0.1:$(free_port tcp)
ddos:
  netflow: 127.0.0.1:$3
  sflow: 127.0.0.1:$4
  update_interval: 2s
  groups:
EOH
}
ddos_group() { # name prefix
	cat <<EOG
    - name: $1
      prefixes: [$2]
      cooldown: 4s
      baseline: 0
      thresholds:
        total: { bps: 1G, pps: 20k }
        syn: { pps: off }
        rst: { pps: off }
        icmp: { pps: off }
        fragment: { pps: off }
        amplification: { bps: off }
EOG
}
mkdir -p "$T/mamori"
cat > "$T/mamori/mamori.yaml" <<EOF
$(mamori_head "$T/mamori" "$API_PORT" "$M_NF" "$M_SF")
$(ddos_group customers 203.0.113.0/24)
$(ddos_group office 192.0.2.0/24)
$(ddos_group lab 198.18.0.0/15)
EOF
if ! "$B/mamori" check-config "$T/mamori/mamori.yaml" > "$T/mamori/check.out" 2>&1; then
	echo "ddos_compare: mamori check-config refused $T/mamori/mamori.yaml:" >&2
	cat "$T/mamori/check.out" >&2
	exit 1
fi
if [ "$MODE" = all ]; then
	"$B/mamori" serve -c "$T/mamori/mamori.yaml" > "$T/mamori/serve.log" 2>&1 &
	MAMORI_PID=$!
fi

# ---- FastNetMon ----
F=$T/fnm
mkdir -p "$F"
if [ $HAVE_FNM = 1 ]; then
	printf '203.0.113.0/24\n192.0.2.0/24\n198.18.0.0/15\n' > "$F/networks_list"
	: > "$F/networks_whitelist"
	# Called as: script IP direction pps action, the details on stdin (for
	# ban and attack_details). One line per call: wall time, then the args.
	cat > "$F/ban.sh" <<EOF
#!/bin/sh
t=\$(date +%s.%N)
d=$F/details.\$1.\$4.\$\$
cat > "\$d"
echo "\$t \$1 \$2 \$3 \$4" >> $F/bans.txt
EOF
	chmod 755 "$F/ban.sh"
	cat > "$F/fastnetmon.conf" <<EOF
# Private FastNetMon for bench/ddos_compare.sh: flows on loopback only.
logging_level = info
logging_local_syslog_logging = off
logging_remote_syslog_logging = off
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = off
process_incoming_traffic = on
process_outgoing_traffic = off
dump_all_traffic = off
dump_other_traffic = off
ban_details_records_count = 20
ban_time = 1900
unban_only_if_attack_finished = on
networks_list_path = $F/networks_list
white_list_path = $F/networks_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = on
ban_for_flows = off
threshold_pps = 20000
threshold_mbps = 1000
threshold_flows = 3500
ban_for_tcp_bandwidth = off
ban_for_udp_bandwidth = off
ban_for_icmp_bandwidth = off
ban_for_tcp_pps = off
ban_for_udp_pps = off
ban_for_icmp_pps = off
mirror_afpacket = off
mirror_afxdp = off
mirror_netmap = off
pcap = off
netflow = on
netflow_host = 127.0.0.1
netflow_port = $F_NF
netflow_sampling_ratio = 1
sflow = on
sflow_host = 127.0.0.1
sflow_port = $F_SF
sflow_read_packet_length_from_ip_header = off
average_calculation_time = 5
speed_calculation_delay = 1
notify_script_path = $F/ban.sh
collect_attack_pcap_dumps = off
redis_enabled = off
mongodb_enabled = off
clickhouse_metrics = off
exabgp = off
gobgp = off
influxdb = off
graphite = off
monitor_local_ip_addresses = off
monitor_openvz_vps_ip_addresses = off
pid_path = $F/fastnetmon.pid
cli_stats_file_path = $F/fastnetmon.dat
cli_stats_ipv6_file_path = $F/fastnetmon_ipv6.dat
enable_api = off
kafka_traffic_export = off
prometheus = on
prometheus_host = 127.0.0.1
prometheus_port = $PROM_PORT
EOF
	fastnetmon --configuration_file "$F/fastnetmon.conf" --log_file "$F/fastnetmon.log" \
		--disable_pid_logic > "$F/stdout.log" 2>&1 &
	FNM_PID=$!
fi

# ---- the helper: relay, readiness, scenarios ----
cat > "$T/helper.py" <<'PY'
import collections, http.client, json, os, re, selectors, signal, socket, subprocess, sys, time

def relay(pairs, counts_file, rate):
    """pairs: [(in_port, [out_port, ...]), ...]; every datagram to each out,
    at most rate datagrams/s: flowgen sends each second's datagrams in one
    burst, which a real exporter spreads over the second; a burst of a
    megabyte overflows a receive buffer of the kernel's default size."""
    sel = selectors.DefaultSelector()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    for i, (pin, outs) in enumerate(pairs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind(("127.0.0.1", pin))
        s.setblocking(False)
        # The destinations, then the index of the counter.
        sel.register(s, selectors.EVENT_READ, [("127.0.0.1", p) for p in outs] + [i])
    counts = [0] * len(pairs)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    last = 0
    queue = collections.deque()
    budget, t_budget = 0.0, time.perf_counter()
    while True:
        if time.time() - last > 0.25:
            with open(counts_file + ".tmp", "w") as f:
                f.write(" ".join(str(c) for c in counts) + " %d\n" % len(queue))
            os.replace(counts_file + ".tmp", counts_file)
            last = time.time()
        for key, _ in sel.select(0.001 if queue else 0.5):
            while True:
                try:
                    d = key.fileobj.recv(65535)
                except BlockingIOError:
                    break
                counts[key.data[-1]] += 1
                queue.append((d, key.data[:-1]))
        now = time.perf_counter()
        budget = min(budget + (now - t_budget) * rate, 64.0) if queue else 1.0
        t_budget = now
        while queue and budget >= 1.0:
            d, dests = queue.popleft()
            budget -= 1.0
            for dest in dests:
                try:
                    out.sendto(d, dest)
                except OSError:
                    pass

def api(port, token, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body

def wait_mamori(port):
    end = time.time() + 30
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/api/v1/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("ddos_compare: mamori serve did not become healthy in 30 s")

def prom(port):
    """FastNetMon's Prometheus counters, {name: value} (empty if none)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode("utf-8", "replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+([-0-9.eE+]+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out

def wait_fnm(port, pid):
    end = time.time() + 30
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            return "exited"
        if prom(port):
            return "up"
        time.sleep(0.2)
    return "no prometheus endpoint after 30 s"

FLOWGEN = os.path.join(os.getcwd(), "tools", "flowgen.py")

class Gen:
    def __init__(self, name, fmt, port, args, logdir):
        self.name = name
        self.log = os.path.join(logdir, "flowgen-%s.log" % name)
        self.t0 = time.time()
        self.p = subprocess.Popen([sys.executable, FLOWGEN, "--format", fmt, "--port", str(port)]
                                  + [str(a) for a in args],
                                  stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def wait(self):
        self.p.wait()
        self.text = open(self.log).read()
        m = re.search(r"from (\d+) ms", self.text)
        self.start = int(m.group(1)) / 1000.0 if m else self.t0
        return self

    def stream(self, name):
        m = re.search(r"stream %s\s+(\d+) pps\s+([0-9.]+) Gbit/s" % re.escape(name), self.text)
        return (int(m.group(1)), float(m.group(2)) * 1e9) if m else (0, 0.0)

class Watch:
    """Polls mamori's attacks and FastNetMon's ban lines; first-seen times."""
    def __init__(self, api_port, token, fnm_dir):
        self.api_port, self.token, self.fnm_dir = api_port, token, fnm_dir
        self.m_seen = {}      # attack id -> (wall time first seen, attack)
        self.m_last = {}

    def poll(self):
        now = time.time()
        try:
            st, body = api(self.api_port, self.token, "/api/v1/ddos/attacks?limit=100")
            if st == 200:
                for a in json.loads(body).get("attacks", []):
                    self.m_seen.setdefault(a["id"], (now, a))
                    self.m_last[a["id"]] = a
        except (OSError, ValueError):
            pass

    def fnm_bans(self):
        out = []
        try:
            for line in open(os.path.join(self.fnm_dir, "bans.txt")):
                f = line.split()
                if len(f) >= 5:
                    out.append((float(f[0]), f[1], f[2], f[3], f[4]))
        except OSError:
            pass
        return out

    def sleep(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self.poll()
            time.sleep(0.1)

def udp_drops(ports):
    """{port: datagrams the kernel dropped at that 127.0.0.1 socket} from /proc/net/udp."""
    out = {p: 0 for p in ports}
    try:
        for line in list(open("/proc/net/udp"))[1:]:
            f = line.split()
            port = int(f[1].split(":")[1], 16)
            if port in out:
                out[port] += int(f[-1])
    except OSError:
        pass
    return out

def in_target(ip, target):
    if "/" in target:
        return ip.startswith(target.split("/")[0].rsplit(".", 1)[0] + ".")
    return ip == target

def fnm_details(fnm_dir, ip):
    """(attack type, peak pps, incoming bit/s) from FastNetMon's ban details."""
    for f in sorted(os.listdir(fnm_dir)):
        if f.startswith("details.%s.ban." % ip):
            text = open(os.path.join(fnm_dir, f), errors="replace").read()
            k = re.search(r"^Attack type: (.*)$", text, re.M)
            p = re.search(r"^Peak attack power: ([0-9.]+)", text, re.M)
            b = re.search(r"^Total incoming traffic: ([0-9.]+) mbps", text, re.M)
            return (k.group(1).strip() if k else "?", float(p.group(1)) if p else None,
                    float(b.group(1)) * 1e6 if b else None)
    return ("?", None, None)

def rss(pid):
    """(VmRSS, VmHWM) in bytes."""
    out = [0, 0]
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                out[0] = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                out[1] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return out

def keep_smaps(pid, logdir, when):
    """mamori's /proc/PID/smaps beside the logs (KEEP=1 keeps them): what
    its resident set is made of, mapping by mapping."""
    try:
        with open("/proc/%d/smaps" % pid) as f, open(os.path.join(logdir, "mamori-smaps-%s" % when), "w") as o:
            o.write(f.read())
    except (OSError, TypeError):
        pass

def scenarios(api_port, token, fnm_dir, r_nf, r_sf, have_fnm, prom_port, ports, pids):
    w = Watch(api_port, token, fnm_dir)
    m_sf, f_sf = ports[1], ports[3]
    logdir = os.path.dirname(fnm_dir)
    # d runs beside the others: its router's 60 s active timeout delays its
    # first records by a minute. 9434 pps of background to one server is
    # 5000 pps into it (the rest is its replies and queries going out).
    d = Gen("d-benign-v9-60s", "v9", r_nf, ["--protected", "192.0.2.10/32", "--background-pps", "9434",
            "--sampling", "10", "--active-timeout", "60", "--inactive-timeout", "15",
            "--duration", "68", "--seed", "41"], logdir)
    rows = []
    plan = [
        ("a", "memcached 10x (200 kpps) on one host, sFlow 1:100", "203.0.113.10",
         ["--attack", "memcached", "--target", "203.0.113.10", "--attack-pps", "200000"], "memcached", 12),
        ("b", "memcached 1.2x (24 kpps) on one host, sFlow 1:100", "203.0.113.20",
         ["--attack", "memcached", "--target", "203.0.113.20", "--attack-pps", "24000"], "memcached", 20),
        ("c", "carpet 254 hosts x 2 kpps (508 kpps), sFlow 1:100", "203.0.113.0/24",
         ["--attack", "carpet", "--target", "203.0.113.0/24", "--attack-pps", "508000"], "carpet", 12),
    ]
    w.sleep(1)
    for key, title, target, args, stream, dur in plan:
        before = set(w.m_seen)
        bans_before = len(w.fnm_bans())
        drops0 = udp_drops([m_sf, f_sf])
        # Start 0.4 s into a second (flowgen sends each second's batch at
        # its start; the collectors judge whole seconds).
        time.sleep((0.4 - time.time() % 1.0) % 1.0)
        g = Gen(key, "sflow", r_sf, args + ["--attack-start", "2", "--attack-duration", str(dur),
                "--duration", str(dur + 3), "--background-pps", "50000", "--sampling", "100",
                "--seed", str(ord(key))], logdir)
        while g.p.poll() is None:
            w.poll()
            time.sleep(0.1)
        g.wait()
        w.sleep(3)
        t_attack = g.start + 2
        pps, bps = g.stream(stream)
        new = [(t, a) for i, (t, a) in w.m_seen.items() if i not in before]
        mine = [(t, w.m_last[a["id"]]) for t, a in new if a["target"] == target or
                in_target(a["target"].split("/")[0], target)]
        drops1 = udp_drops([m_sf, f_sf])
        row = {"key": key, "title": title, "truth": (pps, bps),
               "drops": (drops1[m_sf] - drops0[m_sf], drops1[f_sf] - drops0[f_sf]),
               "sent": re.search(r"exported (\d+) samples, (\d+) datagrams", g.text).groups()}
        if mine:
            t, a = min(mine, key=lambda x: x[0])
            row["m"] = (t - t_attack, a.get("peak_pps", 0), a.get("peak_bps", 0),
                        "%s %s" % (a.get("kind", ""), a["target"]), len(mine),
                        a.get("summary", "").split(" (")[0].split(":")[0])
        bans = [b for b in w.fnm_bans()[bans_before:] if b[4] == "ban" and in_target(b[1], target)]
        if bans:
            first = min(bans)
            kind, peak, dbps = fnm_details(fnm_dir, first[1])
            row["f"] = (first[0] - t_attack, peak if peak is not None else float(first[3]), dbps,
                        first[1], len({b[1] for b in bans}), kind)
        rows.append(row)
        w.sleep(5 if key != "c" else 1)   # mamori's cool-down between attacks
    # d: wait for flowgen's end and its last records to be judged.
    while d.p.poll() is None:
        w.sleep(0.5)
    d.wait()
    w.sleep(4)
    row = {"key": "d", "title": "benign 5 kpps into one host, NetFlow v9 1:10, 60 s active t/o",
           "truth": (5000, None)}
    ma = [w.m_last[i] for i in w.m_seen if w.m_last[i]["target"].startswith("192.0.2.")]
    row["m_false"] = ["%s %s peak %.0f pps" % (a.get("kind", ""), a["target"], a.get("peak_pps", 0)) for a in ma]
    fb = [b for b in w.fnm_bans() if b[4] == "ban" and b[1].startswith("192.0.2.")]
    row["f_false"] = ["%s at %.0f pps (%.1fx the truth), %.1f s after flowgen started"
                      % (b[1], float(b[3]), float(b[3]) / 5000, b[0] - d.start) for b in fb]
    rows.append(row)
    # e: memory with 131,072 hosts (198.18.0.0/15) seen at once: a carpet
    # of 2.6 samples per host on average (93 % of the hosts).
    rss0 = {k: rss(p) for k, p in pids.items()}
    keep_smaps(pids.get("m"), logdir, "before-e")
    e = Gen("e-131072-hosts", "sflow", r_sf, ["--attack", "carpet", "--target", "198.18.0.0/15",
            "--attack-pps", "17000000", "--sampling", "100", "--attack-start", "0", "--attack-duration", "2",
            "--duration", "2", "--background-pps", "0", "--seed", "51"], logdir)
    while e.p.poll() is None:
        w.sleep(0.5)
    e.wait()
    for _ in range(60):   # the relay's queue drained
        w.sleep(0.5)
        if open(os.path.join(logdir, "relay.counts")).read().split()[-1] == "0":
            break
    w.sleep(2)
    keep_smaps(pids.get("m"), logdir, "after-e")
    mm = mamori_metrics(api_port, token)
    fm = prom(prom_port) if have_fnm else {}
    mem = {"before": rss0, "after": {k: rss(p) for k, p in pids.items()},
           "m_hosts": mm.get("mamori_ddos_hosts_tracked"), "m_bytes": mm.get("mamori_ddos_detector_bytes"),
           "f_hosts": fm.get("fastnetmon_total_number_of_hosts")}
    # Counters: what each side says it received.
    mm = mamori_metrics(api_port, token)
    fm = prom(prom_port) if have_fnm else {}
    if have_fnm:
        with open(os.path.join(fnm_dir, "prometheus.txt"), "w") as f:
            for k, v in sorted(fm.items()):
                f.write("%s %s\n" % (k, v))
    try:
        relayed = open(os.path.join(logdir, "relay.counts")).read().split()
    except OSError:
        relayed = ["?", "?"]
    drops = udp_drops(ports)
    report(rows, have_fnm, mm, fm, relayed)
    mb = lambda v: "%.0f MB" % (v / 1e6) if v else "?"
    print("memory, 131,072 hosts (e: a carpet over 198.18.0.0/15; RSS now / peak, from /proc):")
    print("  mamori: %s / %s (before e: %s); hosts tracked %s, detector tables %s"
          % (mb(mem["after"]["m"][0]), mb(mem["after"]["m"][1]), mb(mem["before"]["m"][0]),
             "%d" % mem["m_hosts"] if mem["m_hosts"] is not None else "?", mb(mem["m_bytes"])))
    if have_fnm:
        print("  FastNetMon: %s / %s (before e: %s); hosts (its networks_list, allocated at start) %s"
              % (mb(mem["after"]["f"][0]), mb(mem["after"]["f"][1]), mb(mem["before"]["f"][0]),
                 "%d" % mem["f_hosts"] if mem["f_hosts"] is not None else "?"))
    print("kernel drops at the sockets (/proc/net/udp), whole run: mamori NetFlow %d, sFlow %d;"
          " FastNetMon NetFlow %s, sFlow %s" % (drops[ports[0]], drops[ports[1]],
          drops[ports[2]] if have_fnm else "-", drops[ports[3]] if have_fnm else "-"))

def mamori_metrics(api_port, token):
    """mamori_ddos_* from /metrics, summed over labels."""
    st, body = api(api_port, token, "/metrics")
    mm = {}
    for line in body.decode("utf-8", "replace").splitlines():
        x = re.match(r"^(mamori_ddos_\w+)(\{[^}]*\})? ([-0-9.e+]+)$", line)
        if x:
            mm[x.group(1)] = mm.get(x.group(1), 0) + float(x.group(3))
            if x.group(2):
                mm[x.group(1) + x.group(2)] = float(x.group(3))
    return mm

def fmt_err(v, truth):
    if v is None or not truth:
        return "?"
    return "%+.0f%%" % ((v - truth) / truth * 100)

def report(rows, have_fnm, mm, fm, relayed):
    W = 38
    print()
    print("%-66s | %-*s | %s" % ("scenario (truth: what flowgen generated)", W, "mamori", "FastNetMon 1.2.4"))
    print("-" * 150)
    for r in rows:
        if r["key"] != "d":
            pps, bps = r["truth"]
            if "m" in r:
                t, p, b, what, n, summ = r["m"]
                mcol = "%.1f s; peak %s pkt/s, %s bit/s" % (t, fmt_err(p, pps), fmt_err(b, bps))
                mdet = "%s%s" % (what, "" if n == 1 else " (%d attacks)" % n)
                mdet2 = summ.replace("memcached amplification", "memcached ampl.")[:W]
            else:
                mcol, mdet, mdet2 = "NOT DETECTED", "", ""
            if not have_fnm:
                fcol, fdet, fdet2 = "(not installed)", "", ""
            elif "f" in r:
                t, p, b, ip, n, kind = r["f"]
                fcol = "%.1f s; ban at %s pkt/s, %s bit/s" % (t, fmt_err(p, pps), fmt_err(b, bps))
                fdet = "ban of %s%s" % (ip, "" if n == 1 else " (%d hosts)" % n)
                fdet2 = "attack type: " + kind
            else:
                fcol, fdet, fdet2 = "NOT DETECTED (no ban)", "", ""
            print("%-66s | %-*s | %s" % ("%s   %s" % (r["key"], r["title"]), W, mcol, fcol))
            print("%-66s | %-*s | %s" % ("    truth %.0f pkt/s, %.3f Gbit/s" % (pps, bps / 1e9), W, mdet, fdet))
            print("%-66s | %-*s | %s" % ("", W, mdet2, fdet2))
            sm, dg = r["sent"]
            print("%-66s | %-*s | %s" % ("    sent %s samples in %s datagrams" % (sm, dg), W,
                  "%d datagrams dropped by the kernel" % r["drops"][0],
                  "%d datagrams dropped by the kernel" % r["drops"][1] if have_fnm else ""))
        else:
            mcol = "FALSE ATTACK: " + "; ".join(r["m_false"]) if r["m_false"] else "no attack (right)"
            fcol = ("FALSE BAN: " + "; ".join(r["f_false"])) if r["f_false"] else \
                ("no ban (right)" if have_fnm else "(not installed)")
            print("%-66s | %-*s | %s" % ("d   " + r["title"], W, mcol, fcol))
    print("-" * 150)
    print("times: from the attack's first record to mamori's attack in /api/v1/ddos/attacks (polled every")
    print("  0.1 s) and to FastNetMon's ban script. flowgen sends each second's sFlow samples at the second's")
    print("  start (the relay spreads them over the first 0.1-0.2 s): the first record is the attack's start.")
    print("sizes: mamori's peak_pps/peak_bps; FastNetMon's 'Peak attack power' and 'Total incoming traffic'")
    print("  of its ban details (its rate averaged over average_calculation_time, at the ban).")
    print("relay: %s NetFlow and %s sFlow datagrams sent to each" % tuple(relayed[:2]))
    keys = ["datagrams_total", "kernel_drops_total", "records_total", "records_counted_total",
            "decode_errors_total"]
    print("mamori counters: " + ", ".join("%s %d" % (k, mm.get("mamori_ddos_" + k, 0)) for k in keys))
    if fm:
        want = ("sflow_raw_udp_packets_received", "sflow_flow_samples", "sflow_bad_packets",
                "sflow_udp_receive_errors", "netflow_ipfix_udp_packet_drops", "netflow_v9_total_flows",
                "netflow9_data_packet_number", "netflow_ipfix_all_protocols_total_flows")
        got = ["%s %d" % (k.split("{")[0].replace("fastnetmon_", ""), v) for k, v in sorted(fm.items())
               if any(w in k for w in want)]
        print("FastNetMon counters: " + (", ".join(got) if got else "(none of the flow counters exported)"))

# ---- no-loss records/s ----

LOSS_NET = "203.0.113.0/24"

def flowsend(sender, core, fmt, port, rate, seconds):
    """Runs bench_flowsend; its "sent" line as {key: number}, or None."""
    cmd = (["taskset", "-c", core] if core else []) + [
        sender, "-f", fmt, "-d", "127.0.0.1:%d" % port, "-r", "%d" % rate, "-t", "%g" % seconds,
        "-n", LOSS_NET]
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"^sent (.*)$", p.stdout, re.M)
    if p.returncode or not m:
        print("bench_flowsend failed (%d): %s" % (p.returncode, (p.stdout + p.stderr)[-300:]))
        return None
    return {k: float(v) for k, v in (x.split("=") for x in m.group(1).split())}

def wait_count(counter, target):
    """The counter once it reaches target, or once it has stopped moving
    (1.6 s unchanged: mamori publishes its metrics once a second); 15 s
    at most."""
    last, since, end = counter(), time.time(), time.time() + 15
    while last < target and time.time() < end:
        time.sleep(0.1)
        v = counter()
        if v != last:
            last, since = v, time.time()
        elif time.time() - since >= 1.6:
            break
    return last

class Side:
    """One collector in the no-loss search: its ports, its records
    counter, and what else it tells (mamori: counted, sequence loss)."""

    def __init__(self, name, nf, sf, counter, extra):
        self.name, self.nf, self.sf, self.counter, self.extra = name, nf, sf, counter, extra
        self.ratio = 1.0       # records counted per record sent (low-rate check)

    def port(self, fmt):
        return self.sf if fmt == "sflow" else self.nf

def measure(side, sender, core, fmt, rate, seconds):
    """Sends at rate (0: as fast as the sender goes); what arrived."""
    port = side.port(fmt)
    d0, c0, x0 = udp_drops([port])[port], side.counter(), side.extra()
    s = flowsend(sender, core, fmt, port, rate, seconds)
    if s is None:
        return None
    want = s["records"] * side.ratio
    got = wait_count(side.counter, c0 + want) - c0
    x1 = side.extra()
    r = {"asked": rate, "rate": s["rate"], "sent": int(s["records"]), "got": int(got),
         "drops": udp_drops([port])[port] - d0, "errors": int(s["errors"]),
         "extra": {k: x1.get(k, 0) - x0.get(k, 0) for k in x1}}
    if side.name == "mamori":
        r["ok"] = r["drops"] == 0 and r["got"] == r["sent"] and r["errors"] == 0
    else:
        r["ok"] = r["drops"] == 0 and r["errors"] == 0 and got >= want * 0.999
    return r

def show(fmt, side, what, r):
    x = r["extra"]
    more = ""
    if "counted" in x:
        more = ", %d towards the group, sequence loss %d" % (x["counted"], x["seq_lost"])
    print("  %-5s %-10s %-9s asked %-8s sent %s/s: sent %d, counted %d%s, kernel drops %d%s -> %s"
          % (fmt, side.name, what, si(r["asked"]) if r["asked"] else "max", si(r["rate"]), r["sent"],
             r["got"], more, r["drops"], ", send errors %d" % r["errors"] if r["errors"] else "",
             "ok" if r["ok"] else "LOSS"), flush=True)

def attempt(side, sender, core, fmt, rate, seconds, what, tries):
    """A step, again when it lost (up to tries in all: a neighbour on the
    shared machine can cost one step a few datagrams)."""
    r = None
    for i in range(tries):
        time.sleep(0.5)
        r = measure(side, sender, core, fmt, rate, seconds)
        if r is None:
            return None
        show(fmt, side, what if i == 0 else "again", r)
        if r["ok"]:
            break
    return r

def search(side, sender, core, fmt, seconds, tries):
    """(figure, note) for one format at one collector."""
    r = measure(side, sender, core, fmt, 20e3, 2)
    if r is None:
        return None, "the sender failed"
    show(fmt, side, "check", r)
    if side.name == "mamori":
        if r["got"] != r["sent"]:
            print("  %s: MISMATCH at a low rate: sent %d, counted %d" % (fmt, r["sent"], r["got"]))
    elif r["got"] > 0:
        side.ratio = r["got"] / r["sent"]
    if r["got"] == 0:
        return None, "counted nothing"
    time.sleep(0.5)
    top = measure(side, sender, core, fmt, 0, seconds)
    if top is None:
        return None, "the sender failed"
    show(fmt, side, "max", top)
    limit = top["rate"]
    if top["ok"]:
        return limit, "sender-bound: no loss at the sender's limit"
    steps = [0.1e6, 0.25e6, 0.5e6, 1e6, 1.5e6, 2e6, 2.5e6, 3e6, 4e6, 5e6, 6e6, 8e6] \
        if fmt == "sflow" else [0.25e6, 0.5e6, 1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 8e6, 10e6, 12e6, 16e6]
    steps = [x for x in steps if x < 0.95 * limit]
    good, bad, last_bad = None, limit, top
    for rate in steps:
        r = attempt(side, sender, core, fmt, rate, seconds, "step", tries)
        if r is None:
            break
        if not r["ok"]:
            bad, last_bad = rate, r
            break
        good = r
    for _ in range(2 if good else 0):
        r = attempt(side, sender, core, fmt, (good["asked"] + bad) / 2, seconds, "bisect", tries)
        if r is None:
            break
        if r["ok"]:
            good = r
        else:
            bad, last_bad = r["asked"], r
    if good is None:
        return None, "lost already at %s/s (sender's limit %s/s)" % (si(bad), si(limit))
    if good["rate"] < 0.97 * good["asked"]:
        return good["rate"], "sender-bound (asked %s/s); sender's limit %s/s" % (
            si(good["asked"]), si(limit))
    lost = 1 - last_bad["got"] / max(1, last_bad["sent"] * side.ratio)
    return good["rate"], "lost %.2f%% at %s/s (%d kernel drops); sender's limit %s/s" % (
        lost * 100, si(last_bad["rate"]), last_bad["drops"], si(limit))

def loss(api_port, token, prom_port, have_fnm, ports, sender, sender_core, loss_core, fnm_pid,
         seconds, formats, tries):
    """ports: mamori nf, sf, FastNetMon nf, sf. One collector at a time,
    pinned to loss_core, bench_flowsend on sender_core."""
    def m_metrics():
        mm = mamori_metrics(api_port, token)
        return {"records": mm.get("mamori_ddos_records_total", 0),
                "counted": mm.get("mamori_ddos_records_counted_total", 0),
                "kdrops": mm.get("mamori_ddos_kernel_drops_total", 0),
                "seq_lost": sum(v for k, v in mm.items() if 'stat="seq_lost_' in k)}

    def f_count():
        return prom(prom_port).get("fastnetmon_total_simple_packets_processed", 0)

    sides = [Side("mamori", ports[0], ports[1], lambda: m_metrics()["records"], m_metrics)]
    if have_fnm:
        sides.append(Side("FastNetMon", ports[2], ports[3], f_count, lambda: {}))
        if loss_core:
            subprocess.run(["taskset", "-a", "-c", "-p", loss_core, str(fnm_pid)],
                           stdout=subprocess.DEVNULL)
    results = {}
    for fmt in formats:
        for side in sides:
            results[(fmt, side.name)] = search(side, sender, sender_core, fmt, seconds, tries)
            time.sleep(1)
    mm = m_metrics()
    print("mamori kernel drops, whole search: mamori_ddos_kernel_drops_total %d, /proc/net/udp %d"
          " (the metric comes with the next datagram after a drop, so it may lag a step)"
          % (mm["kdrops"], sum(udp_drops(ports[:2]).values())))
    print()
    print("no-loss records/s (NetFlow/IPFIX records, sFlow flow samples), one collector at a time on core %s,"
          " bench_flowsend on core %s, %g s a step, a lost step tried %d times:"
          % (loss_core or "any", sender_core or "any", seconds, tries))
    print("%-7s | %-78s | %s" % ("format", "mamori", "FastNetMon 1.2.4" if have_fnm else ""))
    for fmt in formats:
        cols = []
        for side in sides:
            best, note = results.get((fmt, side.name), (None, "not measured"))
            cols.append(("%s/s; %s" % (si(best), note)) if best else ("none; " + note))
        print("%-7s | %-78s | %s" % (fmt, cols[0], cols[1] if len(cols) > 1 else ""))

def si(v):
    return "%.2f M" % (v / 1e6) if v >= 1e6 else "%.0f k" % (v / 1e3)

cmd = sys.argv[1]
if cmd == "relay":
    a = sys.argv[2:]
    relay([(int(a[0]), [int(x) for x in a[1].split(",") if x]),
           (int(a[2]), [int(x) for x in a[3].split(",") if x])], a[4], float(a[5]))
elif cmd == "loss":
    a = sys.argv[2:]
    loss(int(a[0]), a[1], int(a[2]), a[3] == "1", [int(x) for x in a[4:8]], a[8], a[9], a[10],
         int(a[11]), float(a[12]), a[13].split(), int(a[14]))
elif cmd == "wait-mamori":
    wait_mamori(int(sys.argv[2]))
elif cmd == "wait-fnm":
    print(wait_fnm(int(sys.argv[2]), int(sys.argv[3])))
elif cmd == "run":
    scenarios(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
              sys.argv[7] == "1", int(sys.argv[8]), [int(x) for x in sys.argv[9:13]],
              {"m": int(sys.argv[13]), "f": int(sys.argv[14] or 0)})
PY

echo "== machine: $(nproc) cores; load at start:$(uptime | sed 's/.*load average://');" \
	"net.core.rmem_default $(cat /proc/sys/net/core/rmem_default), rmem_max $(cat /proc/sys/net/core/rmem_max)"
if [ "$MODE" = all ]; then
	echo "== mamori $("$B/mamori" version 2>/dev/null) ($B/mamori), NetFlow 127.0.0.1:$M_NF, sFlow 127.0.0.1:$M_SF"
	python3 "$T/helper.py" wait-mamori "$API_PORT" || { tail -20 "$T/mamori/serve.log" >&2; exit 1; }
fi
OUT_NF=$M_NF
OUT_SF=$M_SF
if [ $HAVE_FNM = 1 ]; then
	echo "== FastNetMon $(fastnetmon --version 2>&1 | sed 's/Version: //'), NetFlow 127.0.0.1:$F_NF, sFlow 127.0.0.1:$F_SF"
	st=$(python3 "$T/helper.py" wait-fnm "$PROM_PORT" "$FNM_PID")
	if [ "$st" != up ]; then
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		echo "!! FastNetMon did not start ($st): no comparison; mamori's figures only."
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		tail -15 "$F/fastnetmon.log" "$F/stdout.log" 2>/dev/null
		HAVE_FNM=0
	else
		OUT_NF="$M_NF,$F_NF"
		OUT_SF="$M_SF,$F_SF"
	fi
fi
if [ "$MODE" = all ]; then
	python3 "$T/helper.py" relay "$R_NF" "$OUT_NF" "$R_SF" "$OUT_SF" "$T/relay.counts" \
		"${DDOS_COMPARE_RELAY_RATE:-5000}" > "$T/relay.log" 2>&1 &
	RELAY_PID=$!
	sleep 0.5
	echo "== scenarios a-c in turn (sFlow), d beside them (NetFlow v9, 68 s)"
	python3 "$T/helper.py" run "$API_PORT" "$TOKEN" "$F" "$R_NF" "$R_SF" "$HAVE_FNM" "$PROM_PORT" \
		"$M_NF" "$M_SF" "$F_NF" "$F_SF" "$MAMORI_PID" "${FNM_PID:-0}"
	# The scenarios' mamori goes before the no-loss step: its detector
	# still ticks over the 131,072 hosts of e, which would share the cores.
	echo "mamori peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/"$MAMORI_PID"/status 2>/dev/null)"
	stop_pids "$RELAY_PID" "$MAMORI_PID"
	RELAY_PID=""
	MAMORI_PID=""
fi
if [ "$MODE" = loss ] || [ "${DDOS_COMPARE_LOSS:-1}" = 1 ]; then
	# A fresh mamori for the figure, on one core; the sender on another.
	NCPU=$(nproc)
	LOSS_CORE=${DDOS_LOSS_CORE:-$((NCPU - 1))}
	SENDER_CORE=${DDOS_SENDER_CORE:-0}
	if [ "$NCPU" -lt 2 ]; then
		LOSS_CORE=""
		SENDER_CORE=""
	fi
	L_API=$(free_port tcp)
	L_NF=$(free_port udp)
	L_SF=$(free_port udp)
	mkdir -p "$T/loss"
	cat > "$T/loss/mamori.yaml" <<EOL
$(mamori_head "$T/loss" "$L_API" "$L_NF" "$L_SF")
$(ddos_group customers 203.0.113.0/24)
EOL
	${LOSS_CORE:+taskset -c "$LOSS_CORE"} "$B/mamori" serve -c "$T/loss/mamori.yaml" > "$T/loss/serve.log" 2>&1 &
	LOSS_PID=$!
	python3 "$T/helper.py" wait-mamori "$L_API" || { tail -20 "$T/loss/serve.log" >&2; exit 1; }
	echo "== no-loss rate per format: mamori serve (pid $LOSS_PID) on core ${LOSS_CORE:-any}," \
		"bench_flowsend on core ${SENDER_CORE:-any}, ${DDOS_LOSS_SECONDS:-3} s a step" \
		"(DDOS_COMPARE_LOSS=0 skips it)"
	python3 "$T/helper.py" loss "$L_API" "$TOKEN" "$PROM_PORT" "$HAVE_FNM" \
		"$L_NF" "$L_SF" "$F_NF" "$F_SF" "$B/bench_flowsend" "${SENDER_CORE:-}" "${LOSS_CORE:-}" \
		"${FNM_PID:-0}" "${DDOS_LOSS_SECONDS:-3}" "${DDOS_LOSS_FORMATS:-v5 v9 ipfix sflow}" \
		"${DDOS_LOSS_TRIES:-2}"
	echo "mamori (no-loss instance) peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/"$LOSS_PID"/status 2>/dev/null)"
fi
if [ $HAVE_FNM = 1 ]; then
	if [ "$MODE" = all ]; then
		echo "FastNetMon ban script calls:"
		sed 's/^/  /' "$F/bans.txt" 2>/dev/null
	fi
	echo "FastNetMon peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/"$FNM_PID"/status 2>/dev/null)"
fi
echo "== load at end:$(uptime | sed 's/.*load average://')"
