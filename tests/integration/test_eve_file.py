#!/usr/bin/env python3
"""Suricata EVE ingestion from a followed file: alert, dns, http, tls, flow
and fileinfo records are mapped to ECS; lines appended later and a rotated
file are picked up; a broken line is kept with a parse-error tag.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import Mamori, check, run  # noqa: E402

BASE = {"timestamp": "2026-11-25T10:11:12.123456+0000", "flow_id": 1234567890123456,
        "in_iface": "eth0", "src_ip": "10.1.2.3", "src_port": 51234, "dest_ip": "192.0.2.10",
        "dest_port": 80, "proto": "TCP"}

RECORDS = [
    dict(BASE, event_type="alert", alert={"action": "allowed", "gid": 1, "signature_id": 2019401, "rev": 3,
                                          "signature": "ET POLICY evetoken suspicious agent",
                                          "category": "Potential Corporate Privacy Violation", "severity": 2}),
    dict(BASE, event_type="dns", proto="UDP", dest_port=53,
         dns={"type": "query", "id": 4711, "rrname": "evedns.example.org", "rrtype": "A", "tx_id": 0}),
    dict(BASE, event_type="http", http={"hostname": "www.example.org", "url": "/evehttp/index.html",
                                        "http_user_agent": "curl/7.88", "http_method": "GET",
                                        "protocol": "HTTP/1.1", "status": 200, "length": 512}),
    dict(BASE, event_type="tls", dest_port=443, tls={"subject": "CN=evetls.example.org", "issuerdn": "CN=Test CA",
                                                     "sni": "evetls.example.org", "version": "TLS 1.3",
                                                     "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865"}}),
    dict(BASE, event_type="flow", flow={"pkts_toserver": 10, "pkts_toclient": 8, "bytes_toserver": 1200,
                                        "bytes_toclient": 6400, "state": "closed"}),
    dict(BASE, event_type="fileinfo", fileinfo={"filename": "/evefile.exe", "size": 4096,
                                                "sha256": "a" * 64, "magic": "PE32 executable"}),
]


def test_eve_file_follow():
    m = Mamori()
    eve = os.path.join(m.dir, "eve.json")
    with open(eve, "w") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    text = open(m.config).read().replace("ingest:\n", f"ingest:\n  json_files: [{eve}]\n", 1)
    open(m.config, "w").write(text)
    try:
        m.start()
        ans = m.wait_total(len(RECORDS), **{"event.dataset": "suricata.eve"})
        check(ans["total"] == len(RECORDS), f"total {ans['total']}")
        by_type = {e.get("suricata.eve.event_type"): e for e in ans["events"]}
        a = by_type["alert"]
        check(a.get("rule.id") in ("2019401", 2019401), f"alert rule.id: {a}")
        check("evetoken" in a.get("rule.name", ""), f"alert rule.name: {a}")
        check(a.get("source.ip") == "10.1.2.3" and a.get("destination.port") == 80, f"alert addrs: {a}")
        check(by_type["dns"].get("dns.question.name") == "evedns.example.org", f"dns: {by_type['dns']}")
        check(by_type["http"].get("url.domain") == "www.example.org", f"http: {by_type['http']}")
        check(by_type["http"].get("http.response.status_code") == 200, f"http status: {by_type['http']}")
        for field, value in (("url.domain", "www.example.org"), ("dns.question.name", "evedns.example.org")):
            ans = m.search(**{field: value})
            check(ans["total"] == 1 and ans["events"][0].get(field) == value, f"filter {field}: {ans}")
        check(by_type["tls"].get("tls.client.server_name") == "evetls.example.org", f"tls: {by_type['tls']}")
        check(by_type["flow"].get("source.bytes") == 1200, f"flow: {by_type['flow']}")
        check(by_type["fileinfo"].get("file.hash.sha256") == "a" * 64, f"fileinfo: {by_type['fileinfo']}")

        # Appended lines, including a broken one.
        with open(eve, "a") as f:
            f.write(json.dumps(dict(BASE, event_type="alert", alert={"signature": "appendedtoken",
                                                                     "signature_id": 1, "severity": 1})) + "\n")
            f.write('{"event_type": "alert", "broken\n')
        m.wait_total(1, q="appendedtoken")
        ans = m.wait_total(1, q="broken")
        check("_parse_error" in ans["events"][0].get("tags", []), f"broken line: {ans['events'][0]}")

        # Rotation: the file is moved away and a new one appears.
        os.rename(eve, eve + ".1")
        time.sleep(0.5)
        with open(eve, "w") as f:
            f.write(json.dumps(dict(BASE, event_type="alert", alert={"signature": "rotatedtoken",
                                                                     "signature_id": 2, "severity": 1})) + "\n")
        m.wait_total(1, q="rotatedtoken")
        check(m.stop() == 0, "clean stop")
    finally:
        m.cleanup()


def test_json_tcp_generic():
    import socket
    m = Mamori()
    try:
        m.start()
        s = socket.create_connection(("127.0.0.1", m.json_port))
        s.sendall(json.dumps({"@timestamp": "2026-11-25T08:00:00Z", "message": "generictoken hello",
                              "host": {"name": "app7"}, "custom": {"depth": {"value": 42}},
                              "user.name": "alice"}).encode() + b"\n")
        s.close()
        ev = m.wait_total(1, q="generictoken")["events"][0]
        check(ev.get("host.name") == "app7", f"nested ECS field: {ev}")
        check(ev.get("user.name") == "alice", f"dotted ECS field: {ev}")
        check(ev.get("custom.depth.value") == 42, f"overflow field: {ev}")
        check(ev.get("@timestamp", "").startswith("2026-11-25T08:00:00"), f"timestamp: {ev}")
    finally:
        m.cleanup()


if __name__ == "__main__":
    run([test_eve_file_follow, test_json_tcp_generic])
