"""Real peers that integration tests start privately on loopback: a
Postfix instance with its own config_directory, queue and mail spool
delivering to mailbox files, and HTTP servers recording webhook POSTs.
Standard library only (plus the postfix and openssl binaries).
"""
import email
import email.policy
import http.server
import mailbox
import os
import shutil
import socket
import subprocess
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

    def start(self):
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
        # The smtp listener on our port, and no chroot anywhere: the
        # chroot would be our queue directory, which has no /etc in it.
        self.sh("postconf", "-c", self.conf, "-M#", "smtp/inet")
        self.sh("postconf", "-c", self.conf, "-M",
                f"{self.port}/inet = {self.port} inet n - n - - smtpd")
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
