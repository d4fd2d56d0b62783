#!/usr/bin/env python3
"""A scripted agent for the manager's side of the agent link (test-agent.sh): a minimal
WebSocket client (RFC 6455, masked frames) over TLS, without libvirt. It links with a host
credential, reads the welcome, then plays: a hello whose inventory has a running desktop, a
console connection to it, bad frames (not JSON, binary, an unknown type), the console going
away, heartbeats, and a clean close. Prints what happens, one line each.
Usage: fake-agent.py HOST PORT CREDENTIAL DESKTOP_ID"""
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time

host, port, cred, desktop = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])


def say(*words):
    print(*words, flush=True)


def read(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def send(s, data, opcode=1):
    data = data.encode() if isinstance(data, str) else data
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def receive(s):
    h = read(s, 2)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", read(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read(s, 8))[0]
    return h[0] & 0x0F, read(s, n)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=host)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /api/v1/agent/link HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"Authorization: Bearer {cred}\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    head += read(s, 1)
status = int(head.split(b" ")[1])
say("status", status)
if status != 101:
    sys.exit(0)
op, data = receive(s)
welcome = json.loads(data)
inst = welcome["installation"]
say("welcome", welcome["name"], inst)
dom = f"atrium-{inst}-desktop-{desktop}"


def msg(**m):
    send(s, json.dumps(m))


def beat():
    msg(type="heartbeat", cpus=2, ram_mb=2048, ram_free_mb=1024, ram_committed_mb=512, running=1)


msg(type="hello", agent="fake", cpus=2, ram_mb=2048, accel="qemu",
    inventory=[{"domain": dom, "state": "running", "spice_port": 5999, "vnc_port": 5998},
               {"domain": "atrium-ffffffff-desktop-1", "state": "running"}])
for step in range(16):  # 8 s of heartbeats every 0.5 s, with the scenario in between
    beat()
    if step == 3:
        msg(type="event", event="graphics", domain=dom, phase="connect", client="192.0.2.7")
        say("connect sent")
    if step == 6:
        send(s, "this is not JSON")
        send(s, b"\x00\x01binary", opcode=2)
        msg(type="bogus")
        msg(type="event", event="lifecycle", domain="atrium-ffffffff-desktop-1", state="shutoff")
        say("bad frames sent")
    if step == 9:
        msg(type="event", event="graphics", domain=dom, phase="disconnect", client="192.0.2.7")
        say("disconnect sent")
    time.sleep(0.5)
send(s, struct.pack(">H", 1000), opcode=8)
say("closed")
