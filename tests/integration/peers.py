"""Real peers that integration tests start privately on loopback: a
Postfix instance with its own config_directory, queue and mail spool
delivering to mailbox files, HTTP servers recording webhook POSTs, and a
BGP lab (a BIRD 2 "router" with passive sessions for GoBGP, ExaBGP and a
BIRD speaker fed by mamori's include file). Standard library only (plus
the postfix, openssl, bird, gobgpd and exabgp binaries).
"""
import email
import email.policy
import http.server
import mailbox
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from mamori_test import TestFailure, free_port


class Postfix:
    """A private Postfix instance on 127.0.0.1:port, stopped by stop()."""

    def __init__(self, root):
        self.root = root
        self.conf = os.path.join(root, "conf")
        self.queue = os.path.join(root, "queue")
        self.data = os.path.join(root, "data")
        self.mail = os.path.join(root, "mail")
        self.log = os.path.join(root, "maillog")
        self.port = free_port()
        self.cert = os.path.join(root, "cert.pem")
        self.key = os.path.join(root, "key.pem")
        self.started = False
        for d in (self.conf, self.queue, self.data, self.mail):
            os.makedirs(d)

    def sh(self, *args, timeout=60):
        r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise TestFailure(f"{' '.join(args)}: {r.returncode} {r.stdout} {r.stderr}\n{self.read_log()}")
        return r

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self, milter_port=None, reinject=False, extra=""):
        """milter_port: pass every message through a milter on that port
        (unanswered milter = tempfail). reinject: a second smtpd on
        self.reinject_port without milters, where released mail comes back."""
        self.sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", self.cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1")
        os.chmod(self.key, 0o600)
        shutil.copy("/etc/postfix/master.cf", os.path.join(self.conf, "master.cf"))
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
myhostname = mx.test.local
mydestination = test.local, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = {self.queue}
data_directory = {self.data}
mail_spool_directory = {self.mail}
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
maillog_file = {self.log}
maillog_file_prefixes = /tmp, /var, {self.root}
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
""")
            if milter_port:
                f.write(f"smtpd_milters = inet:127.0.0.1:{milter_port}\n"
                        "milter_default_action = tempfail\n"
                        "milter_protocol = 6\n"
                        "milter_command_timeout = 60s\n"
                        "milter_content_timeout = 60s\n")
            f.write(extra)
        # The smtp listener on our port, and no chroot anywhere: the
        # chroot would be our queue directory, which has no /etc in it.
        self.sh("postconf", "-c", self.conf, "-M#", "smtp/inet")
        self.sh("postconf", "-c", self.conf, "-M",
                f"{self.port}/inet = {self.port} inet n - n - - smtpd")
        if reinject:
            self.reinject_port = free_port()
            self.sh("postconf", "-c", self.conf, "-M",
                    f"{self.reinject_port}/inet = {self.reinject_port} inet n - n - - smtpd"
                    " -o smtpd_milters= -o receive_override_options=no_milters")
        self.sh("postconf", "-c", self.conf, "-F", "*/*/chroot = n")
        self.sh("chown", "postfix", self.data)
        self.sh("postfix", "-c", self.conf, "set-permissions")
        self.sh("postfix", "-c", self.conf, "check")
        r = subprocess.run(["postfix", "-c", self.conf, "start"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise TestFailure(f"postfix start: {r.returncode} {r.stdout} {r.stderr}\n{self.read_log()}")
        self.started = True
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(200).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.2)
        raise TestFailure("postfix did not answer on its port\n" + self.read_log())

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if not self.started:
            return
        pid = self.master_pid()
        r = subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True, text=True, timeout=60)
        self.started = False
        deadline = time.time() + 15
        while pid and time.time() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.2)
        if pid:
            # stop did not finish: end this instance's master by its pid.
            try:
                os.kill(pid, 9)
            except OSError:
                pass
            raise TestFailure(f"postfix stop did not complete: {r.stdout} {r.stderr}")

    def wait_messages(self, user, count, timeout=60):
        """Messages in the mailbox file of user once it holds count."""
        path = os.path.join(self.mail, user)
        deadline = time.time() + timeout
        msgs = []
        while time.time() < deadline:
            if os.path.exists(path):
                box = mailbox.mbox(path, create=False)
                msgs = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]
                box.close()
                if len(msgs) >= count:
                    return msgs
            time.sleep(0.2)
        raise TestFailure(f"{len(msgs)} message(s) in {path} after {timeout}s, expected {count}\n"
                          + self.read_log())


class Hooks:
    """HTTP servers on 127.0.0.1 recording JSON POSTs; fail=True answers 500."""

    def __init__(self, fail=False):
        rec = self.received = []
        fail_all = fail

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                rec.append((self.path, dict(self.headers), body))
                self.send_response(500 if fail_all else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- the BGP lab (shared by test_ddos_bgp.py and test_ddos_serve.py) ----

DEADLINE = 60


def need(*progs):
    for p in progs:
        if not shutil.which(p):
            raise TestFailure(f"{p} is not installed (scripts/deps.sh installs it)")


def wait_for(what, fn, timeout=DEADLINE, interval=0.1):
    """Polls fn until it returns a true value; fails after timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TestFailure(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Proc:
    """A child process in its own process group, stopped by that group."""

    def __init__(self, argv, log, env=None):
        self.log = open(log, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        else:
            # The leader is gone; children (ExaBGP's `cat` loop) may remain.
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
        self.log.close()


def kill_by_path(path):
    """Kills processes whose command line names path, or that hold it open
    (a file in this test's private directory): ExaBGP starts its API process
    in a session of its own, so its `cat` of the FIFO outlives a stop of
    ExaBGP's group."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        holds = False
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                        holds = True
                        break
                except OSError:
                    pass
        except OSError:
            pass
        if path.encode() in cmd or holds:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


class BgpLab:
    """A BIRD router with one passive BGP session per speaker, and the
    speakers: gobgpd, ExaBGP and a second BIRD fed by mamori's include file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mamori-ddos-")
        self.procs = []
        self.rport = {k: free_port() for k in ("gobgp", "exa", "spk")}
        self.ctl = os.path.join(self.dir, "router.ctl")
        self.api = free_port()
        self.gport = free_port()
        self.eport = free_port()
        self.sport = free_port()
        self.fifo = os.path.join(self.dir, "exabgp.cmd")
        self.spk_ctl = os.path.join(self.dir, "speaker.ctl")
        self.include = os.path.join(self.dir, "mamori-routes.conf")
        self.gobgpd = self.exabgp = None

    # ---- the router ----
    def start_router(self):
        # One session per speaker, told apart by the speaker's port (BIRD
        # keeps one protocol per neighbor address and port).
        sessions = ""
        for name, asn, nport in (("gobgp", 65001, self.gport), ("exa", 65003, self.eport),
                                 ("spk", 65004, self.sport)):
            sessions += f"""
protocol bgp {name} {{
  local 127.0.0.1 port {self.rport[name]} as 65002;
  neighbor 127.0.0.1 port {nport} as {asn};
  passive on; strict bind on; multihop;
  ipv4 {{ import all; export none; gateway recursive; igp table master4; }};
  ipv6 {{ import all; export none; gateway recursive; igp table master6; }};
  flow4 {{ table flowtab4; import all; export none; }};
  flow6 {{ table flowtab6; import all; export none; }};
}}
"""
        conf = os.path.join(self.dir, "router.conf")
        with open(conf, "w") as f:
            f.write(f"""router id 10.255.0.2;
log "{self.dir}/router.log" all;
protocol device {{}}
flow4 table flowtab4;
flow6 table flowtab6;
protocol static rtbh_nh4 {{ ipv4; route 192.0.2.0/24 blackhole; }}
protocol static rtbh_nh6 {{ ipv6; route 100::/64 blackhole; }}
{sessions}""")
        self.procs.append(Proc(["bird", "-f", "-c", conf, "-s", self.ctl], os.path.join(self.dir, "router.out")))
        wait_for("the router's control socket", lambda: os.path.exists(self.ctl))

    def birdc(self, *args, ctl=None):
        r = subprocess.run(["birdc", "-s", ctl or self.ctl] + list(args), capture_output=True,
                           text=True, timeout=30)
        return r.stdout

    def established(self, proto):
        return "Established" in self.birdc("show", "protocols", proto)

    def routes(self, proto, table=None):
        args = ["show", "route"] + (["table", table] if table else []) + ["all", "protocol", proto]
        return self.birdc(*args)

    def all_routes(self, proto):
        return "".join(self.routes(proto, t) for t in ("master4", "master6", "flowtab4", "flowtab6"))

    # ---- GoBGP ----
    def start_gobgp(self):
        conf = os.path.join(self.dir, "gobgpd.toml")
        with open(conf, "w") as f:
            f.write(f"""[global.config]
  as = 65001
  router-id = "10.255.0.1"
  port = {self.gport}
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65002
  [neighbors.transport.config]
    remote-port = {self.rport["gobgp"]}
    local-address = "127.0.0.1"
""" + "".join(f"""  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{fam}"
""" for fam in ("ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec")))
        self.gobgpd = Proc(["gobgpd", "-f", conf, "--api-hosts", f"127.0.0.1:{self.api}", "-p"],
                           os.path.join(self.dir, "gobgpd.log"))
        self.procs.append(self.gobgpd)
        wait_for("the GoBGP session", lambda: self.established("gobgp"))

    def gobgp(self, *args):
        r = subprocess.run(["gobgp", "-u", "127.0.0.1", "-p", str(self.api)] + list(args),
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise TestFailure(f"gobgp {' '.join(args)}: {r.stdout} {r.stderr}")
        return r.stdout

    # ---- ExaBGP ----
    def start_exabgp(self):
        if not os.path.exists(self.fifo):
            os.mkfifo(self.fifo, 0o600)
        conf = os.path.join(self.dir, "exabgp.conf")
        with open(conf, "w") as f:
            f.write(f"""process mamori {{
  run /bin/sh -c "exec cat <>{self.fifo}";
  encoder text;
}}
neighbor 127.0.0.1 {{
  router-id 10.255.0.3;
  local-address 127.0.0.1;
  local-as 65003;
  peer-as 65002;
  connect {self.rport["exa"]};
  family {{ ipv4 unicast; ipv6 unicast; ipv4 flow; ipv6 flow; }}
  api {{ processes [ mamori ]; }}
}}
""")
        env = dict(os.environ, exabgp_daemon_user="root", exabgp_daemon_daemonize="false",
                   exabgp_tcp_bind="127.0.0.1", exabgp_tcp_port=str(self.eport), exabgp_cli="false",
                   exabgp_log_destination="stdout")
        self.exabgp = Proc(["exabgp", conf], os.path.join(self.dir, "exabgp.log"), env=env)
        self.procs.append(self.exabgp)
        wait_for("the ExaBGP session", lambda: self.established("exa"))

    # ---- BIRD as the speaker ----
    def start_speaker(self):
        open(self.include, "w").close()   # the operator's empty start
        conf = os.path.join(self.dir, "speaker.conf")
        with open(conf, "w") as f:
            f.write(f"""router id 10.255.0.4;
log "{self.dir}/speaker.log" all;
protocol device {{}}
flow4 table flowtab4;
flow6 table flowtab6;
include "{self.include}";
protocol bgp rtr {{
  local 127.0.0.1 port {self.sport} as 65004;
  neighbor 127.0.0.1 port {self.rport["spk"]} as 65002;
  strict bind on; multihop;
  ipv4 {{ import none; export where proto ~ "mamori_*"; next hop keep; }};
  ipv6 {{ import none; export where proto ~ "mamori_*"; next hop keep; }};
  flow4 {{ table flowtab4; import none; export where proto ~ "mamori_*"; }};
  flow6 {{ table flowtab6; import none; export where proto ~ "mamori_*"; }};
}}
""")
        self.procs.append(Proc(["bird", "-f", "-c", conf, "-s", self.spk_ctl],
                               os.path.join(self.dir, "speaker.out")))
        wait_for("the BIRD speaker session", lambda: self.established("spk"))

    def config(self, name, backend, extra=""):
        """A mamori configuration with its own data_dir; returns its path."""
        path = os.path.join(self.dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(f"""data_dir: {self.dir}/{name}-var
mitigation:
  backend: {backend}
  communities: ["65535:666", "65001:666"]
  next_hop_v4: 192.0.2.1
  next_hop_v6: "100::1"
  gobgp_api: 127.0.0.1:{self.api}
  exabgp_pipe: {self.fifo}
  bird_include: {self.include}
  bird_socket: {self.spk_ctl}
  command_timeout: 10s
  allow: [198.51.100.0/24]
{extra}
""")
        return path

    def logs(self):
        out = ""
        for n in ("router.log", "gobgpd.log", "exabgp.log", "speaker.log"):
            p = os.path.join(self.dir, n)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f"--- {n}\n" + f.read()[-2000:]
        return out

    def stop_exabgp(self):
        self.exabgp.stop()
        self.procs.remove(self.exabgp)
        self.exabgp = None
        kill_by_path(self.fifo)

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []
        kill_by_path(self.fifo)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
