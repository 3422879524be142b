"""Peers of the mail pillar's end-to-end tests, started privately on
loopback: an Unbound that serves only the test's records (RECIPES.md), a
clamd with a signature database the test writes, and a DKIM signer written
here from RFC 6376 (relaxed/relaxed, rsa-sha256 through the openssl binary)
so that mamori's verifier meets signatures it did not make itself.
Standard library only, plus the unbound, clamd, sigtool and openssl binaries.
"""
import base64
import hashlib
import os
import re
import socket
import subprocess
import time

from mamori_test import TestFailure, free_port
from peers import Proc, need, wait_for


class Unbound:
    """Unbound on 127.0.0.1:port answering only local-data records."""

    def __init__(self, root, records, extra=""):
        need("unbound", "unbound-checkconf")
        self.root = root
        self.port = free_port()
        self.conf = os.path.join(root, "unbound.conf")
        lines = []
        for name, rtype, value in records:
            if rtype == "TXT":
                # Strings of at most 255 bytes, each quoted.
                parts = [value[i:i + 250] for i in range(0, len(value), 250)] or [""]
                value = " ".join('"' + p.replace('"', '\\"') + '"' for p in parts)
            lines.append(f'    local-data: \'{name}. {rtype} {value}\'')
        with open(self.conf, "w") as f:
            f.write(f"""server:
    interface: 127.0.0.1
    port: {self.port}
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{root}"
    pidfile: "{root}/unbound.pid"
    use-syslog: no
    logfile: "{root}/unbound.log"
    module-config: "iterator"
    local-zone: "." static
{chr(10).join(lines)}
{extra}
remote-control:
    control-enable: no
""")
        r = subprocess.run(["unbound-checkconf", self.conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise TestFailure(f"unbound-checkconf: {r.stdout} {r.stderr}")
        self.proc = Proc(["unbound", "-d", "-c", self.conf], os.path.join(root, "unbound.out"))
        wait_for("unbound to answer", self._answers, timeout=30)

    def _answers(self):
        # A DNS query for "." SOA over UDP: any answer means it is up.
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def stop(self):
        self.proc.stop()


class Clamd:
    """clamd on a unix socket with a hash database written by the test."""

    def __init__(self, root, files):
        """files: {signature name: bytes} that clamd must report."""
        need("clamd")
        self.root = root
        db = os.path.join(root, "clamdb")
        os.makedirs(db)
        with open(os.path.join(db, "test.hdb"), "w") as f:
            for name, data in files.items():
                f.write(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n")
        self.socket = os.path.join(root, "clamd.sock")
        conf = os.path.join(root, "clamd.conf")
        with open(conf, "w") as f:
            f.write(f"""LocalSocket {self.socket}
DatabaseDirectory {db}
Foreground yes
LogFile {root}/clamd.log
PidFile {root}/clamd.pid
TemporaryDirectory {root}
User root
StreamMaxLength 25M
""")
        self.proc = Proc(["clamd", "-c", conf], os.path.join(root, "clamd.out"))
        wait_for("clamd to answer PING", self._ping, timeout=120, interval=0.3)

    def _ping(self):
        if not self.proc.alive():
            with open(os.path.join(self.root, "clamd.out"), errors="replace") as f:
                raise TestFailure("clamd exited: " + f.read()[-2000:])
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(self.socket)
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def stop(self):
        self.proc.stop()


def gen_rsa_key(path, bits=2048):
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                    "-out", path], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


def _relaxed_header(name, value):
    value = re.sub(r"\r\n(?=[ \t])", "", value)
    value = re.sub(r"[ \t]+", " ", value).strip()
    return f"{name.strip().lower()}:{value}"


def _relaxed_body(body):
    lines = body.replace("\r\n", "\n").split("\n")
    out = [re.sub(r"[ \t]+", " ", ln).rstrip(" \t") for ln in lines]
    while out and out[-1] == "":
        out.pop()
    return "".join(ln + "\r\n" for ln in out)


def dkim_sign(message, key_path, domain, selector, headers=("from", "to", "subject", "date")):
    """message: text with LF or CRLF ends. Returns the message with a
    DKIM-Signature (relaxed/relaxed, rsa-sha256) on top."""
    text = message.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    fields = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + "\r\n" + line)
        else:
            n, _, v = line.partition(":")
            fields.append((n, v))
    bh = base64.b64encode(hashlib.sha256(_relaxed_body(body).encode()).digest()).decode()
    signed = [h for h in headers if any(n.strip().lower() == h for n, _ in fields)]
    sig_value = (f" v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s={selector};"
                 f" t={int(time.time())}; h={':'.join(signed)}; bh={bh}; b=")
    data = ""
    for h in signed:
        # The bottom-most instance of each name (one each here).
        for n, v in reversed(fields):
            if n.strip().lower() == h:
                data += _relaxed_header(n, v) + "\r\n"
                break
    data += _relaxed_header("DKIM-Signature", sig_value)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=data.encode(),
                         check=True, capture_output=True).stdout
    b = base64.b64encode(sig).decode()
    return f"DKIM-Signature:{sig_value}{b}\n{text}"
