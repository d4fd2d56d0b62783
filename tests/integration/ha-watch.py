#!/usr/bin/env python3
"""The invariants of host failure recovery and live migration, sampled every 100 ms until
STOP_FILE appears:
  - never two QEMU processes writing one disk under SHARED: holding QEMU's own image lock of
    the write permission (byte 101 of the file, as /proc/PID/fdinfo shows it). A migration's
    destination opens the disk before the switch-over, inactive, without that lock;
  - never a desktop with sessions of two users, nor a session of a user on a desktop assigned
    to another.
Each violation is a line in OUT_FILE; at the end, a summary line 'samples N violations M'.
With DISK, every sample also counts the QEMUs writing DISK: a line 'DISK: N writers' when
it is not one (0: the switch-over of a migration, between the source's release and the
destination's take), and the summary adds 'unwritten K'.
Usage: ha-watch.py SHARED DB OUT_FILE STOP_FILE [DISK]"""
import os, sqlite3, sys, time

shared, db, out, stop = sys.argv[1:5]
shared = os.path.realpath(shared) + "/"
disk = os.path.realpath(sys.argv[5]) if len(sys.argv) > 5 else None
WRITE_LOCK = 101  # QEMU's file locking: byte 100 + the bit of BLK_PERM_WRITE


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
                    info = f.read().splitlines()
            except OSError:
                continue
            for l in info:
                # lock:	1: OFDLCK ADVISORY  READ -1 fe:00:10952738 101 101
                w = l.split()
                if w and w[0] == "lock:" and w[-2].isdigit() and \
                        int(w[-2]) <= WRITE_LOCK <= (int(w[-1]) if w[-1].isdigit() else 1 << 62):
                    held.setdefault(path, set()).add(p)
    return held


samples = violations = unwritten = 0
with open(out, "w") as log:
    conn = None
    while not os.path.exists(stop):
        samples += 1
        held = writers()
        if disk is not None and len(held.get(disk, ())) != 1:
            unwritten += not held.get(disk)
            log.write(f"{time.time():.1f} {disk}: {len(held.get(disk, ()))} writers\n")
        for path, pids in held.items():
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
    log.write(f"samples {samples} violations {violations}"
              + (f" unwritten {unwritten}" if disk else "") + "\n")
