#!/usr/bin/env python3
"""The invariants of host failure recovery, sampled every 100 ms until STOP_FILE appears:
  - never two QEMU processes with one disk under SHARED open for writing;
  - never a desktop with sessions of two users, nor a session of a user on a desktop assigned
    to another.
Each violation is a line in OUT_FILE; at the end, a summary line 'samples N violations M'.
Usage: ha-watch.py SHARED DB OUT_FILE STOP_FILE"""
import os, sqlite3, sys, time

shared, db, out, stop = sys.argv[1:5]
shared = os.path.realpath(shared) + "/"


def qemu_pids():
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
        except OSError:
            continue
        if b"qemu-system" in argv0:
            yield p


def writers():
    """disk path -> set of QEMU pids holding it open for writing"""
    held = {}
    for p in qemu_pids():
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                path = os.readlink(f"/proc/{p}/fd/{fd}")
                if not path.startswith(shared) or path.startswith(shared + "lockspace/"):
                    continue
                with open(f"/proc/{p}/fdinfo/{fd}") as f:
                    flags = next(int(l.split()[1], 8) for l in f if l.startswith("flags:"))
            except (OSError, StopIteration, ValueError):
                continue
            if flags & 3:  # O_WRONLY or O_RDWR
                held.setdefault(path, set()).add(p)
    return held


samples = violations = 0
with open(out, "w") as log:
    conn = None
    while not os.path.exists(stop):
        samples += 1
        for path, pids in writers().items():
            if len(pids) > 1:
                violations += 1
                log.write(f"{time.time():.1f} two QEMUs write {path}: pids {sorted(pids)}\n")
        try:
            if conn is None:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            rows = conn.execute(
                "SELECT desktop_id FROM sessions WHERE user_id IS NOT NULL GROUP BY desktop_id "
                "HAVING COUNT(DISTINCT user_id) > 1 UNION "
                "SELECT s.desktop_id FROM sessions s JOIN desktops d ON d.id = s.desktop_id "
                "WHERE d.user_id IS NOT NULL AND s.user_id IS NOT NULL AND s.user_id != d.user_id"
            ).fetchall()
            for (d,) in rows:
                violations += 1
                log.write(f"{time.time():.1f} desktop {d} has two users\n")
        except sqlite3.Error:
            conn = None  # the manager is restarting, or the file is being replaced
        log.flush()
        time.sleep(0.1)
    log.write(f"samples {samples} violations {violations}\n")
