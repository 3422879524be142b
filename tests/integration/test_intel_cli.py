#!/usr/bin/env python3
"""`mamori intel check|lookup`: feeds from a configuration (a plain list and
a CSV file the test writes, the public STIX bundles and MISP feed of the
conformance data) and feeds given on the command line; exact counts per
feed, reasons for rejections, longest-prefix and parent-domain answers,
exit statuses, and a bad configuration named with file:line:col.

Needs MAMORI_CONFORMANCE_DIR (default ../shared beside the repository);
fails loudly when it is absent.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, SRC, TestFailure, check, run  # noqa: E402

CONF = os.environ.get("MAMORI_CONFORMANCE_DIR", os.path.join(os.path.dirname(SRC), "shared"))
APT1 = os.path.join(CONF, "intel", "stix2", "examples", "threat-reports", "apt1.json")
MISP = os.path.join(CONF, "intel", "misp-feed")


def mamori(*args):
    return subprocess.run([BIN, "intel"] + list(args), capture_output=True, text=True, timeout=120)


def need_conformance():
    if not os.path.isfile(APT1) or not os.path.isdir(MISP):
        raise TestFailure(f"conformance data missing under {CONF} (set MAMORI_CONFORMANCE_DIR)")


def write_config(d):
    plain = os.path.join(d, "drop.txt")
    with open(plain, "w") as f:
        f.write("# a DROP-style list\n192.0.2.0/24 ; SBL1\n198.51.100.7\nnot_a_value\n\n")
    csv = os.path.join(d, "urls.csv")
    with open(csv, "w") as f:
        f.write("id,first_seen,url\n1,2026-01-02T03:04:05Z,http://bad.example/payload.exe\n"
                "2,2026-01-02,\"http://Evil.Example:80/a/../b\"\n3,yesterday,http://x.example/\n")
    cfg = os.path.join(d, "mamori.yaml")
    with open(cfg, "w") as f:
        f.write(f"""intel:
  feeds:
    - name: drop
      kind: plain
      url: {plain}
      type: auto
    - name: urls
      kind: csv
      url: {csv}
      header: true
      value_column: 3
      first_seen_column: 2
    - name: apt1
      kind: stix
      url: {APT1}
    - name: circl
      kind: misp
      url: {MISP}
""")
    return cfg


def test_check_config():
    need_conformance()
    with tempfile.TemporaryDirectory() as d:
        cfg = write_config(d)
        r = mamori("check", "-c", cfg)
        check(r.returncode == 0, f"check: {r.returncode} {r.stdout} {r.stderr}")
        out = r.stdout
        check("drop: ok loaded=2 rejected=1 " in out and "rejected no_type: 1" in out, out)
        # The bad first_seen cell rejects the third row.
        check("urls: ok loaded=2 rejected=1 " in out and "rejected bad_field: 1" in out, out)
        check("apt1: ok loaded=10 rejected=2 " in out and "rejected pattern_path: 2" in out, out)
        check("circl: ok " in out, out)
        check("failed" in out.splitlines()[-1] and out.splitlines()[-1].endswith(", 0 failed"), out)

        r = mamori("check", "-c", cfg, "--feed", "apt1")
        check(r.returncode == 0 and "drop:" not in r.stdout and
              r.stdout.splitlines()[-1] == "10 distinct indicators from 1 feed(s), 0 failed", r.stdout)
        r = mamori("check", "-c", cfg, "--feed", "nope")
        check(r.returncode == 2 and "no feed by that name" in r.stderr, f"{r.returncode} {r.stderr}")


def test_lookup():
    need_conformance()
    with tempfile.TemporaryDirectory() as d:
        cfg = write_config(d)
        r = mamori("lookup", "-c", cfg, "192.0.2.99", "http://evil.example/b", "223.167.1.1",
                   "www.hugesoft.org")
        check(r.returncode == 0, f"lookup: {r.returncode} {r.stdout} {r.stderr}")
        lines = r.stdout.splitlines()
        check(lines[0].startswith("192.0.2.99: listed as ip 192.0.2.0/24 by drop"), lines[0])
        check(lines[1].startswith("http://evil.example/b: listed as url http://evil.example/b by urls"),
              lines[1])
        check(lines[2].startswith("223.167.1.1: listed as ip 223.166.0.0/15 by apt1"), lines[2])
        check(lines[3].startswith("www.hugesoft.org: listed as domain hugesoft.org by apt1"), lines[3])
        r = mamori("lookup", "-c", cfg, "192.0.3.1", "192.0.2.1")
        check(r.returncode == 1 and r.stdout.startswith("192.0.3.1: not listed (ip)") and
              "192.0.2.1: listed" in r.stdout, f"{r.returncode} {r.stdout}")
        r = mamori("lookup", "-c", cfg, "just-a-word")
        check(r.returncode == 1 and "not an address, domain" in r.stdout, r.stdout)


def test_adhoc_and_errors():
    need_conformance()
    r = mamori("lookup", "--kind", "misp", "--url", MISP, "50.6.80.163")
    check(r.returncode == 0 and "listed as ip 50.6.80.163 by cli" in r.stdout, f"{r.returncode} {r.stdout} {r.stderr}")
    r = mamori("check", "--kind", "stix", "--url", "/nonexistent/bundle.json")
    check(r.returncode == 1 and "cli: error:" in r.stdout and "/nonexistent/bundle.json" in r.stdout,
          f"{r.returncode} {r.stdout}")
    r = mamori("check", "--kind", "bogus", "--url", APT1)
    check(r.returncode == 2 and "bogus" in r.stderr, f"{r.returncode} {r.stderr}")
    r = mamori("check")
    check(r.returncode == 2 and "no feeds" in r.stderr, r.stderr)
    r = mamori("lookup", "-c", "/dev/null")
    check(r.returncode == 2 and "VALUE" in r.stderr, r.stderr)
    with tempfile.TemporaryDirectory() as d:
        bad = os.path.join(d, "bad.yaml")
        with open(bad, "w") as f:
            f.write("intel:\n  feeds:\n    - name: x\n      kind: plain\n      refresh: soon\n      url: /x\n")
        r = mamori("check", "-c", bad)
        check(r.returncode == 2 and r.stderr.startswith(bad + ":5:") and "refresh" in r.stderr, r.stderr)
    r = mamori("--help")
    check(r.returncode == 0 and "intel lookup" in r.stdout, r.stdout)


if __name__ == "__main__":
    run([test_check_config, test_lookup, test_adhoc_and_errors])
