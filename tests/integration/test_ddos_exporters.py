#!/usr/bin/env python3
"""Per-exporter telemetry health in `mamori serve`: GET /api/v1/ddos/exporters.

A private serve on loopback hears three exporters at once, each a
tools/flowgen.py run with its own identity:

  - IPFIX from 127.0.0.2 (observation domain 7), sampled 1:10, 1 s active
    timeout, with two datagrams left out (--drop): the API must count
    exactly the data records flowgen says it skipped;
  - NetFlow v9 from 127.0.0.3 (source id 3), sampled 1:20, a 6 s active
    timeout (longer than ddos.exporter_warn, 3 s here), nothing lost;
  - sFlow from agent 192.0.2.254, sampled 1:50, one datagram left out.

Each exporter's datagrams, records, loss, lateness, restarts, sampling,
templates, active-timeout warning and last-seen time are checked against
flowgen's summary, then the route's paging, address filter and refusals.
Loopback only; serve is stopped by its own process id (SIGTERM).
"""
import calendar
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamori_test  # noqa: E402
from mamori_test import Mamori, TestFailure, check, free_port, run  # noqa: E402

DURATION = 10


class Flowgen(mamori_test.Flowgen):
    """One flowgen run in the background, paced in real time; its stderr
    summary says what was sent and what was left out."""

    def __init__(self, fmt, port, *args):
        super().__init__(["--format", fmt, "--port", port, "--duration", DURATION,
                          "--background-pps", "2000", *args])

    def wait(self, timeout=120):
        text = super().wait(timeout)
        m = re.search(r"sent (\d+) datagrams, (\d+) flow records", text)
        check(m, f"no summary from flowgen: {text}")
        self.sent_datagrams, self.sent_records = int(m.group(1)), int(m.group(2))
        m = re.search(r"dropped (\d+) datagrams, (\d+) flow records, sequence loss (\d+) (\w+), "
                      r"(\d+) with templates", text)
        self.dropped = int(m.group(1)) if m else 0
        self.loss = int(m.group(3)) if m else 0
        self.loss_unit = m.group(4) if m else None
        check(not m or m.group(5) == "0", f"a dropped datagram carried templates: {text}")
        print("  " + text.strip(), flush=True)
        return self


def exporters(m, **params):
    st, body = m.get("/api/v1/ddos/exporters", params or None)
    check(st == 200, f"/api/v1/ddos/exporters {params}: {st} {body[:300]!r}")
    return json.loads(body)


def one(ans, exporter, protocol):
    got = [e for e in ans["exporters"] if e["exporter"] == exporter and e["protocol"] == protocol]
    check(len(got) == 1, f"{exporter} {protocol}: {len(got)} entries in {ans}")
    return got[0]


