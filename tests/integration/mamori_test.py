"""Shared helpers for integration tests: start a real `mamori serve` on
loopback with a private config and data directory, talk to its API, and
stop it with SIGTERM. Standard library only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SRC = os.environ.get("MAMORI_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("MAMORI_BIN", os.path.join(SRC, "build", "mamori"))
TOKEN = "integration-test-token-0123456789"


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


FLOWGEN = os.path.join(SRC, "tools", "flowgen.py")


class Flowgen:
    """One tools/flowgen.py run in the background; wait() returns its
    output (the summary on stderr). nice: ahead of other work, as a router
    is not slowed down by the collector's neighbours (when root)."""

    def __init__(self, args, nice=False):
        self.out = tempfile.NamedTemporaryFile(prefix="flowgen-", suffix=".log", delete=False)
        argv = [sys.executable, FLOWGEN] + [str(a) for a in args]
        self.started = time.time()
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT,
                                  preexec_fn=(lambda: os.nice(-10) if os.geteuid() == 0 else None)
                                  if nice else None)

    def wait(self, timeout=120):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise TestFailure("flowgen did not finish")
        self.out.close()
        with open(self.out.name) as f:
            self.text = f.read()
        os.unlink(self.out.name)
        check(self.p.returncode == 0, f"flowgen failed: {self.text}")
        return self.text


_GIVEN_PORTS = set()


def free_port(kind=socket.SOCK_STREAM):
    """A port free on 127.0.0.1 for both TCP and UDP, never one this process
    has handed out before (the kernel may offer the same ephemeral port twice
    once the probing socket is closed, and two listeners would then collide)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port in _GIVEN_PORTS:
            continue
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM)
        try:
            other.bind(("127.0.0.1", port))
            _GIVEN_PORTS.add(port)
            return port
        except OSError:
            continue
        finally:
            other.close()
    raise TestFailure("no free port")


class Mamori:
    """A private mamori serve process."""

    def __init__(self, extra_config="", workdir=None, env=None, ingest_extra=""):
        self.dir = workdir or tempfile.mkdtemp(prefix="mamori-it-")
        self.data = os.path.join(self.dir, "var")
        self.api_port = free_port()
        self.syslog_port = free_port()
        self.json_port = free_port()
        self.config = os.path.join(self.dir, "mamori.yaml")
        with open(self.config, "w") as f:
            f.write(f"""data_dir: {self.data}
log_level: info
api:
  listen: 127.0.0.1:{self.api_port}
  tokens: [{TOKEN}]
ingest:
  syslog_udp: 127.0.0.1:{self.syslog_port}
  syslog_tcp: 127.0.0.1:{self.syslog_port}
  json_tcp: 127.0.0.1:{self.json_port}
{ingest_extra}
{extra_config}
""")
        if not re.search(r"^ddos:", extra_config, re.M):
            # Private flow ports too, so tests never meet a serve on the
            # default 2055/6343.
            with open(self.config, "a") as f:
                f.write(f"ddos:\n  netflow: 127.0.0.1:{free_port(socket.SOCK_DGRAM)}\n"
                        f"  sflow: 127.0.0.1:{free_port(socket.SOCK_DGRAM)}\n")
        self.milter_port = None
        if not re.search(r"^mail:", extra_config, re.M):
            # A private milter port, so tests never meet a serve on 8891.
            self.milter_port = free_port()
            with open(self.config, "a") as f:
                f.write(f"mail:\n  milter: 127.0.0.1:{self.milter_port}\n")
        self.env = dict(os.environ)
        self.env.pop("MAMORI_API_TOKEN", None)
        if env:
            self.env.update(env)
        self.proc = None
        self.log_path = os.path.join(self.dir, "mamori.log")

    def start(self, timeout=20):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"mamori exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                status, _ = self.get("/api/v1/health", auth=False)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TestFailure("mamori did not become healthy:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    def stop(self, timeout=120):
        """SIGTERM, wait, and return the exit status."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("mamori did not stop within %ds after SIGTERM" % timeout)
        self.proc = None
        self.log.close()
        return rc

    def cleanup(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def get(self, path, params=None, auth=True, token=TOKEN):
        url = f"http://127.0.0.1:{self.api_port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url)
        if auth:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metric(self, name):
        """A metric's value from /metrics, summed over its label sets (0 when
        absent)."""
        status, body = self.get("/metrics")
        check(status == 200, f"GET /metrics answered {status}")
        return sum(int(x) for x in re.findall(rb"^" + re.escape(name.encode()) + rb"(?:\{[^}]*\})? (\d+)",
                                              body, re.M))

    def search(self, **params):
        status, body = self.get("/api/v1/events", params)
        check(status == 200, f"search {params} answered {status}: {body[:300]!r}")
        return json.loads(body)

    def wait_total(self, expect, timeout=30, **params):
        """Polls a search until its total reaches expect; returns the answer."""
        deadline = time.time() + timeout
        ans = None
        while time.time() < deadline:
            ans = self.search(**params)
            if ans["total"] >= expect:
                return ans
            time.sleep(0.1)
        raise TestFailure(f"search {params}: total {ans and ans['total']} after {timeout}s, expected {expect}\n"
                          + self.read_log())


def run(tests):
    """Runs test functions; prints a closing 'N passed, N failed' line."""
    passed = failed = 0
    for t in tests:
        name = t.__name__
        try:
            t()
            print(f"PASS {name}", flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001 - report every failure
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
