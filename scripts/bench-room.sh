#!/usr/bin/env bash
# Measures a 4-member room on loopback (issue 12, "Rooms"): CPU and peak memory of each
# member, bitrate sent and received, glass-to-glass latency, and one encode per frame.
#
# Usage: scripts/bench-room.sh [SECONDS]      (all-connected time measured, default 20)
#
# 1. Builds in release (`cargo build --release --bin rtc-cli`, a no-op when up to
#    date) unless RTC_CLI_BIN names a binary to use.
# 2. Starts `rtc-cli serve` on 127.0.0.1 (a free port). Everything binds 127.0.0.1.
# 3. Starts four members one after the other (`room bench`, headless, `-v`), each
#    sending the test pattern at 640x480@30 (RTC_BENCH_SIZE, RTC_BENCH_FPS) and a tone,
#    no speaker, each with its own log file, config, HOME and XDG dirs in a temp dir.
#    Waits until every member has a connected call with each of the three others,
#    measures for SECONDS, then stops them (SIGTERM: they leave the room).
# 4. Prints a table, one row per member:
#    - CPU % of one core over the measured window (/proc/PID/stat utime+stime) and peak
#      RSS in MB (/proc/PID/status VmHWM, and ru_maxrss from wait4 at exit);
#    - kbit/s sent and received (video + audio, summed over its three calls, mean of
#      the `stats` events inside the window);
#    - glass-to-glass p50/p95 ms of the frames it decoded from the three others (the
#      test pattern stamps the capture clock; the receiver logs `glass-to-glass`);
#    - frames encoded and frames sent to each peer (the last `stats` of each call):
#      one encoder feeds every peer, so each peer gets about every encoded frame and
#      the encoder runs once per captured frame, not once per peer.
#    Then the targets (issue 12: < 60 % of one core, < 150 MB each) and whether each is
#    met, and a Markdown table for BENCHMARKS.md.
#
# Env:
#   RTC_CLI_BIN      use this rtc-cli binary instead of building
#   RTC_BENCH_KEEP   keep the temp dir (logs, JSON events, results.json) afterwards
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-20}"

say() { echo "bench-room: $*" >&2; }
die() {
    say "$*"
    exit 1
}

[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive whole number, got '$seconds'"

# shellcheck source=scripts/bench_loopback.sh
. "$root/scripts/bench_loopback.sh"
bench_loopback_init bench-room

RTC_BENCH_LIB="$root/scripts" python3 - "$bin" "$workdir" "$seconds" <<'PY' &
"""Runs the room and prints the summary (stdlib only)."""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.environ["RTC_BENCH_LIB"])
import bench_common  # noqa: E402
from bench_common import (  # noqa: E402
    events, kill_all, percentile, sample, stop_measured, terminate_on_sigterm,
    wait_for)

BIN, WORK, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIZE = os.environ.get("RTC_BENCH_SIZE") or "640x480"
FPS = os.environ.get("RTC_BENCH_FPS") or "30"
MEMBERS = [("ann", 440), ("bob", 620), ("cat", 830), ("dan", 1130)]
TARGETS = {"cpu_pct": 60.0, "rss_mb": 150.0}  # issue 12, per member
LATENCY = re.compile(r"glass-to-glass.*latency_ms=([0-9.]+)")
children = []


def log(msg):
    print(f"bench-room: {msg}", file=sys.stderr, flush=True)


terminate_on_sigterm(children)
sys.stdout.reconfigure(line_buffering=True)


def spawn(name, args):
    p = bench_common.spawn(WORK, name, [BIN] + args)
    children.append(p)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write(f"{p.pid}\n")
    return p


def connected_peers(name):
    evs = events(os.path.join(WORK, name + ".out"))
    return {e["peer"] for e in evs if e.get("event") == "state" and e.get("state") == "connected"}


