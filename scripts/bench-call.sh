#!/usr/bin/env bash
# Measures real calls on loopback: call setup time, glass-to-glass video latency,
# CPU and peak memory of each rtc-cli process (issue "Real media", BENCHMARKS.md).
#
# Usage: scripts/bench-call.sh [N]      (N calls, default 5)
#
# 1. Builds in release (`cargo build --release --bin rtc-cli`, a no-op when up to
#    date) unless RTC_CLI_BIN names a binary to use.
# 2. Starts `rtc-cli serve` on 127.0.0.1 (a free port). Everything binds 127.0.0.1.
# 3. N times: starts `jerry` (`listen --auto-accept`), waits for its login, then starts
#    `tom` (`call jerry --hangup-after 10s`); both headless, `-v`, sending the test
#    pattern at 640x480@30 and a tone, no speaker, each with its own log file and
#    config, HOME and XDG dirs in a temp dir.
# 4. Prints a summary table:
#    - call setup: from just before `call` is launched to the later of both sides'
#      `state: connected` events (the events' `ts`, same wall clock), p50/p95;
#    - glass-to-glass video latency: every `glass-to-glass latency_ms=` debug line of
#      both receivers (the test pattern stamps the capture clock in ms into its counter
#      strip; the receiver reads it after decode), p50/p95 per direction and overall;
#    - CPU % of one core of each process, averaged over its connected period
#      (/proc/PID/stat utime+stime sampled every 50 ms), and peak RSS in MB
#      (/proc/PID/status VmHWM, and the exact ru_maxrss from wait4 at exit);
#    - the targets and whether each is met.
#
# Env:
#   RTC_CLI_BIN     use this rtc-cli binary instead of building
#   RTC_BENCH_KEEP  keep the temp dir (logs, JSON events, results.json) afterwards
#   RTC_BENCH_HANGUP  how long each call stays connected (default 10s)
#   RTC_BENCH_CAMERA  video source instead of `test`, e.g. `file:tests/fixtures/clip_320x240.y4m`
#                   for real footage (scaled to 640x480; no glass-to-glass figures then:
#                   only the test pattern carries the capture clock)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
calls="${1:-5}"

say() { echo "bench-call: $*" >&2; }
die() {
    say "$*"
    exit 1
}

