#!/bin/sh
# mamori's mail authentication next to rspamd 3.4 (Debian 12), on one corpus
# in one run, so that the README can print both figures.
#
#   1. build/bench_mail writes its generated corpus (signed messages, their
#      envelopes, the DNS records) and measures mamori on it: SPF + DKIM +
#      DMARC per message, the whole milter decision, peak memory;
#   2. a private Unbound on 127.0.0.1 serves the corpus's records and nothing
#      else;
#   3. rspamd with a private configuration that loads only the SPF, DKIM and
#      DMARC modules (no other module, no regexp rules, no statistics, no
#      redis, no fuzzy) and one normal worker, its resolver pointed at that
#      Unbound; one pass warms its caches, a second pass over HTTP /checkv2
#      is measured: messages per CPU-second of rspamd's worker processes
#      (utime+stime from /proc), p50/p99 latency as the client sees it,
#      peak RSS, and how many verdicts match the corpus (a misconfigured
#      rspamd is not a fast one).
#
# Usage: bench/mail_compare.sh [messages] [domains]   (default 5000 100)
# Environment: BUILD (default build), MAIL_COMPARE_CONCURRENCY (client
# connections, default 4), MAIL_COMPARE_NICE (e.g. -10: run both sides, the
# client and Unbound at that niceness, so that other jobs on a shared machine
# preempt them less; wall-clock p99 is what it changes, not CPU-seconds),
# KEEP=1 keeps the temp dir.
# It builds nothing, sends nothing off 127.0.0.1, prints figures, and never
# passes or fails on them; every process it starts is stopped at the end.
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=bench/lib.sh
. bench/lib.sh
B=${BUILD:-build}
N=${1:-5000}
D=${2:-100}
CONC=${MAIL_COMPARE_CONCURRENCY:-4}
NICE=""
[ -n "${MAIL_COMPARE_NICE:-}" ] && NICE="nice -n $MAIL_COMPARE_NICE"
if [ ! -x "$B/bench_mail" ]; then
	echo "mail_compare: $B/bench_mail is missing; build it first (make build)" >&2
	exit 1