def mean(values):
    return sum(values) / len(values) if values else None


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main():
    server = spawn("serve", ["serve", "--listen", "127.0.0.1:0"])
    line = wait_for(os.path.join(WORK, "serve.out"), r"listening on ", server, 15)
    url = next(w for w in line.split() if w.startswith("ws://"))
    procs = {}
    for name, hz in MEMBERS:
        args = ["--headless", "-v", "--server", url, "--id", name,
                "--log-file", os.path.join(WORK, name + ".log"), "room", "bench",
                "--camera", "test", "--video-size", SIZE, "--fps", FPS,
                "--mic", f"tone:{hz}", "--speaker", "none", "--bind", "127.0.0.1"]
        procs[name] = spawn(name, args)
        wait_for(os.path.join(WORK, name + ".out"), '"event":"room_joined"', procs[name], 15)
    log(f"4 members joined at {SIZE}@{FPS}; waiting for the 12 calls to connect")
    deadline = time.time() + 60
    while time.time() < deadline:
        if all(len(connected_peers(n)) == 3 for n, _ in MEMBERS):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"the mesh did not connect within 60 s (see {WORK})")
    time.sleep(2)  # let the encoders settle on a rate
    start = time.time()
    samples = {n: [] for n, _ in MEMBERS}
    log(f"all connected; measuring {SECONDS} s")
    while time.time() < start + SECONDS:
        for n, _ in MEMBERS:
            s = sample(procs[n])
            if s:
                samples[n].append(s)
        time.sleep(0.1)
    end = time.time()
    rss = {n: stop_measured(procs[n]) for n, _ in MEMBERS}
    server.terminate()

    rows = []
    for n, _ in MEMBERS:
        evs = events(os.path.join(WORK, n + ".out"))
        inside = [e for e in evs if e.get("event") == "stats" and start <= e["t"] <= end]
        # Per second, summed over the calls: group the stats events by their second.
        by_second = {}
        for e in inside:
            b = by_second.setdefault(int(e["t"]), [0.0, 0.0])
            b[0] += e.get("video_kbps_out", 0.0) + e.get("audio_kbps_out", 0.0)
            b[1] += e.get("video_kbps_in", 0.0) + e.get("audio_kbps_in", 0.0)
        full = [v for v in by_second.values()]
        last = {}
        for e in evs:
            if e.get("event") == "stats":
                last[e["peer"]] = e
        s = samples[n]
        cpu = (100.0 * (s[-1][1] - s[0][1]) / CLK_TCK / (s[-1][0] - s[0][0])
               if len(s) >= 2 else None)
        try:
            with open(os.path.join(WORK, n + ".log")) as f:
                g2g = [float(m.group(1)) for m in map(LATENCY.search, f) if m]
        except FileNotFoundError:
            g2g = []
        encoded = max((e.get("video_frames_encoded", 0) for e in last.values()), default=0)
        rows.append({
            "member": n,
            "cpu_pct": cpu,
            "rss_mb": max(max((x[2] for x in s), default=0), rss[n] or 0) / 1024.0,
            "kbps_sent": mean([v[0] for v in full]),
            "kbps_received": mean([v[1] for v in full]),
            "g2g_p50_ms": percentile(g2g, 50) if g2g else None,
            "g2g_p95_ms": percentile(g2g, 95) if g2g else None,
            "frames_encoded": encoded,
            "frames_sent": {p: e.get("frames_sent", 0) for p, e in sorted(last.items())},
            "exit": procs[n].returncode,
        })
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)

    print(f"\n4-member room, {SIZE}@{FPS} test pattern + tone each, {SECONDS} s all connected")
    head = ("member", "CPU %", "RSS MB", "sent kbit/s", "recv kbit/s", "g2g p50/p95 ms",
            "encoded", "sent to each peer", "exit")
    lines = []
    for r in rows:
        sent = " ".join(f"{p}:{v}" for p, v in r["frames_sent"].items())
        lines.append((r["member"], fmt(r["cpu_pct"]), fmt(r["rss_mb"]),
                      fmt(r["kbps_sent"], ".0f"), fmt(r["kbps_received"], ".0f"),
                      f"{fmt(r['g2g_p50_ms'], '.0f')} / {fmt(r['g2g_p95_ms'], '.0f')}",
                      str(r["frames_encoded"]), sent, str(r["exit"])))
    for line in [head] + lines:
        print("  ".join(f"{c:<14}" for c in line))
    worst_cpu = max((r["cpu_pct"] or 0) for r in rows)
    worst_rss = max(r["rss_mb"] for r in rows)
    print(f"\ntargets: CPU < {TARGETS['cpu_pct']:.0f} % of a core each "
          f"(worst {worst_cpu:.1f}: {'met' if worst_cpu < TARGETS['cpu_pct'] else 'MISSED'}), "
          f"RSS < {TARGETS['rss_mb']:.0f} MB each "
          f"(worst {worst_rss:.1f}: {'met' if worst_rss < TARGETS['rss_mb'] else 'MISSED'})")
    print("\n| member | CPU % | RSS MB | sent kbit/s | received kbit/s | g2g p50/p95 ms "
          "| frames encoded | frames sent to each peer |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for line in lines:
        print("| " + " | ".join(line[:-1]) + " |")


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
