#!/usr/bin/env python3
"""DDoS mitigation end to end: `mamori ddos mitigate|withdraw|reconcile`
drive GoBGP (gobgpd through the gobgp CLI), ExaBGP (its command pipe) and
BIRD (an include file and `birdc configure`), each peering on loopback with
a BIRD 2 "router"; the blackhole (with its community and next hop) and the
FlowSpec rules must arrive at the router and leave it when withdrawn. Also:
dry runs announce nothing, the allow list and the blackhole cap refuse,
reconciliation withdraws a stray route and re-announces a lost one after a
speaker restart, and the nftables back-end in a private network namespace.

Every daemon runs on 127.0.0.1 on free ports with a private directory and
is stopped by its own process id (or process group) in every case.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import BIN, TestFailure, check, run  # noqa: E402
from peers import BgpLab as Lab, need, wait_for  # noqa: E402

COMM = "(65535,666)"
# bird, birdc, exabgp and nft live in sbin, which CI's PATH may lack.
os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"


def ddos(*args, expect=0):
    r = subprocess.run([BIN, "ddos"] + list(args), capture_output=True, text=True, timeout=120)
    if expect is not None and r.returncode != expect:
        raise TestFailure(f"mamori ddos {' '.join(args)}: exit {r.returncode}, expected {expect}\n"
                          f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def mitigate_all(cfg, host4, host6):
    """A blackhole of host4 and host6, a FlowSpec discard of memcached and a
    rate limit of DNS towards host4, and a discard of NTP towards host6."""
    ddos("mitigate", "-c", cfg, "--target", f"{host4}/32", "--action", "blackhole",
         "--reason", "memcached amplification")
    ddos("mitigate", "-c", cfg, "--target", f"{host6}/128", "--action", "blackhole")
    ddos("mitigate", "-c", cfg, "--target", f"{host4}/32", "--action", "flowspec-discard",
         "--protocol", "udp", "--source-port", "11211")
    ddos("mitigate", "-c", cfg, "--target", f"{host4}/32", "--action", "flowspec-ratelimit",
         "--protocol", "udp", "--source-port", "53", "--length", "512-1500", "--rate", "125000")
    ddos("mitigate", "-c", cfg, "--target", f"{host6}/128", "--action", "flowspec-discard",
         "--protocol", "udp", "--source-port", "123")


def expect_all(lab, proto, host4, host6):
    """Waits until the router holds every route of mitigate_all()."""
    def arrived():
        r4 = lab.routes(proto, "master4")
        r6 = lab.routes(proto, "master6")
        f4 = lab.routes(proto, "flowtab4")
        f6 = lab.routes(proto, "flowtab6")
        return (f"{host4}/32" in r4 and "BGP.next_hop: 192.0.2.1" in r4 and COMM in r4 and
                "(65001,666)" in r4 and
                f"{host6}/128" in r6 and "BGP.next_hop: 100::1" in r6 and COMM in r6 and
                f"flow4 {{ dst {host4}/32; proto 17; sport 11211; }}" in f4 and
                "(generic, 0x80060000, 0x0)" in f4 and
                f"flow4 {{ dst {host4}/32; proto 17; sport 53; length 512..1500; }}" in f4 and
                "(generic, 0x80060000, 0x47f42400)" in f4 and
                f"flow6 {{ dst {host6}/128; next header 17; sport 123; }}" in f6)
    wait_for(f"every mitigation at the router from {proto}", arrived)


def withdraw_all(cfg, host4, host6):
    r = ddos("withdraw", "-c", cfg, "--target", f"{host4}/32")
    check("withdrawn: 3" in r.stdout, f"withdraw {host4}: {r.stdout}")
    r = ddos("withdraw", "-c", cfg, "--target", f"{host6}/128")
    check("withdrawn: 2" in r.stdout, f"withdraw {host6}: {r.stdout}")
    r = ddos("mitigations", "-c", cfg)
    check("0 mitigation(s)" in r.stdout, f"state after withdraw: {r.stdout}")


def expect_none(lab, proto, host4, host6):
    def gone():
        text = lab.all_routes(proto)
        return host4 not in text and host6 not in text
    wait_for(f"every mitigation gone from the router ({proto})", gone)


LAB = None


def lab():
    global LAB
    if LAB is None:
        need("bird", "birdc", "gobgpd", "gobgp", "exabgp")
        LAB = Lab()
        LAB.start_router()
    return LAB


def test_gobgp_announce_withdraw():
    lb = lab()
    lb.start_gobgp()
    cfg = lb.config("gobgp", "gobgp")
    mitigate_all(cfg, "10.1.9.9", "2001:db8::9")
    expect_all(lb, "gobgp", "10.1.9.9", "2001:db8::9")
    r = ddos("mitigations", "-c", cfg)
    check("5 mitigation(s)" in r.stdout and "announced" in r.stdout, r.stdout)
    withdraw_all(cfg, "10.1.9.9", "2001:db8::9")
    expect_none(lb, "gobgp", "10.1.9.9", "2001:db8::9")


def test_exabgp_announce_withdraw():
    lb = lab()
    lb.start_exabgp()
    cfg = lb.config("exabgp", "exabgp")
    mitigate_all(cfg, "10.1.99.9", "2001:db8::99")
    expect_all(lb, "exa", "10.1.99.9", "2001:db8::99")
    withdraw_all(cfg, "10.1.99.9", "2001:db8::99")
    expect_none(lb, "exa", "10.1.99.9", "2001:db8::99")


def test_bird_include_announce_withdraw():
    lb = lab()
    lb.start_speaker()
    cfg = lb.config("bird", "bird")
    mitigate_all(cfg, "10.1.199.9", "2001:db8::199")
    expect_all(lb, "spk", "10.1.199.9", "2001:db8::199")
    with open(lb.include) as f:
        text = f.read()
    check("route 10.1.199.9/32 blackhole" in text, text)
    withdraw_all(cfg, "10.1.199.9", "2001:db8::199")
    expect_none(lb, "spk", "10.1.199.9", "2001:db8::199")


def test_dry_run_announces_nothing():
    lb = lab()
    # The configuration's dry_run, then a request's --dry-run on a live one.
    dry = lb.config("dry", "gobgp", "  dry_run: true")
    r = ddos("mitigate", "-c", dry, "--target", "10.1.50.1", "--action", "blackhole")
    check("announced: blackhole 10.1.50.1/32" in r.stdout and "nothing sent" in r.stdout, r.stdout)
    r = ddos("mitigations", "-c", dry)
    check("dry-run" in r.stdout, r.stdout)
    live = lb.config("live", "gobgp")
    r = ddos("mitigate", "-c", live, "--target", "10.1.50.2", "--action", "flowspec-discard",
             "--protocol", "udp", "--source-port", "1900", "--dry-run")
    check("dry-run: filter 10.1.50.2/32 proto 17 sport 1900" in r.stdout and
          "global rib -a ipv4-flowspec add match destination 10.1.50.2/32" in r.stdout, r.stdout)
    r = ddos("mitigations", "-c", live)
    check("0 mitigation(s)" in r.stdout, f"a request's dry run was recorded: {r.stdout}")
    # A marker announced after them: once it is at the router, anything
    # sent before it would be there too.
    ddos("mitigate", "-c", live, "--target", "10.1.50.3", "--action", "blackhole")
    wait_for("the marker route", lambda: "10.1.50.3/32" in lb.routes("gobgp", "master4"))
    check("10.1.50.1" not in lb.gobgp("global", "rib", "-a", "ipv4"), "dry run reached GoBGP")
    text = lb.all_routes("gobgp")
    check("10.1.50.1" not in text and "10.1.50.2" not in text, f"dry run reached the router:\n{text}")
    ddos("withdraw", "-c", live, "--target", "10.1.50.3")
    ddos("withdraw", "-c", dry, "--target", "10.1.50.1")


def test_allow_list_and_cap_refuse():
    lb = lab()
    cfg = lb.config("safety", "gobgp", "  max_blackholes: 2")
    for target in ("198.51.100.7", "198.51.0.0/16"):
        r = ddos("mitigate", "-c", cfg, "--target", target, "--action", "blackhole", expect=1)
        check("refused" in r.stdout and "allow-listed 198.51.100.0/24" in r.stdout, r.stdout)
    r = ddos("mitigate", "-c", cfg, "--target", "198.51.100.7", "--action", "flowspec-discard",
             "--protocol", "udp", "--source-port", "11211", expect=1)
    check("refused" in r.stdout and "is within" in r.stdout, r.stdout)
    r = ddos("mitigate", "-c", cfg, "--target", "10.0.0.0/8", "--action", "blackhole", expect=1)
    check("wider than" in r.stdout, r.stdout)
    ddos("mitigate", "-c", cfg, "--target", "10.1.60.1", "--action", "blackhole")
    ddos("mitigate", "-c", cfg, "--target", "10.1.60.2", "--action", "blackhole")
    r = ddos("mitigate", "-c", cfg, "--target", "10.1.60.3", "--action", "blackhole", expect=1)
    check("refused" in r.stdout and "max_blackholes" in r.stdout, r.stdout)
    check("max_blackholes" in r.stderr, f"the refusal was not logged: {r.stderr}")
    # FlowSpec is not capped by max_blackholes.
    ddos("mitigate", "-c", cfg, "--target", "10.1.60.3", "--action", "flowspec-discard",
         "--protocol", "udp", "--source-port", "11211")
    rib = lb.gobgp("global", "rib", "-a", "ipv4")
    check("10.1.60.1/32" in rib and "10.1.60.2/32" in rib and "10.1.60.3" not in rib and
          "198.51" not in rib, rib)
    ddos("withdraw", "-c", cfg, "--target", "10.1.60.1")
    ddos("withdraw", "-c", cfg, "--target", "10.1.60.2")
    ddos("withdraw", "-c", cfg, "--target", "10.1.60.3")


def test_gobgp_reconcile():
    lb = lab()
    cfg = lb.config("recon", "gobgp")
    ddos("mitigate", "-c", cfg, "--target", "10.1.70.1", "--action", "blackhole")
    ddos("mitigate", "-c", cfg, "--target", "10.1.70.1", "--action", "flowspec-discard",
         "--protocol", "udp", "--source-port", "11211")
    # A stray blackhole (mamori's community, not in its state) and a lost
    # route (removed behind mamori's back).
    lb.gobgp("global", "rib", "add", "-a", "ipv4", "10.1.70.66/32", "nexthop", "192.0.2.1",
             "community", "65535:666")
    lb.gobgp("global", "rib", "del", "-a", "ipv4", "10.1.70.1/32")
    wait_for("the stray route at the router", lambda: "10.1.70.66/32" in lb.routes("gobgp", "master4"))
    r = ddos("reconcile", "-c", cfg, "--dry-run")
    check("would withdraw blackhole 10.1.70.66/32" in r.stdout and
          "would announce blackhole 10.1.70.1/32" in r.stdout, r.stdout)
    check("10.1.70.66/32" in lb.gobgp("global", "rib", "-a", "ipv4"), "reconcile --dry-run acted")
    r = ddos("reconcile", "-c", cfg)
    check("1 to announce, 1 to withdraw, 1 unchanged" in r.stdout, r.stdout)
    wait_for("the stray withdrawn and the lost route back", lambda: (
        "10.1.70.66" not in lb.routes("gobgp", "master4") and
        "10.1.70.1/32" in lb.routes("gobgp", "master4")))
    # gobgpd restarts empty: reconcile puts everything back.
    lb.gobgpd.stop()
    lb.procs.remove(lb.gobgpd)
    wait_for("the session down", lambda: not lb.established("gobgp"))
    lb.start_gobgp()
    check("10.1.70.1" not in lb.gobgp("global", "rib", "-a", "ipv4"), "gobgpd kept its state")
    t0 = time.time()
    r = ddos("reconcile", "-c", cfg)
    check("2 to announce, 0 to withdraw" in r.stdout, r.stdout)
    wait_for("the routes back after the restart", lambda: (
        "10.1.70.1/32" in lb.routes("gobgp", "master4") and
        "dst 10.1.70.1/32" in lb.routes("gobgp", "flowtab4")))
    check(time.time() - t0 < 10, "reconciliation took more than 10 s")
    r = ddos("reconcile", "-c", cfg)
    check("0 to announce, 0 to withdraw, 2 unchanged" in r.stdout, r.stdout)
    ddos("withdraw", "-c", cfg, "--target", "10.1.70.1")
    expect_none(lb, "gobgp", "10.1.70.1/", "10.1.70.66")


def test_exabgp_reconcile():
    lb = lab()
    if not lb.exabgp:
        lb.start_exabgp()
    cfg = lb.config("exarecon", "exabgp")
    ddos("mitigate", "-c", cfg, "--target", "10.1.80.1", "--action", "blackhole")
    ddos("mitigate", "-c", cfg, "--target", "10.1.80.2", "--action", "blackhole")
    wait_for("both routes", lambda: "10.1.80.1/32" in lb.routes("exa", "master4") and
             "10.1.80.2/32" in lb.routes("exa", "master4"))
    # ExaBGP restarts and forgets everything; meanwhile 10.1.80.2 stopped
    # being due (dropped from the desired state behind the pipe's back).
    lb.stop_exabgp()
    wait_for("the session down", lambda: not lb.established("exa"))
    db = sqlite3.connect(os.path.join(lb.dir, "exarecon-var", "mitigation.db"))
    db.execute("DELETE FROM mitigation WHERE key = 'blackhole 10.1.80.2/32'")
    db.commit()
    db.close()
    lb.start_exabgp()
    r = ddos("reconcile", "-c", cfg)
    check("1 to withdraw" in r.stdout and "withdraw blackhole 10.1.80.2/32" in r.stdout, r.stdout)
    wait_for("10.1.80.1 re-announced", lambda: "10.1.80.1/32" in lb.routes("exa", "master4"))
    check("10.1.80.2" not in lb.routes("exa", "master4"), "10.1.80.2 came back")
    ddos("withdraw", "-c", cfg, "--target", "10.1.80.1")
    expect_none(lb, "exa", "10.1.80.1/", "10.1.80.2/")


def test_bird_reconcile():
    lb = lab()
    cfg = lb.config("birdrecon", "bird")
    ddos("mitigate", "-c", cfg, "--target", "10.1.90.1", "--action", "blackhole")
    wait_for("the route", lambda: "10.1.90.1/32" in lb.routes("spk", "master4"))
    # Someone empties the include file and reloads BIRD.
    open(lb.include, "w").close()
    check("Reconfigur" in lb.birdc("configure", ctl=lb.spk_ctl), "birdc configure")
    wait_for("the route gone", lambda: "10.1.90.1" not in lb.routes("spk", "master4"))
    ddos("reconcile", "-c", cfg)
    wait_for("the route back", lambda: "10.1.90.1/32" in lb.routes("spk", "master4"))
    ddos("withdraw", "-c", cfg, "--target", "10.1.90.1")
    expect_none(lb, "spk", "10.1.90.1/", "10.1.90.1/")


def test_nftables_in_namespace():
    need("nft", "unshare")
    d = tempfile.mkdtemp(prefix="mamori-nft-")
    try:
        cfg = os.path.join(d, "m.yaml")
        with open(cfg, "w") as f:
            f.write(f"data_dir: {d}/var\nmitigation:\n  backend: nftables\n  nft_table: mamori_test\n")
        script = f"""set -e