fi
T=$(mktemp -d /tmp/mamori-mail-compare.XXXXXX)
UNBOUND_PID=""
RSPAMD_PID=""
cleanup() {
	# shellcheck disable=SC2086
	stop_pids $RSPAMD_PID $UNBOUND_PID
	remove_tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM


echo "== machine: $(nproc) cores; load at start:$(uptime | sed 's/.*load average://')${NICE:+; run under $NICE}"
echo "== 1. mamori (bench_mail: in-memory zone, one thread)"
$NICE "$B/bench_mail" --write "$T/corpus" "$N" "$D" || exit 1
echo

if ! command -v rspamd >/dev/null 2>&1 || ! command -v unbound >/dev/null 2>&1; then
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
	echo "!! rspamd (or unbound) is NOT INSTALLED: no comparison was made."
	echo "!! Install it with:   sh scripts/deps.sh --bench"
	echo "!! (that is: apt-get install --no-install-recommends rspamd unbound)"
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
	exit 0
fi

# The helper: Unbound's configuration from zone.txt, readiness probes, and
# the /checkv2 client.
cat > "$T/helper.py" <<'PY'
import concurrent.futures, http.client, json, os, socket, sys, threading, time

def unbound_conf(zone, root, port):
    out = [f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{root}"
    pidfile: "{root}/unbound.pid"
    use-syslog: no
    logfile: "{root}/unbound.log"
    module-config: "iterator"
    num-threads: 1
    local-zone: "." static"""]
    for line in open(zone):
        name, rtype, value = line.rstrip("\n").split("\t", 2)
        if rtype == "TXT":
            parts = [value[i:i + 250] for i in range(0, len(value), 250)] or [""]
            value = " ".join('"' + p.replace('"', '\\"') + '"' for p in parts)
        out.append(f"    local-data: '{name}. {rtype} {value}'")
    out.append("remote-control:\n    control-enable: no\n")
    return "\n".join(out)

def dns_up(port):
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(q, ("127.0.0.1", port))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False

def http_up(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/ping")
        return c.getresponse().status == 200
    except OSError:
        return False

def wait(what, fn, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if fn():
            return
        time.sleep(0.2)
    sys.exit(f"mail_compare: {what} did not come up in {seconds} s")

def proc_cpu(pid):
    """utime+stime of pid in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0

def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(out)

def pss(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0

def vm_hwm(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0

def title(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"

# Symbols per check: (pass symbols, fail symbols).
CHECKS = {
    "spf": ({"R_SPF_ALLOW"}, {"R_SPF_FAIL", "R_SPF_SOFTFAIL"}),
    "dkim": ({"R_DKIM_ALLOW"}, {"R_DKIM_REJECT"}),
    "dmarc": ({"DMARC_POLICY_ALLOW"}, {"DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE"}),
}

def pct(lat, q):
    return lat[min(len(lat) - 1, int(len(lat) * q))] * 1e6

def run(corpus, port, conc, rspamd_pid, unbound_pid, passes):
    meta = []
    for line in open(os.path.join(corpus, "meta.tsv")):
        if line.startswith("#"):
            continue
        f, ip, helo, mfrom, rcpt, expect = line.rstrip("\n").split("\t")
        with open(os.path.join(corpus, f), "rb") as fh:
            meta.append((fh.read(), ip, helo, mfrom, rcpt, expect))
    local = threading.local()

    def check(item):
        body, ip, helo, mfrom, rcpt, expect = item
        for attempt in range(2):
            if not hasattr(local, "c"):
                local.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.perf_counter()
            try:
                local.c.request("POST", "/checkv2", body=body, headers={
                    "IP": ip, "Helo": helo, "From": mfrom, "Rcpt": rcpt,
                    "Connection": "keep-alive"})
                r = local.c.getresponse()
                data = r.read()
                dt = time.perf_counter() - t0
                if r.getheader("Connection", "").lower() == "close":
                    local.c.close()
                    del local.c
                return dt, r.status, data, expect
            except (OSError, http.client.HTTPException):
                local.c.close()
                del local.c
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    kids = children(rspamd_pid)
    workers = [k for k in kids if "normal" in title(k)] or kids
    others = [k for k in kids if k not in workers]
    for p in range(passes):
        if p:
            # The hs_helper compiles hyperscan databases after start-up and
            # the workers then load them: wait until the other processes are
            # idle so that the measured pass holds message work only.
            for _ in range(120):
                c0 = sum(proc_cpu(k) for k in others + [rspamd_pid])
                time.sleep(1)
                if sum(proc_cpu(k) for k in others + [rspamd_pid]) - c0 < 0.02:
                    break
        measured = p == passes - 1
        pids = [rspamd_pid] + kids
        cpu0 = {pid: proc_cpu(pid) for pid in pids}
        ub0 = proc_cpu(unbound_pid)
        w0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(conc) as ex:
            res = list(ex.map(check, meta))
        wall = time.perf_counter() - w0
        cpu = {pid: proc_cpu(pid) - cpu0[pid] for pid in pids}
        ub = proc_cpu(unbound_pid) - ub0
        if not measured:
            print(f"warm-up pass: {len(res)} messages in {wall:.1f} s")
            continue
        lat = sorted(r[0] for r in res)
        n = len(lat)
        wcpu = sum(cpu[pid] for pid in workers)
        print(f"rspamd processes: main {rspamd_pid}; "
              + ", ".join(f"{w} ({title(w)})" for w in kids))
        print(f"{'rspamd SPF+DKIM+DMARC (warm cache)':34s} {n / wcpu if wcpu else 0:9.0f} msg/CPU-s"
              f"   p50 {pct(lat, 0.5):7.1f} us   p99 {pct(lat, 0.99):7.1f} us"
              f"   max {lat[-1] * 1e6:7.1f} us")
        print(f"  {n} messages, {conc} client connections, {wall:.2f} s wall;"
              f" CPU: normal worker {wcpu:.2f} s, others {sum(cpu[k] for k in others):.2f} s,"
              f" main {cpu[rspamd_pid]:.2f} s,"
              f" unbound {ub:.2f} s (not counted)")
        right = {k: 0 for k in CHECKS}
        all_right = 0
        bad = []
        seen = set()
        inside = []
        errors = 0
        for dt, status, data, expect in res:
            if status != 200:
                errors += 1
                continue
            doc = json.loads(data)
            syms = set(doc.get("symbols", {}))
            seen |= syms
            inside.append(float(doc.get("time_real", 0)))
            ok_all = True
            for k, (good, fail) in CHECKS.items():
                ok = bool(syms & good) if expect == "pass" else bool(syms & fail) and not syms & good
                right[k] += ok
                ok_all &= ok
            all_right += ok_all
            if not ok_all and len(bad) < 3:
                bad.append((expect, sorted(syms)))
        print(f"  results as the corpus says: {all_right} / {n} (spf {right['spf']}, dkim {right['dkim']},"
              f" dmarc {right['dmarc']}; HTTP errors {errors})"
              + ("" if all_right == n else "   <-- WRONG RESULTS"))
        for expect, syms in bad:
            print(f"    expected {expect}, got: {' '.join(syms)}")
        print(f"  every symbol seen: {' '.join(sorted(seen))}")
        inside.sort()
        if inside:
            print(f"  rspamd's own time_real per task: p50 {pct(inside, 0.5):7.1f} us"
                  f"   p99 {pct(inside, 0.99):7.1f} us")
        # The latency one message at a time (what a single SMTP session
        # waits), apart from the loaded pass above where requests queue.
        local.__dict__.clear()
        seq = sorted(check(item)[0] for item in meta)
        print(f"  one request at a time (latency it adds): p50 {pct(seq, 0.5):7.1f} us"
              f"   p99 {pct(seq, 0.99):7.1f} us   max {seq[-1] * 1e6:7.1f} us")
        print("memory: peak RSS (VmHWM; pages shared after fork are counted in each): "
              + ", ".join(f"{title(w).split(' ')[1]} {vm_hwm(w):.0f} MiB" for w in kids)
              + f", main {vm_hwm(rspamd_pid):.0f} MiB; PSS now, all rspamd processes:"
              f" {sum(pss(k) for k in kids + [rspamd_pid]):.0f} MiB")

cmd = sys.argv[1]
if cmd == "unbound-conf":
    print(unbound_conf(sys.argv[2], sys.argv[3], int(sys.argv[4])))
elif cmd == "wait-dns":
    wait("unbound", lambda: dns_up(int(sys.argv[2])), 30)
elif cmd == "wait-http":
    wait("rspamd", lambda: http_up(int(sys.argv[2])), 120)
elif cmd == "run":
    run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), 2)
PY

echo "== 2. rspamd $(rspamd --version 2>/dev/null | sed 's/.*version //') on the same corpus: SPF, DKIM, DMARC only"
DNS_PORT=$(free_port tcp)
python3 "$T/helper.py" unbound-conf "$T/corpus/zone.txt" "$T" "$DNS_PORT" > "$T/unbound.conf" || exit 1
if ! unbound-checkconf "$T/unbound.conf" >/dev/null; then
	echo "mail_compare: unbound-checkconf refused $T/unbound.conf" >&2
	exit 1
fi
$NICE unbound -d -c "$T/unbound.conf" > "$T/unbound.out" 2>&1 &
UNBOUND_PID=$!
python3 "$T/helper.py" wait-dns "$DNS_PORT" || exit 1

# A private configuration. Only the three modules are loaded: DKIM is a C
# module (options.filters), SPF and DMARC are Lua plugins named one by one
# in modules.path; their settings are Debian's (modules.d/*.conf) with
# local.d/ and override.d/ here. No "lua" rules file, so none of the
# regexp/heuristic rules of rules/rspamd.lua; no redis servers, so no
# statistics, fuzzy, history or DMARC reports.
R=$T/rspamd
mkdir -p "$R/local.d" "$R/override.d" "$R/db" "$R/run" "$R/log"
HTTP_PORT=$(free_port tcp)
cat > "$R/rspamd.conf" <<EOF
options {
    pidfile = "$R/run/rspamd.pid";
    filters = "dkim";
    check_all_filters = false;
    cache_file = "$R/db/symbols.cache";
    dynamic_conf = "$R/db/rspamd_dynamic";
    history_file = "$R/db/rspamd.history";
    control_socket = "$R/run/rspamd.sock mode=0600";
    stats_file = "$R/db/stats.ucl";
    hs_cache_dir = "$R/db/";
    tempdir = "$R/run";
    url_tld = "\${SHAREDIR}/effective_tld_names.dat";
    explicit_modules = [];
    local_addrs = [];
    task_timeout = 8s;
    mime = true;
    dns {
        nameserver = ["127.0.0.1:$DNS_PORT"];
        timeout = 1s;
        sockets = 16;
        retransmits = 5;
    }
    .include(try=true; priority=10) "$R/override.d/options.inc"
}
logging {
    type = "file";
    filename = "$R/log/rspamd.log";
    level = "error";
}
worker "normal" {
    bind_socket = "127.0.0.1:$HTTP_PORT";
    count = 1;
    mime = true;
}
modules {
    path = "\${PLUGINSDIR}/spf.lua";
    path = "\${PLUGINSDIR}/dmarc.lua";
}
.include "\$CONFDIR/actions.conf"
group "policies" {
    .include "\$CONFDIR/scores.d/policies_group.conf"
}
.include "\$CONFDIR/modules.d/spf.conf"
.include "\$CONFDIR/modules.d/dkim.conf"
.include "\$CONFDIR/modules.d/dmarc.conf"
EOF
printf '# Debian defaults, nothing changed.\n' > "$R/local.d/spf.conf"
printf '# Debian defaults, nothing changed.\n' > "$R/local.d/dkim.conf"
printf '# No reporting: that needs redis.\nreporting { enabled = false; }\n' > "$R/local.d/dmarc.conf"

VARS="--var=LOCAL_CONFDIR=$R --var=DBDIR=$R/db --var=RUNDIR=$R/run --var=LOGDIR=$R/log"
# shellcheck disable=SC2086
if ! rspamadm $VARS configtest -s -c "$R/rspamd.conf" > "$R/configtest.out" 2>&1; then
	echo "mail_compare: rspamadm configtest failed:" >&2
	cat "$R/configtest.out" >&2
	exit 1
fi
# shellcheck disable=SC2086
$NICE rspamd -f -i -u root -g root -c "$R/rspamd.conf" $VARS > "$R/rspamd.out" 2>&1 &
RSPAMD_PID=$!
if ! python3 "$T/helper.py" wait-http "$HTTP_PORT"; then
	tail -20 "$R/rspamd.out" "$R/log/rspamd.log" >&2
	exit 1
fi
sleep 1 # let every worker finish starting before its CPU is read
$NICE python3 "$T/helper.py" run "$T/corpus" "$HTTP_PORT" "$CONC" "$RSPAMD_PID" "$UNBOUND_PID"
echo "== load at end:$(uptime | sed 's/.*load average://')"
