#!/usr/bin/env python3
"""A PostgreSQL server of another version, as far as a client's start-up goes: it answers
one SSLRequest with 'N', accepts any start-up message without a password and announces
server_version (argv[2]), then waits for the client to leave. Usage: fake-pg.py PORTFILE
VERSION; it writes the port it listens on (loopback) to PORTFILE and serves for 60 s."""
import socket
import struct
import sys
import time

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
srv.settimeout(1)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.getsockname()[1]))


def msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def serve(c):
    c.settimeout(5)
    while True:
        n = struct.unpack("!I", c.recv(4, socket.MSG_WAITALL))[0]
        body = c.recv(n - 4, socket.MSG_WAITALL)
        if struct.unpack("!I", body[:4])[0] == 80877103:  # SSLRequest
            c.sendall(b"N")
            continue
        break
    out = msg(b"R", struct.pack("!I", 0))
    for k, v in (("server_version", sys.argv[2]), ("server_encoding", "UTF8"),
                 ("client_encoding", "UTF8"), ("integer_datetimes", "on"),
                 ("standard_conforming_strings", "on")):
        out += msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
    out += msg(b"K", struct.pack("!II", 1, 2)) + msg(b"Z", b"I")
    c.sendall(out)
    try:
        c.recv(4096)
    except OSError:
        pass


end = time.time() + 60
while time.time() < end:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    try:
        serve(conn)
    except (OSError, struct.error):
        pass
    conn.close()
