#!/usr/bin/env python3
"""The network-side SigmaHQ rules (proxy, webserver, dns, firewall, zeek,
fortigate, ...) against our own positive and negative events.

Why: the public regression data covers Windows only. The events in
tests/data/sigma-network/ (written by tools/sigma_events.py and checked in)
name, in cases.json, the rule each one is for and whether it must match.
One `mamori rules test` run over the whole corpus and all event files
checks that every positive triggers its rule and no negative does, and
that every network-side rule of the corpus has cases or is listed, with a
reason, in skipped.txt. Rules in known_failures.txt are engine or mapping
bugs already reported: they are shown, and the test fails when one starts
passing so the list is kept honest.

The corpus comes from $MAMORI_CONFORMANCE_DIR (default
$MAMORI_SOURCE_DIR/../shared); the test fails when it is absent.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, SRC, TestFailure, check, run  # noqa: E402

sys.path.insert(0, os.path.join(SRC, "tools"))
import sigma_events  # noqa: E402

DATA = os.path.join(SRC, "tests", "data", "sigma-network")
CORPUS = os.environ.get("MAMORI_CONFORMANCE_DIR", os.path.join(SRC, "..", "shared"))


def read_list(name):
    """{rule id: reason} from a `RULE-ID reason` file."""
    out = {}
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        return out
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            rid, _, why = line.partition(" ")
            check(why.strip(), f"{name}: {rid} has no reason")
            out[rid] = why.strip()
    return out


def read_known():
    """{(rule id, case note): reason} from known_failures.txt."""
    out = {}
    path = os.path.join(DATA, "known_failures.txt")
    if not os.path.exists(path):
        return out
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            parts = [x.strip() for x in line.split("|")]
            check(len(parts) == 3 and all(parts), f"known_failures.txt: bad line {line!r}")
            out[(parts[0], parts[1])] = parts[2]
    return out


def test_sigma_network_rules():
    sigma = os.path.join(CORPUS, "sigma")
    dirs = [os.path.join(sigma, d) for d in sigma_events.CORPUS_DIRS]
    if not all(os.path.isdir(d) for d in dirs):
        raise TestFailure(f"Sigma corpus not found under {sigma} "
                          "(set MAMORI_CONFORMANCE_DIR to the directory holding sigma/)")
    cases = json.load(open(os.path.join(DATA, "cases.json"), encoding="utf-8"))
    skipped = read_list("skipped.txt")
    known = read_known()

    rules = {doc["id"]: (path, doc) for path, doc, _ in sigma_events.network_rules(sigma)}
    with_pos = {c["rule"] for c in cases if c["match"]}
    with_neg = {c["rule"] for c in cases if not c["match"]}
    missing = sorted(r for r in rules if r not in skipped and not (r in with_pos and r in with_neg))
    stale = sorted(r for r in set(with_pos) | set(skipped) if r not in rules)

    files = sorted({c["file"] for c in cases})
    argv = [BIN, "rules", "test"]
    for d in dirs:
        argv += ["--rules", d]
    argv += [os.path.join(DATA, f) for f in files]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    took = time.monotonic() - t0
    check(p.returncode == 0, f"mamori rules test exited {p.returncode}: {p.stderr[-2000:]}")

    hits = set()  # (file, n, rule id)
    for line in p.stdout.splitlines():
        loc, _, rest = line.partition(": ")
        path, _, n = loc.rpartition(":")
        if not rest or not n.isdigit():
            continue
        hits.add((os.path.basename(path), int(n), rest.split(" ", 1)[0]))

    pos_ok = neg_ok = 0
    failed, xfail = [], []
    seen_known, failing_known = set(), set()
    for c in cases:
        got = (c["file"], c["n"], c["rule"]) in hits
        key = (c["rule"], c["note"])
        if key in known:
            seen_known.add(key)
        if got == c["match"]:
            if c["match"]:
                pos_ok += 1
            else:
                neg_ok += 1
            continue
        what = (f"{c['file']}:{c['n']}: {c['rule']} ({c['title']}) "
                f"{'positive did not match' if c['match'] else 'negative matched'} [{c['note']}]")
        if key in known:
            xfail.append(f"{what} -- {known[key]}")
            failing_known.add(key)
        else:
            failed.append(what)
    # A known failure that passes now, or whose case is gone, is stale.
    fixed = sorted(k for k in known if k not in seen_known or k not in failing_known)

    for w in xfail:
        print(f"known failure: {w}")
    for rid in sorted(skipped):
        print(f"skipped: {rid} {skipped[rid]}")
    for w in failed:
        print(f"FAILED: {w}")
    for rid in missing:
        print(f"no cases: {rid} {os.path.relpath(rules[rid][0], sigma)}")
    for rid in stale:
        print(f"not a network rule of the corpus: {rid}")
    for rid, note in fixed:
        print(f"known_failures.txt is stale, remove: {rid} | {note}")
    n_rules = len({c["rule"] for c in cases})
    print(f"network rules: {n_rules} with cases, {pos_ok} positives ok, {neg_ok} negatives ok, "
          f"{len(failed)} failed ({len(xfail)} known, {len(skipped)} rules skipped, "
          f"{len(rules)} in corpus; rules test took {took:.1f}s)")
    check(not failed, f"{len(failed)} cases failed")
    check(not missing, f"{len(missing)} network rules have no positive and negative case")
    check(not stale, f"{len(stale)} listed rules are not in the corpus")
    check(not fixed, f"{len(fixed)} known failures now pass or are gone")


if __name__ == "__main__":
    run([test_sigma_network_rules])
