#!/usr/bin/python3
"""Test client and console stand-ins for the gateway's tests (standard library only).

  gwclient.py target PORTFILE [echo|flood]   a TCP console on 127.0.0.1 (echo, or endless data)
  gwclient.py ws GW TICKET [--source IP] [--send TEXT] [--proto binary] [--path /console]
                [--hold SECONDS]
  gwclient.py connect GW HOST:PORT TICKET [--source IP] [--send TEXT]
  gwclient.py slow GW TICKET SECONDS PIDFILE  a WebSocket that stops reading for SECONDS, and
                                              prints the gateway's RSS growth (kB) meanwhile
  gwclient.py idle GW [HEXBYTES]              sends bytes, prints when the gateway closes
  gwclient.py raw GW HEXBYTES                 sends bytes, prints the answer's first line
  gwclient.py frame GW TICKET HEXFRAME        a WebSocket, then a raw frame; prints what closes it

GW is HOST:PORT of the gateway. Every wait is bounded; each command prints one result line.
"""
import os
import socket
import ssl
import struct
import sys
import time
import base64
import select

TIMEOUT = 10


def tls(gw, source=None):
    host, port = gw.rsplit(":", 1)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(TIMEOUT)
    if source:
        raw.bind((source, 0))
    raw.connect((host, int(port)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(raw, server_hostname=host)


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def status_of(head):
    return head.split("\r\n", 1)[0]


def frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(s, buf):
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("closed")
            buf += chunk
    need(2)
    op = buf[0] & 0x0F
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        need(4)
        n = struct.unpack("!H", buf[2:4])[0]
        off = 4
    elif n == 127:
        need(10)
        n = struct.unpack("!Q", buf[2:10])[0]
        off = 10
    need(off + n)
    payload = buf[off:off + n]
    return op, payload, buf[off + n:]


def ws_open(gw, ticket, source=None, proto="binary", path="/console"):
    s = tls(gw, source)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {path}?ticket={ticket} HTTP/1.1\r\nHost: {gw}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    if proto:
        req += f"Sec-WebSocket-Protocol: {proto}\r\n"
    s.sendall((req + "\r\n").encode())
    head, rest = read_head(s)
    return s, head, rest


def opt(args, name, default=None):
    if name in args:
        i = args.index(name)
        return args[i + 1]
    return default


def cmd_target(args):
    portfile, mode = args[0], (args[1] if len(args) > 1 else "echo")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    conns = []
    blob = b"x" * 65536
    deadline = time.time() + 600
    while time.time() < deadline:
        writers = [c for c in conns] if mode == "flood" else []
        r, w, _ = select.select([srv] + conns, writers, [], 1)
        for c in r:
            if c is srv:
                n, _ = srv.accept()
                n.setblocking(False)
                conns.append(n)
                continue
            try:
                data = c.recv(65536)
            except (BlockingIOError, ConnectionError):
                data = b""
            if not data:
                conns.remove(c)
                c.close()
            elif mode == "echo":
                c.setblocking(True)
                c.sendall(data)
                c.setblocking(False)
        for c in w:
            try:
                c.send(blob)
            except (BlockingIOError, ConnectionError, OSError):
                pass


def cmd_ws(args):
    gw, ticket = args[0], args[1]
    text = opt(args, "--send", "hello through the gateway").encode()
    try:
        s, head, rest = ws_open(gw, ticket, opt(args, "--source"), opt(args, "--proto", "binary"),
                                opt(args, "--path", "/console"))
    except OSError as e:
        print(f"error: {e}")
        return
    if not head.startswith("HTTP/1.1 101"):
        body = rest.decode("utf-8", "replace").strip()
        print(f"{status_of(head)}: {body}")
        return
    proto = "binary" if "Sec-WebSocket-Protocol: binary" in head else "none"
    s.sendall(frame(2, text))
    got, buf = b"", rest
    try:
        while len(got) < len(text):
            op, payload, buf = read_frame(s, buf)
            got += payload
    except (EOFError, OSError) as e:
        print(f"101 then {e}")
        return
    print(f"{status_of(head)} protocol {proto}: echo {'ok' if got == text else 'WRONG'}",
          flush=True)
    if opt(args, "--hold"):
        # hold the tunnel open; say so if the gateway closes it meanwhile
        hold = float(opt(args, "--hold"))
        start = time.time()
        s.settimeout(0.5)
        while time.time() - start < hold:
            try:
                op, payload, buf = read_frame(s, buf)
                if op == 8:
                    raise EOFError("close frame")
            except socket.timeout:
                continue
            except (EOFError, OSError):
                print(f"closed by the gateway after {round(time.time() - start)} s", flush=True)
                return
    s.sendall(frame(8, struct.pack("!H", 1000)))
    s.close()


def cmd_connect(args):
    gw, target, ticket = args[0], args[1], args[2]
    text = opt(args, "--send", "hello through CONNECT").encode()
    try:
        s = tls(gw, opt(args, "--source"))
        auth = ""
        if ticket != "-":
            auth = ("Proxy-Authorization: Basic " +
                    base64.b64encode(f"ticket:{ticket}".encode()).decode() + "\r\n")
        s.sendall(f"CONNECT {target} HTTP/1.0\r\n{auth}\r\n".encode())
        head, rest = read_head(s)
    except OSError as e:
        print(f"error: {e}")
        return
    if not head.startswith("HTTP/1.0 200"):
        print(f"{status_of(head)}: {rest.decode('utf-8', 'replace').strip()}")
        return
    s.sendall(text)
    got = rest
    while len(got) < len(text):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    print(f"{status_of(head)}: echo {'ok' if got == text else 'WRONG'}")
    s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cmd_slow(args):
    gw, ticket, seconds, pidfile = args[0], args[1], float(args[2]), args[3]
    pid = int(open(pidfile).read().strip())
    s, head, rest = ws_open(gw, ticket)
    if not head.startswith("HTTP/1.1 101"):
        print(status_of(head))
        return
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    before = rss_kb(pid)
    peak = before
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(1)
        peak = max(peak, rss_kb(pid))
    # reading again works: the tunnel was paused, not broken
    s.settimeout(TIMEOUT)
    buf = rest
    op, payload, buf = read_frame(s, buf)
    print(f"growth {peak - before} kB; reading again gets {len(payload) > 0 and 'data' or 'none'}")
    s.close()


def cmd_idle(args):
    """Sends DATA (hex, may be empty) and waits for the gateway to close: prints the seconds."""
    gw, data = args[0], bytes.fromhex(args[1]) if len(args) > 1 else b""
    start = time.time()
    try:
        s = tls(gw)
        s.settimeout(30)
        s.sendall(data)
        while s.recv(4096):
            pass
    except OSError:
        pass
    print(f"closed after {round(time.time() - start)} s")


def cmd_raw(args):
    gw, data = args[0], bytes.fromhex(args[1]) if args[1] != "-" else sys.stdin.buffer.read()
    s = tls(gw)
    s.sendall(data)
    try:
        head, rest = read_head(s)
    except OSError as e:
        print(f"error: {e}")
        return
    print(f"{status_of(head)}: {rest.decode('utf-8', 'replace').strip()[:200]}")


def cmd_frame(args):
    gw, ticket, hexframe = args[0], args[1], args[2]
    s, head, rest = ws_open(gw, ticket)
    if not head.startswith("HTTP/1.1 101"):
        print(status_of(head))
        return
    s.sendall(bytes.fromhex(hexframe))
    buf = rest
    try:
        while True:
            op, payload, buf = read_frame(s, buf)
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
                print(f"close {code}: {payload[2:].decode('utf-8', 'replace')}")
                return
            if op == 10:
                print(f"pong {payload.decode('utf-8', 'replace')}")
                return
    except (EOFError, OSError) as e:
        print(f"closed without a close frame: {e}")


def main():
    cmds = {"target": cmd_target, "ws": cmd_ws, "connect": cmd_connect, "slow": cmd_slow,
            "raw": cmd_raw, "frame": cmd_frame, "idle": cmd_idle}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
