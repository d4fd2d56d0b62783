#!/usr/bin/env python3
"""Run a shell command on a guest's serial console (a pty, as libvirt's <serial type='pty'>
gives it) and print what came back until a marker line appears, or nothing after a timeout.
Usage: serial.py PTY TIMEOUT COMMAND MARKER...  (exit 0 when a marker was seen)"""
import os, select, sys, termios, time, tty

pty, timeout, cmd, markers = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)  # no echo of the guest's output back into it
attrs = termios.tcgetattr(fd)
attrs[3] &= ~termios.ECHO
termios.tcsetattr(fd, termios.TCSANOW, attrs)
deadline, seen = time.time() + timeout, b""
sent = 0
while time.time() < deadline:
    if time.time() > sent + 3:  # the shell may still be starting: say it again
        os.write(fd, b"\n" + cmd.encode() + b"\n")
        sent = time.time()
    r, _, _ = select.select([fd], [], [], 0.3)
    if r:
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
        text = seen.decode("utf-8", "replace")
        for m in markers:
            if m in text.replace(cmd, ""):
                print(m)
                sys.exit(0)
sys.stdout.write(seen.decode("utf-8", "replace")[-400:])
sys.exit(1)
