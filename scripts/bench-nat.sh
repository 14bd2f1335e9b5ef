#!/usr/bin/env bash
# Calls across rtc-netlab's NAT lab (issue 10): call setup p50/p95 over loopback, over
# srflx candidates (STUN, endpoint-independent NATs) and over coturn's relay (direct
# UDP between the NATs dropped), N calls each, every ICE server handed out by `serve`
# alone; then the CPU coturn spends per relayed call (the footage at 320x240 both ways
# for CPU_CALL_S seconds, coturn's utime+stime from /proc before and after).
# Needs root and coturn; every address lives inside namespaces the lab creates and
# removes.
#
# Usage: sudo scripts/bench-nat.sh [N]   (default: 20 calls per path)
# Env: RTC_BENCH_KEEP (keep the work dir), RTC_CLI_BIN, RTC_NETLAB_BIN (prebuilt
#      binaries instead of a release build)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "bench-nat: $*" >&2; }
command -v turnserver >/dev/null || { say "needs coturn (turnserver)"; exit 1; }
count="${1:-20}"
case "$count" in ''|*[!0-9]*) say "N must be a whole number, got $count"; exit 2 ;; esac

# shellcheck source=scripts/bench_lab.sh
. "$root/scripts/bench_lab.sh"
bench_lab_init nat

python3 - "$bin" "$netlab" "$root" "$workdir" "$count" <<'PY'
"""Runs the three paths and the coturn CPU measurement (stdlib only)."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(sys.argv[3], "scripts"))
import bench_common  # noqa: E402
from bench_common import events, percentile, stop, wait_for  # noqa: E402

BIN, NETLAB, ROOT, WORK = sys.argv[1:5]
COUNT = int(sys.argv[5])
CALL_LIMIT_S = 45  # a call that neither connects nor fails by then is stopped
CPU_CALLS, CPU_CALL_S = 3, 20
SECRET = "bench-nat-secret-0123456789abcdef"
LIGHT = ["--camera", "test", "--video-size", "160x120", "--fps", "15", "--mic", "tone",
         "--speaker", "none"]
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
FOOTAGE = ["--camera", "file:" + os.path.join(FIXTURES, "clip_320x240.y4m"),
           "--video-size", "320x240", "--mic",
           "file:" + os.path.join(FIXTURES, "speech_48k_mono.wav"), "--speaker", "none"]


def log(msg):
    print(f"bench-nat: {msg}", file=sys.stderr, flush=True)


def spawn(name, argv, stdin=subprocess.DEVNULL):
    return bench_common.spawn(WORK, name, argv, stdin)


def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + argv


def rtc_cli(ns, name, args):
    return spawn(name, in_ns(ns, [BIN, "--headless", "--log-file",
                                  os.path.join(WORK, name + ".log")] + args))


def cpu_seconds(pid):
    """utime + stime of `pid` and its threads, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Lab:
    """`rtc-netlab nat`, coturn and `serve` in its public namespace, jerry listening in
    home1 (or, for `loopback`, everything in the public namespace on 127.0.0.1)."""

    def __init__(self, tag, blocked, serve_flags, media, loopback=False):
        self.tag, self.media, self.loopback = tag, media, loopback
        argv = [NETLAB, "nat", "--max-duration", "3600"]
        if blocked:
            argv.append("--block-direct-udp")
        self.lab = spawn(f"{tag}-netlab", argv, stdin=subprocess.PIPE)
        self.ready = json.loads(wait_for(os.path.join(WORK, f"{tag}-netlab.out"), '"ready"',
                                         self.lab, 20))
        server = self.ready["server"]
        pub = self.ready["public"]
        self.coturn = spawn(f"{tag}-coturn", in_ns(pub, [
            "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "--log-file", "stdout",
            "--listening-ip", server, "--listening-port", "3478", "--relay-ip", server,
            "--min-port", "49152", "--max-port", "49400", "--realm", "rtc-cli.bench",
            "--use-auth-secret", f"--static-auth-secret={SECRET}"]))
        secret_file = os.path.join(WORK, "turn-secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        flags = {"stun": ["--stun", f"stun:{server}:3478"],
                 "turn": ["--turn", f"turn:{server}:3478", "--turn-secret-file", secret_file]}
        extra = [a for k in serve_flags for a in flags[k]]
        listen = "127.0.0.1:0" if loopback else f"{server}:0"
        self.serve = rtc_cli(pub, f"{tag}-serve", ["serve", "--listen", listen] + extra)
        self.url = next(w for w in wait_for(os.path.join(WORK, f"{tag}-serve.out"),
                                            "listening on ws://", self.serve, 15).split()
                        if w.startswith("ws://"))
        self.jerry = rtc_cli(self.ns("home1"), f"{tag}-jerry",
                             ["--server", self.url, "--id", "jerry", "listen", "--auto-accept"]
                             + self.bind() + media)
        wait_for(os.path.join(WORK, f"{tag}-jerry.out"), '"event":"logged_in"', self.jerry, 15)

    def ns(self, home):
        return self.ready["public" if self.loopback else home]

    def bind(self):
        return ["--bind", "127.0.0.1"] if self.loopback else []

    def call(self, i, talk):
        """One call from home2; (setup seconds or None, why it failed, its stats events)."""
        name = f"{self.tag}-tom-{i}"
        tom = rtc_cli(self.ns("home2"), name,
                      ["--server", self.url, "--id", "tom", "call", "jerry", "--hangup-after",
                       talk] + self.bind() + self.media)
        try:
            tom.wait(CALL_LIMIT_S)
        except subprocess.TimeoutExpired:
            stop(tom)
        evs = events(os.path.join(WORK, name + ".out"))
        states = [e for e in evs if e.get("event") == "state"]
        stats = [e for e in evs if e.get("event") == "stats"]
        start = next((e["t"] for e in states if e["state"] == "calling"), None)
        up = next((e["t"] for e in states if e["state"] == "connected"), None)
        time.sleep(0.3)  # let jerry go back to listening
        if start is not None and up is not None and tom.returncode == 0:
            return up - start, None, stats
        end = states[-1].get("reason", states[-1]["state"]) if states else "no state"
        return None, f"{end}, exit {tom.returncode}", []

    def close(self):
        for p in (self.jerry, self.serve, self.coturn):
            stop(p)
        self.lab.stdin.close()
        self.lab.wait(30)


