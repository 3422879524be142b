#!/usr/bin/env python3
"""Syslog ingestion end to end with util-linux `logger` as the real client:
UDP RFC 3164, TCP RFC 5424 with structured data, TCP octet counting, CEF in
syslog, and malformed input kept with a parse-error tag; then the API is
asked for each and the parsed fields are checked.
"""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import Mamori, check, run  # noqa: E402

M = None


def logger(*args):
    cmd = ["logger", "-n", "127.0.0.1", "-P", str(M.syslog_port)] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"logger failed: {r.stderr}")


def one(**params):
    ans = M.wait_total(1, **params)
    check(ans["total"] == 1, f"expected one event for {params}, got {ans['total']}")
    return ans["events"][0]


def test_udp_rfc3164():
    logger("-d", "--rfc3164", "-t", "app3164", "-p", "auth.warning", "udp3164token failed password for root")
    ev = one(q="udp3164token")
    check(ev.get("log.syslog.appname") == "app3164", f"appname: {ev}")
    check(ev.get("log.syslog.severity.code") == 4, f"severity: {ev}")
    check(ev.get("log.syslog.facility.code") == 4, f"facility: {ev}")
    check("udp3164token failed password for root" in ev.get("message", ""), f"message: {ev}")
    check(ev.get("log.source.address", "").startswith("127.0.0.1"), f"peer: {ev}")


def test_tcp_rfc5424_structured_data():
    logger("-T", "--rfc5424", "--msgid", "ID47", "--sd-id", "exampleSDID@32473",
           "--sd-param", 'iut="3"', "--sd-param", 'eventSource="Application"',
           "-t", "app5424", "-p", "local4.notice", "tcp5424token with structured data")
    ev = one(q="tcp5424token")
    check(ev.get("log.syslog.appname") == "app5424", f"appname: {ev}")
    check(ev.get("log.syslog.msgid") == "ID47", f"msgid: {ev}")
    check(ev.get("log.syslog.version") in ("1", 1), f"version: {ev}")
    check(ev.get("log.syslog.facility.code") == 20, f"facility: {ev}")
    check(ev.get("log.syslog.structured_data.exampleSDID@32473.iut") == "3", f"sd: {ev}")
    check(ev.get("log.syslog.structured_data.exampleSDID@32473.eventSource") == "Application", f"sd: {ev}")
    check(ev.get("host.name"), f"host.name: {ev}")
    # Field filters find it too.
    ans = M.search(**{"log.syslog.appname": "app5424"})
    check(ans["total"] == 1, f"filter on appname: {ans['total']}")
    ans = M.search(**{"process.name": "app5424"})
    check(ans["total"] == 1, f"filter on process.name (a column): {ans['total']}")
    ans = M.search(**{"process.name": "app54*"})
    check(ans["total"] == 1, f"prefix filter on process.name: {ans['total']}")


def test_tcp_octet_counting():
    for i in range(3):
        logger("-T", "--octet-count", "--rfc5424", "-t", "appoctet", f"octettoken number {i}")
    ans = M.wait_total(3, q="octettoken")
    check(ans["total"] == 3, f"octet-counted: {ans['total']}")
    check(all(e.get("log.syslog.appname") == "appoctet" for e in ans["events"]), "appname on all")


def test_cef_in_syslog():
    logger("-T", "--rfc3164", "-t", "cefdev",
           "CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 msg=ceftoken worm stopped")
    ev = one(q="ceftoken")
    check(ev.get("cef.device.vendor") == "Security", f"vendor: {ev}")
    check(ev.get("cef.name") == "worm successfully stopped", f"name: {ev}")
    check(ev.get("source.ip") == "10.0.0.1", f"src: {ev}")
    check(ev.get("destination.ip") == "2.1.2.2", f"dst: {ev}")
    check(ev.get("source.port") == 1232, f"spt: {ev}")


def test_malformed_kept_with_tag():
    s = socket.create_connection(("127.0.0.1", M.syslog_port))
    s.sendall(b"<999>1 badtoken \xff\xfe not syslog at all\n")
    s.close()
    ev = one(q="badtoken")
    check("_parse_error" in ev.get("tags", []), f"tags: {ev}")
    check("badtoken" in ev.get("event.original", ""), f"original: {ev}")
    status, body = M.get("/metrics")
    check(status == 200 and b"mamori_parse_errors_total" in body, "parse errors in metrics")


def test_long_line_cut_and_tagged():
    s = socket.create_connection(("127.0.0.1", M.syslog_port))
    s.sendall(b"<13>Nov 25 10:00:00 host longapp: longtoken " + b"x" * 200000 + b"\n")
    s.sendall(b"<13>Nov 25 10:00:01 host longapp: aftertoken still framed\n")
    s.close()
    ev = one(q="longtoken")
    check("_truncated" in ev.get("tags", []), f"tags: {str(ev)[:300]}")
    one(q="aftertoken")


def main():
    global M
    M = Mamori(ingest_extra="  max_line: 65536\n")
    try:
        M.start()
        run([test_udp_rfc3164, test_tcp_rfc5424_structured_data, test_tcp_octet_counting,
             test_cef_in_syslog, test_malformed_kept_with_tag, test_long_line_cut_and_tagged])
    finally:
        M.cleanup()


if __name__ == "__main__":
    main()