[[ "$calls" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, got '$calls'"

# shellcheck source=scripts/bench_loopback.sh
. "$root/scripts/bench_loopback.sh"
bench_loopback_init bench

RTC_BENCH_LIB="$root/scripts" python3 - "$bin" "$workdir" "$calls" "${RTC_BENCH_HANGUP:-10s}" <<'PY' &
"""Runs the calls and prints the summary (stdlib only)."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.environ["RTC_BENCH_LIB"])
import bench_common  # noqa: E402
from bench_common import (  # noqa: E402
    events, percentile, reap, sample, stop_measured, wait_for)

BIN, WORK, CALLS, HANGUP = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
CLK_TCK = os.sysconf("SC_CLK_TCK")
CAMERA = os.environ.get("RTC_BENCH_CAMERA") or "test"
MEDIA = ["--camera", CAMERA, "--video-size", "640x480", "--fps", "30",
         "--mic", "tone", "--speaker", "none", "--bind", "127.0.0.1"]
TARGETS = {  # issue "Real media"
    "setup_p50_ms": 300.0,
    "g2g_p50_ms": 25.0,
    "g2g_p95_ms": 50.0,
    "cpu_pct": 25.0,
    "rss_mb": 100.0,
}
LATENCY = re.compile(r"glass-to-glass.*latency_ms=([0-9.]+)")

children = []
env_for = functools.partial(bench_common.env_for, WORK)


def log(msg):
    print(f"bench-call: {msg}", file=sys.stderr, flush=True)


def stop_all(*_):
    for p in children:
        if p.returncode is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 3
    for p in children:
        if p.returncode is None:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
    sys.exit(143)


signal.signal(signal.SIGTERM, stop_all)
sys.stdout.reconfigure(line_buffering=True)


def spawn(name, args):
    out = open(os.path.join(WORK, name + ".out"), "w")
    err = open(os.path.join(WORK, name + ".err"), "w")
    p = subprocess.Popen([BIN] + args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                         env=env_for(name))
    children.append(p)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write(f"{p.pid}\n")
    return p


def state_time(evs, state):
    return next((e["t"] for e in evs if e.get("event") == "state" and e.get("state") == state),
                None)


def cpu_over(samples, start, end):
    """Mean CPU % of one core between the first sample at/after `start` and the last
    at/before `end`."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 1.0:
        return None
    a, b = inside[0], inside[-1]
    return 100.0 * (b[1] - a[1]) / CLK_TCK / (b[0] - a[0])


def latencies(log_path):
    try:
        with open(log_path) as f:
            return [float(m.group(1)) for m in map(LATENCY.search, f) if m]
    except FileNotFoundError:
        return []


def run_call(i, server):
    common = ["--headless", "-v", "--server", server]
    jerry = spawn(f"jerry-{i}", common + ["--id", "jerry", "--log-file",
                  os.path.join(WORK, f"jerry-{i}.log"), "listen", "--auto-accept"] + MEDIA)
    wait_for(os.path.join(WORK, f"jerry-{i}.out"), '"event":"logged_in"', jerry, 15)
    t0 = time.time()  # same wall clock as the events' ts
    tom = spawn(f"tom-{i}", common + ["--id", "tom", "--log-file",
                os.path.join(WORK, f"tom-{i}.log"), "call", "jerry", "--hangup-after",
                HANGUP] + MEDIA)
    samples = {"tom": [], "jerry": []}
    tom_rss = None
    deadline = t0 + 60
    while tom_rss is None and time.time() < deadline:
        for name, proc in (("tom", tom), ("jerry", jerry)):
            s = sample(proc)
            if s:
                samples[name].append(s)
        tom_rss = reap(tom, 0)
        if tom_rss is None:
            time.sleep(0.05)
    if tom_rss is None:
        log(f"call {i}: tom did not end within 60 s; stopping it")
        tom_rss = stop_measured(tom)
    # jerry sees the hang-up, then goes back to listening: let it log `ended`, then stop it.
    jerry_out = os.path.join(WORK, f"jerry-{i}.out")
    try:
        wait_for(jerry_out, '"state":"ended"', jerry, 5)
    except RuntimeError:
        pass
    s = sample(jerry)
    if s:
        samples["jerry"].append(s)
    jerry_rss = stop_measured(jerry)

    result = {"call": i, "tom_exit": tom.returncode}
    evs = {n: events(os.path.join(WORK, f"{n}-{i}.out")) for n in ("tom", "jerry")}
    conn = {n: state_time(evs[n], "connected") for n in evs}
    if None in conn.values():
        log(f"call {i}: did not connect (tom exit {tom.returncode}; see {WORK})")
        result["connected"] = False
        return result
    result["connected"] = True
    result["setup_ms"] = 1000.0 * (max(conn.values()) - t0)
    result["setup_ms_each"] = {n: 1000.0 * (conn[n] - t0) for n in conn}
    # Where the setup time goes, on the caller's clock of events.
    login = next((e["t"] for e in evs["tom"] if e.get("event") == "logged_in"), None)
    connecting = state_time(evs["tom"], "connecting")
    if login is not None and connecting is not None:
        result["setup_phases_ms"] = {
            "launch -> logged in": 1000.0 * (login - t0),
            "logged in -> connecting (ring, accept)": 1000.0 * (connecting - login),
            "connecting -> both connected (SDP, ICE, DTLS)":
                1000.0 * (max(conn.values()) - connecting),
        }
    for n, rss in (("tom", tom_rss), ("jerry", jerry_rss)):
        end = state_time(evs[n], "ended") or float("inf")
        hwm = max((s[2] for s in samples[n]), default=0)
        # Whole seconds only: the first interval starts mid-setup, the last one at hang-up.
        stats = [e for e in evs[n] if e.get("event") == "stats"][1:-1]
        result[n] = {
            "cpu_pct": cpu_over(samples[n], conn[n], end),
            "rss_mb": max(hwm, rss or 0) / 1024.0,
            "fps_in": mean([e.get("video_fps_in", 0.0) for e in stats]),
            "fps_out": mean([e.get("video_fps_out", 0.0) for e in stats]),
            "kbps_out": mean([e.get("video_kbps_out", 0.0) for e in stats]),
            "packets_lost": stats[-1].get("packets_lost", 0) if stats else None,
            # the frames this side received and decoded: the other side's video
            "g2g_ms": latencies(os.path.join(WORK, f"{n}-{i}.log")),
        }
    return result


def mean(values):
    return sum(values) / len(values) if values else None


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def verdict(value, limit):
    if value is None:
        return "n/a"
    return "met" if value < limit else f"MISSED by {value - limit:.1f} ({value / limit:.2f}x)"


def main():
    server_proc = spawn("serve", ["serve", "--listen", "127.0.0.1:0"])
    line = wait_for(os.path.join(WORK, "serve.out"), "listening on ws://", server_proc, 15)
    server = line.rsplit(" ", 1)[1]
    log(f"server {server}; {CALLS} call(s) of {HANGUP} each, camera {CAMERA} at 640x480@30 "
        "both ways")
    results = []
    for i in range(1, CALLS + 1):
        r = run_call(i, server)
        results.append(r)
        if r["connected"]:
            log(f"call {i}: setup {r['setup_ms']:.0f} ms, "
                f"tom cpu {fmt(r['tom']['cpu_pct'])} %, jerry cpu {fmt(r['jerry']['cpu_pct'])} %")
    serve_s = sample(server_proc)
    serve_rss = stop_measured(server_proc)
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    ok = [r for r in results if r["connected"]]
    print(f"\nrtc-cli call bench: {len(ok)}/{len(results)} calls connected "
          f"(127.0.0.1, camera {CAMERA} at 640x480@30 + tone both ways, {HANGUP} each)\n")
    if not ok:
        return 1
    setup = [r["setup_ms"] for r in ok]
    g2g = {
        "jerry -> tom": [x for r in ok for x in r["tom"]["g2g_ms"]],
        "tom -> jerry": [x for r in ok for x in r["jerry"]["g2g_ms"]],
    }
    both = g2g["jerry -> tom"] + g2g["tom -> jerry"]
    rows = [("call setup (launch -> both connected)", len(setup),
             percentile(setup, 50), percentile(setup, 95), min(setup), max(setup))]
    phases = [r["setup_phases_ms"] for r in ok if "setup_phases_ms" in r]
    for phase in (phases[0] if phases else {}):
        xs = [p[phase] for p in phases]
        rows.append(("  " + phase, len(xs), percentile(xs, 50), percentile(xs, 95), min(xs),
                     max(xs)))
    for name, xs in list(g2g.items()) + [("both directions", both)]:
        if xs:
            rows.append((f"glass-to-glass {name}", len(xs), percentile(xs, 50),
                         percentile(xs, 95), min(xs), max(xs)))
    print(f"{'figure (ms)':<50}{'n':>7}{'p50':>9}{'p95':>9}{'min':>9}{'max':>9}")
    for name, n, p50, p95, lo, hi in rows:
        print(f"{name:<50}{n:>7}{p50:>9.1f}{p95:>9.1f}{lo:>9.1f}{hi:>9.1f}")

    print(f"\n{'process':<18}{'CPU % mean':>12}{'CPU % max':>11}{'RSS MB max':>12}"
          f"{'fps out':>9}{'fps in':>8}{'kbps out':>10}{'lost':>6}")
    per = {}
    for n, label in (("tom", "caller"), ("jerry", "listener")):
        cpus = [r[n]["cpu_pct"] for r in ok if r[n]["cpu_pct"] is not None]
        rss = max(r[n]["rss_mb"] for r in ok)
        lost = max((r[n]["packets_lost"] or 0) for r in ok)
        per[n] = (max(cpus) if cpus else None, rss)
        print(f"{n + ' (' + label + ')':<18}{fmt(mean(cpus)):>12}{fmt(max(cpus) if cpus else None):>11}"
              f"{rss:>12.1f}{fmt(mean([r[n]['fps_out'] for r in ok if r[n]['fps_out']])):>9}"
              f"{fmt(mean([r[n]['fps_in'] for r in ok if r[n]['fps_in']])):>8}"
              f"{fmt(mean([r[n]['kbps_out'] for r in ok if r[n]['kbps_out']]), '.0f'):>10}{lost:>6}")
    serve_mb = max(serve_s[2] if serve_s else 0, serve_rss or 0) / 1024.0
    print(f"{'serve':<18}{'':>12}{'':>11}{serve_mb:>12.1f}")

    print("\ntargets (issue \"Real media\")")
    checks = [("call setup p50 < 300 ms", percentile(setup, 50), TARGETS["setup_p50_ms"])]
    if both:
        checks += [("glass-to-glass p50 < 25 ms", percentile(both, 50), TARGETS["g2g_p50_ms"]),
                   ("glass-to-glass p95 < 50 ms", percentile(both, 95), TARGETS["g2g_p95_ms"])]
    for n in ("tom", "jerry"):
        checks += [(f"{n} CPU < 25 % of one core (worst call)", per[n][0], TARGETS["cpu_pct"]),
                   (f"{n} peak RSS < 100 MB", per[n][1], TARGETS["rss_mb"])]
    for name, value, limit in checks:
        print(f"  {name:<42}{fmt(value):>8}  {verdict(value, limit)}")
    return 0 if len(ok) == len(results) else 1


try:
    sys.exit(main())
except RuntimeError as e:
    log(str(e))
    for p in children:
        if p.returncode is None:
            p.kill()
    sys.exit(1)
PY
runner=$!
wait "$runner" || status=$?
runner=""
exit "$status"