def test_exporters():
    nf, sf = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    m = Mamori(extra_config=f"""ddos:
  netflow: 127.0.0.1:{nf}
  sflow: 127.0.0.1:{sf}
  exporter_warn: 3s
  groups:
    - name: customers
      prefixes: [203.0.113.0/24]
""")
    try:
        m.start()
        st, body = m.get("/api/v1/ddos/exporters", auth=False)
        check(st == 401, f"no token: {st}")
        check(exporters(m) == {"total": 0, "limit": 100, "offset": 0, "exporters": []},
              "exporters before any flow")
        t0 = time.time()
        gens = [
            Flowgen("ipfix", nf, "--bind", "127.0.0.2", "--exporter-id", 7, "--sampling", 10,
                    "--active-timeout", 1, "--inactive-timeout", 1, "--drop", "5,9", "--seed", 11),
            Flowgen("v9", nf, "--bind", "127.0.0.3", "--exporter-id", 3, "--sampling", 20,
                    "--active-timeout", 6, "--inactive-timeout", 6, "--seed", 12),
            Flowgen("sflow", sf, "--agent", "192.0.2.254", "--sampling", 50, "--drop", 7,
                    "--seed", 13),
        ]
        ipfix, v9, sflow = [g.wait() for g in gens]
        t1 = time.time()
        check(ipfix.dropped == 2 and ipfix.loss > 0 and ipfix.loss_unit == "records",
              "flowgen dropped IPFIX records")
        check(sflow.dropped == 1 and sflow.loss == 1 and sflow.loss_unit == "datagrams",
              "flowgen dropped an sFlow datagram")

        # Everything sent has arrived once the datagram counts match.
        want = {("127.0.0.2", "ipfix"): ipfix.sent_datagrams,
                ("127.0.0.3", "netflow9"): v9.sent_datagrams,
                ("192.0.2.254", "sflow"): sflow.sent_datagrams}
        deadline = time.time() + 20
        while True:
            ans = exporters(m)
            got = {(e["exporter"], e["protocol"]): e["datagrams"] for e in ans["exporters"]}
            if got == want:
                break
            if time.time() > deadline:
                raise TestFailure(f"datagrams {got}, expected {want}\n" + m.read_log())
            time.sleep(0.2)
        check(ans["total"] == 3, f"total {ans['total']}")

        e = one(ans, "127.0.0.2", "ipfix")
        print(f"  ipfix: {e}", flush=True)
        check(e["listener"] == "netflow", "ipfix listener")
        check(e["observation_domain"] == 7 and e["domain"] == 7, "observation domain")
        check(e["records"] == ipfix.sent_records, f"ipfix records {e['records']} != {ipfix.sent_records}")
        check(e["records_lost"] == ipfix.loss, f"ipfix records_lost {e['records_lost']} != {ipfix.loss}")
        check(e["datagrams_lost"] is None, "ipfix counts records, not datagrams")
        check(e["datagrams_late"] == 0 and e["sequence_resets"] == 0, "ipfix late/resets")
        check(e["sampling"] == 10 and e["sampling_default"] is False, "ipfix sampling")
        check(e["templates"] == 3, f"ipfix templates {e['templates']}")
        check(e["long_active_timeout"] is False and e["longest_record_ms"] < 3000,
              f"ipfix active timeout {e['longest_record_ms']}")

        e = one(ans, "127.0.0.3", "netflow9")
        print(f"  v9: {e}", flush=True)
        check(e["listener"] == "netflow" and e["source_id"] == 3, "v9 source id")
        check(e["records"] == v9.sent_records, f"v9 records {e['records']} != {v9.sent_records}")
        check(e["datagrams_lost"] == 0 and e["records_lost"] is None, "v9 lost")
        check(e["datagrams_late"] == 0 and e["sequence_resets"] == 0, "v9 late/resets")
        check(e["sampling"] == 20 and e["sampling_default"] is False, "v9 sampling")
        check(e["templates"] == 3, f"v9 templates {e['templates']}")
        check(e["long_active_timeout"] is True and e["longest_record_ms"] > 3000,
              f"v9 active timeout {e['longest_record_ms']}")

        e = one(ans, "192.0.2.254", "sflow")
        print(f"  sflow: {e}", flush=True)
        check(e["listener"] == "sflow" and e["sub_agent"] == 0, "sflow sub-agent")
        check(e["records"] == sflow.sent_records,
              f"sflow records {e['records']} != {sflow.sent_records}")
        check(e["datagrams_lost"] == 1 and e["records_lost"] is None, "sflow lost")
        check(e["datagrams_late"] == 0 and e["sequence_resets"] == 0, "sflow late/resets")
        check(e["sampling"] == 50 and e["sampling_default"] is False, "sflow sampling")
        check(e["templates"] is None, "sflow has no templates")
        check(e["long_active_timeout"] is False, "sflow samples are instants")

        for e in ans["exporters"]:
            ts = calendar.timegm(time.strptime(e["last_seen"][:19], "%Y-%m-%dT%H:%M:%S"))
            check(t0 - 2 <= ts <= t1 + 2, f"last_seen {e['last_seen']} outside the run")
        seen = [e["last_seen"] for e in ans["exporters"]]
        check(seen == sorted(seen, reverse=True), f"not most recent first: {seen}")

        # Paging, the address filter, refusals.
        page = exporters(m, limit=1, offset=1)
        check(page["total"] == 3 and len(page["exporters"]) == 1 and
              page["exporters"][0] == ans["exporters"][1], f"page {page}")
        only = exporters(m, exporter="127.0.0.3")
        check(only["total"] == 1 and only["exporters"][0]["protocol"] == "netflow9", f"filter {only}")
        for q in ("limit=0", "exporter=nope", "target=203.0.113.1"):
            st, body = m.get("/api/v1/ddos/exporters?" + q)
            check(st == 400, f"{q}: {st} {body[:200]!r}")
        st, body = m.get("/metrics")
        check(st == 200, "metrics")
        check(re.search(rb'mamori_api_requests_total\{route="/api/v1/ddos/exporters",code="200"\} [1-9]',
                        body), "the route has its own request metric")
        check(m.stop() == 0, "serve exits 0 on SIGTERM")
    finally:
        m.cleanup()


if __name__ == "__main__":
    run([test_exporters])