M={BIN}
$M ddos mitigate -c {cfg} --target 10.1.9.9 --action blackhole
$M ddos mitigate -c {cfg} --target 10.1.9.8 --action flowspec-ratelimit --protocol udp --source-port 11211,53 --rate 125000
$M ddos mitigate -c {cfg} --target 2001:db8::9 --action flowspec-discard --protocol udp --source-port 123 --length 400-1500
echo ==== after mitigate
nft list table inet mamori_test
$M ddos withdraw -c {cfg} --target 10.1.9.9
$M ddos withdraw -c {cfg} --target 10.1.9.8
$M ddos withdraw -c {cfg} --target 2001:db8::9/128
echo ==== after withdraw
nft list table inet mamori_test
"""
        r = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, f"nft script: {r.returncode}\n{r.stdout}\n{r.stderr}")
        before, after = r.stdout.split("==== after withdraw")
        for want in ("ip daddr 10.1.9.9 drop", "ip daddr 10.1.9.8 udp sport { 53, 11211 }",
                     "limit rate over", "ip6 daddr 2001:db8::9 udp sport 123 meta length 400-1500 drop",
                     "hook prerouting priority raw"):
            check(want in before, f"{want!r} missing:\n{before}")
        check("daddr" not in after and "chain mitigate" in after, after)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    tests = [test_gobgp_announce_withdraw, test_exabgp_announce_withdraw,
             test_bird_include_announce_withdraw, test_dry_run_announces_nothing,
             test_allow_list_and_cap_refuse, test_gobgp_reconcile, test_exabgp_reconcile,
             test_bird_reconcile, test_nftables_in_namespace]
    try:
        run(tests)
    finally:
        if LAB:
            if os.environ.get("MAMORI_TEST_VERBOSE"):
                print(LAB.logs())
            LAB.cleanup()


if __name__ == "__main__":
    main()
