#!/usr/bin/env bash
# Measures file transfer over a DataChannel between two rtc-cli processes on loopback
# (issue 13), next to a plain TCP copy of the same bytes on the same machine.
#
# Usage: scripts/bench-transfer.sh [MB]      (file size, default 200)
#
# 1. Builds in release unless RTC_CLI_BIN names a binary (scripts/bench_loopback.sh).
# 2. Writes MB megabytes of random bytes to a temp file.
# 3. Starts `serve`, `jerry` (`listen --auto-accept --download-dir DIR`) and `tom`
#    (`call jerry`), both headless with no camera and no microphone, on 127.0.0.1; once
#    connected, tom gets `send-file PATH` on stdin.
# 4. DataChannel MB/s: size over the time from tom's first `file_progress` to jerry's
#    `file_done` (the events' timestamps, one clock), and checks the SHA-256.
# 5. TCP MB/s: the same file through one loopback TCP connection (Python sockets, 64 KiB
#    writes), from connect to the receiver's last byte.
# Env: RTC_CLI_BIN, RTC_BENCH_KEEP (keep the temp dir).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
megabytes="${1:-200}"

say() { echo "bench-transfer: $*" >&2; }

[[ "$megabytes" =~ ^[1-9][0-9]*$ ]] || { say "MB must be a positive whole number"; exit 1; }

# shellcheck source=scripts/bench_loopback.sh
. "$root/scripts/bench_loopback.sh"
bench_loopback_init bench-transfer

RTC_BENCH_LIB="$root/scripts" python3 - "$bin" "$workdir" "$megabytes" <<'PY' &
"""Runs the transfer and the TCP copy and prints MB/s (stdlib only)."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ["RTC_BENCH_LIB"])
import bench_common  # noqa: E402
from bench_common import events, kill_all, terminate_on_sigterm, wait_for  # noqa: E402

BIN, WORK, MB = sys.argv[1], sys.argv[2], int(sys.argv[3])
SIZE = MB * 1000 * 1000
children = []


def log(msg):
    print(f"bench-transfer: {msg}", file=sys.stderr, flush=True)


terminate_on_sigterm(children)


def spawn(name, args, stdin=subprocess.DEVNULL):
    p = bench_common.spawn(WORK, name, [BIN] + args, stdin=stdin)
    children.append(p)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write(f"{p.pid}\n")
    return p


def first(path, pred, proc, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        for e in events(path):
            if pred(e):
                return e
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"no matching event in {path}")


def datachannel(path, digest):
    server = spawn("serve", ["serve", "--listen", "127.0.0.1:0"])
    line = wait_for(os.path.join(WORK, "serve.out"), "listening on ", server, 15)
    url = next(w for w in line.split() if w.startswith("ws://"))
    media = ["--camera", "none", "--mic", "none", "--speaker", "none", "--bind", "127.0.0.1"]
    downloads = os.path.join(WORK, "downloads")
    jerry = spawn("jerry", ["--headless", "--server", url, "--id", "jerry", "listen",
                            "--auto-accept", "--download-dir", downloads] + media)
    wait_for(os.path.join(WORK, "jerry.out"), '"event":"logged_in"', jerry, 15)
    tom = spawn("tom", ["--headless", "--server", url, "--id", "tom", "call", "jerry"] + media,
                stdin=subprocess.PIPE)
    wait_for(os.path.join(WORK, "tom.out"), '"state":"connected"', tom, 30)
    time.sleep(0.5)  # the chat channel and SCTP settle
    tom.stdin.write(f"send-file {path}\n".encode())
    tom.stdin.flush()
    tom_out, jerry_out = os.path.join(WORK, "tom.out"), os.path.join(WORK, "jerry.out")
    start = first(tom_out, lambda e: e.get("event") == "file_progress", tom, 60)
    done = first(jerry_out, lambda e: e.get("event") in ("file_done", "file_failed"), jerry,
                 600)
    if done["event"] != "file_done" or done.get("sha256") != digest:
        raise RuntimeError(f"transfer failed: {done}")
    seconds = done["t"] - start["t"]
    for p in (tom, jerry, server):
        p.terminate()
    return seconds


def tcp(path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got = [0, 0.0]

    def receive():
        conn, _ = listener.accept()
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got[0] += len(chunk)
        got[1] = time.time()

    t = threading.Thread(target=receive)
    t.start()
    start = time.time()
    with socket.create_connection(listener.getsockname()) as s, open(path, "rb") as f:
        while chunk := f.read(65536):
            s.sendall(chunk)
    t.join()
    if got[0] != SIZE:
        raise RuntimeError(f"TCP copy got {got[0]} of {SIZE} bytes")
    return got[1] - start


def main():
    path = os.path.join(WORK, "payload.bin")
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = SIZE
        while left:
            block = os.urandom(min(left, 1 << 20))
            digest.update(block)
            f.write(block)
            left -= len(block)
    log(f"{MB} MB of random bytes written; sending over a DataChannel")
    dc = datachannel(path, digest.hexdigest())
    log("copying the same bytes through TCP on loopback")
    tc = tcp(path)
    result = {"megabytes": MB, "datachannel_s": dc, "datachannel_MBps": MB / dc,
              "tcp_s": tc, "tcp_MBps": MB / tc}
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n{MB} MB on loopback (MB = 10^6 bytes)")
    print(f"  DataChannel, rtc-cli to rtc-cli: {dc:7.2f} s  {MB / dc:8.1f} MB/s  (SHA-256 checked)")
    print(f"  plain TCP copy:                  {tc:7.2f} s  {MB / tc:8.1f} MB/s")
    print(f"\n| transfer | MB | seconds | MB/s |\n| --- | --- | --- | --- |")
    print(f"| DataChannel (rtc-cli to rtc-cli, SHA-256 checked) | {MB} | {dc:.2f} | {MB / dc:.1f} |")
    print(f"| TCP copy (Python sockets) | {MB} | {tc:.2f} | {MB / tc:.1f} |")


try:
    main()
except Exception as e:  # noqa: BLE001 - report and stop every child
    log(f"failed: {e}")
    kill_all(children)
    sys.exit(1)
PY
runner=$!
wait "$runner" || status=$?
runner=""
exit "$status"
