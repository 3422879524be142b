#!/usr/bin/env python3
"""Nothing accepted is lost: 200,000 RFC 5424 events sent over TCP, then
SIGTERM at once; mamori must drain every queue into the store and exit 0,
and a restarted mamori must find all 200,000.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamori_test import Mamori, check, run  # noqa: E402

N = 200_000


def test_200k_then_sigterm():
    m = Mamori()
    try:
        m.start()
        s = socket.create_connection(("127.0.0.1", m.syslog_port))
        chunk = []
        for i in range(N):
            chunk.append(f"<134>1 2026-11-25T10:00:00.{i % 1000:03d}Z host{i % 50} bulkapp {i} ID{i % 7} "
                         f"[meta seq=\"{i}\"] bulk event number {i} from the load test\n")
            if len(chunk) == 5000:
                s.sendall("".join(chunk).encode())
                chunk = []
        if chunk:
            s.sendall("".join(chunk).encode())
        s.shutdown(socket.SHUT_WR)
        s.close()
        rc = m.stop()
        check(rc == 0, f"exit status after SIGTERM: {rc}\n{m.read_log()}")
        # A fresh process on the same store sees every event.
        m.start()
        ans = m.search(**{"log.syslog.appname": "bulkapp"}, limit=1)
        check(ans["total"] == N, f"stored {ans['total']} of {N}")
        ans = m.search(q="bulk", limit=1)
        check(ans["total"] == N, f"full text finds {ans['total']} of {N}")
        check(m.stop() == 0, "second stop")
    finally:
        m.cleanup()


if __name__ == "__main__":
    run([test_200k_then_sigterm])