def setups(tag, blocked, serve_flags, loopback=False):
    lab = Lab(tag, blocked, serve_flags, LIGHT, loopback)
    times, failures, paths = [], {}, {}
    try:
        for i in range(COUNT):
            setup, why, stats = lab.call(i, "1s")
            if setup is None:
                failures[why] = failures.get(why, 0) + 1
                log(f"{tag} call {i + 1}: {why}")
                continue
            times.append(setup)
            path = (stats[-1] if stats else {}).get("path") or {}
            kinds = "/".join(path.get(end, {}).get("type", "?") for end in ("local", "remote"))
            paths[kinds] = paths.get(kinds, 0) + 1
    finally:
        lab.close()
    ms = sorted(t * 1000 for t in times)
    line = f"{tag}: {len(times)} of {COUNT} connected"
    if ms:
        line += (f"; setup p50 {percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms,"
                 f" max {ms[-1]:.0f} ms; selected pairs (local/remote) {paths}")
    print(line, flush=True)
    for why, n in sorted(failures.items()):
        print(f"  {n} x {why}", flush=True)


def coturn_cpu():
    lab = Lab("cpu", True, ["turn"], FOOTAGE)
    try:
        pid = lab.coturn.pid
        # `ip netns exec` execs turnserver, so the pid is coturn's own.
        before, t0 = cpu_seconds(pid), time.time()
        kbps, done = [], 0
        for i in range(CPU_CALLS):
            setup, why, stats = lab.call(i, f"{CPU_CALL_S}s")
            if setup is None:
                log(f"cpu call {i + 1}: {why}")
                continue
            done += 1
            # Each second's send rate while media flowed (the last event, after the end,
            # reads 0).
            kbps += [e["video_kbps_out"] + e["audio_kbps_out"] for e in stats
                     if e.get("video_kbps_out", 0) > 0]
        used, wall = cpu_seconds(pid) - before, time.time() - t0
    finally:
        lab.close()
    if not done or not kbps:
        print("coturn CPU: no relayed call connected", flush=True)
        return
    talk = done * CPU_CALL_S
    print(f"coturn CPU: {used:.2f} s over {done} relayed calls of {CPU_CALL_S} s "
          f"({wall:.0f} s wall): {100 * used / talk:.1f} % of one core per relayed call "
          f"carrying about {2 * percentile(kbps, 50):.0f} kbit/s (both directions, median "
          f"second)",
          flush=True)


log(f"{COUNT} calls per path")
setups("loopback", False, [], loopback=True)
setups("srflx", False, ["stun"])
setups("relay", True, ["stun", "turn"])
coturn_cpu()
PY
