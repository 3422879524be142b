#!/bin/sh
# The benchmark of the platform foundation, one command (`make bench`):
#   1. parser rates per format, one core (bench_parse);
#   2. the store's write and index rates (bench_store);
#   3. end to end: N RFC 5424 lines over TCP into `mamori serve` until all are
#      stored and searchable, with peak memory;
#   4. rsyslog (Debian) on the same input in the same run: to a file with the
#      default template, and with every header field rendered as JSON.
# It prints figures; it never passes or fails.
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=bench/lib.sh
. bench/lib.sh
B=${BUILD:-build}
N=${BENCH_LINES:-2000000}
T=$(mktemp -d /tmp/mamori-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

cpu_seconds() { # utime+stime of a pid, in seconds
	awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"
}
now() { date +%s.%N; }

echo "== machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "== 1. parsers (one thread)"
[ -x "$B/bench_parse" ] && "$B/bench_parse"
echo
echo "== 2. store (one writer)"
[ -x "$B/bench_store" ] && "$B/bench_store" "$T/store"
rm -rf "$T/store"
echo
echo "== 3. end to end: $N RFC 5424 lines over TCP into mamori serve (SQLite, full-text)"
"$B/bench_send" gen "$T/lines.txt" "$N"
echo "input: $(wc -c < "$T/lines.txt") bytes, $(awk '{s+=length($0)+1} END {printf "%.0f", s/NR}' "$T/lines.txt") bytes/line"
API=$(free_port tcp); SYS=$(free_port tcp); JS=$(free_port tcp)
cat > "$T/mamori.yaml" <<YAML
data_dir: $T/var
api:
  listen: 127.0.0.1:$API
  tokens: [bench-token]
ingest:
  syslog_udp: ""
  syslog_tcp: 127.0.0.1:$SYS
  json_tcp: 127.0.0.1:$JS
YAML
"$B/mamori" serve -c "$T/mamori.yaml" 2> "$T/mamori.log" &
MP=$!
for i in $(seq 100); do
	curl -sf "http://127.0.0.1:$API/api/v1/health" >/dev/null && break
	sleep 0.1
done
stored() {
	curl -s -H 'Authorization: Bearer bench-token' "http://127.0.0.1:$API/metrics" |
		awk '/^mamori_events_stored_total /{print $2}'
}
t0=$(now); c0=$(cpu_seconds $MP)
"$B/bench_send" send "127.0.0.1:$SYS" "$T/lines.txt" 2
while [ "$(stored)" != "$N" ]; do sleep 0.05; done
t1=$(now); c1=$(cpu_seconds $MP)
searchable() {
	curl -s -H 'Authorization: Bearer bench-token' "http://127.0.0.1:$API/api/v1/events?q=seq&limit=1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}
while [ "$(searchable)" != "$N" ]; do sleep 0.1; done
t2=$(now)
hwm=$(awk '/VmHWM/{print $2}' /proc/$MP/status)
kill -TERM $MP; wait $MP
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v ca="$c0" -v cb="$c1" -v hwm="$hwm" 'BEGIN {
	printf "mamori: %d events stored in %.2f s: %.0f events/s end to end (%.2f CPU-s per million)\n", n, b-a, n/(b-a), (cb-ca)/(n/1e6)
	printf "mamori: all %d full-text searchable after %.2f s: %.0f events/s\n", n, c-a, n/(c-a)
	printf "mamori: peak memory (VmHWM) %.0f MiB\n", hwm/1024
}'
du -sh "$T/var" | awk '{print "mamori: store size " $1}'
echo
echo "== 4. rsyslog $(rsyslogd -v 2>/dev/null | head -1 | awk '{print $2}' | tr -d ,) on the same input"
if ! command -v rsyslogd >/dev/null; then
	echo "rsyslogd not installed (scripts/deps.sh installs it)"
	exit 0
fi
rsyslog_run() { # name, template definition, template name
	RP=$(free_port tcp)
	mkdir -p "$T/rs-$1"
	cat > "$T/rs-$1/rsyslog.conf" <<RS
global(workDirectory="$T/rs-$1")
module(load="imtcp")
$2
input(type="imtcp" address="127.0.0.1" port="$RP")
action(type="omfile" file="$T/rs-$1/out.log" template="$3" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off")
RS
	rsyslogd -n -f "$T/rs-$1/rsyslog.conf" -i "$T/rs-$1/pid" 2>"$T/rs-$1/err" &
	RSP=$!
	sleep 1
	t0=$(now); c0=$(cpu_seconds $RSP)
	"$B/bench_send" send "127.0.0.1:$RP" "$T/lines.txt" 2 >/dev/null
	while [ "$(wc -l < "$T/rs-$1/out.log" 2>/dev/null || echo 0)" -lt "$N" ]; do sleep 0.1; done
	t1=$(now); c1=$(cpu_seconds $RSP)
	hwm=$(awk '/VmHWM/{print $2}' /proc/$RSP/status)
	kill -TERM $RSP; wait $RSP 2>/dev/null
	awk -v n="$N" -v a="$t0" -v b="$t1" -v ca="$c0" -v cb="$c1" -v hwm="$hwm" -v name="$1" 'BEGIN {
		printf "rsyslog %s: %.0f lines/s (%.2f CPU-s per million), peak memory %.0f MiB\n", name, n/(b-a), (cb-ca)/(n/1e6), hwm/1024
	}'
	rm -rf "$T/rs-$1"
}
rsyslog_run file '' RSYSLOG_FileFormat
rsyslog_run json 'template(name="ecsjson" type="list" option.jsonf="on") {
	property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
	property(outname="host.name" name="hostname" format="jsonf")
	property(outname="log.syslog.appname" name="app-name" format="jsonf")
	property(outname="log.syslog.procid" name="procid" format="jsonf")
	property(outname="log.syslog.msgid" name="msgid" format="jsonf")
	property(outname="log.syslog.facility.name" name="syslogfacility-text" format="jsonf")
	property(outname="log.syslog.severity.name" name="syslogseverity-text" format="jsonf")
	property(outname="structured_data" name="structured-data" format="jsonf")
	property(outname="message" name="msg" format="jsonf")
}' ecsjson
