#!/usr/bin/env bash
# Call setup under loss (issue 9: "call setup under 10 % loss succeeds in at least 99 of
# 100 attempts"): N calls in a row between two rtc-cli processes in two network
# namespaces, media (ICE, DTLS, SRTP) over rtc-netlab's impaired TUN link, signaling on
# its clean veth. Each call hangs up 1 s after it connects. Prints how many connected,
# how the others ended, and the setup time (calling -> connected) p50/p95/max.
# Needs root; every address lives inside the namespaces the lab creates and removes.
#
# Usage: sudo scripts/bench-setup.sh [N] [PROFILE]   (default: 100 calls, loss10)
# Env: RTC_BENCH_SEED (default 1), RTC_BENCH_KEEP (keep the work dir),
#      RTC_CLI_BIN, RTC_NETLAB_BIN (prebuilt binaries instead of a release build)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "bench-setup: $*" >&2; }
count="${1:-100}"
profile="${2:-loss10}"
case "$count" in ''|*[!0-9]*) say "N must be a whole number, got $count"; exit 2 ;; esac

# shellcheck source=scripts/bench_lab.sh
. "$root/scripts/bench_lab.sh"
bench_lab_init setup

python3 - "$bin" "$netlab" "$root" "$workdir" "$count" "$profile" <<'PY'
"""Runs the calls and prints the figures (stdlib only)."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(sys.argv[3], "scripts"))
import bench_common  # noqa: E402
from bench_common import events, percentile, stop, wait_for  # noqa: E402

BIN, NETLAB, ROOT, WORK = sys.argv[1:5]
COUNT, PROFILE = int(sys.argv[5]), sys.argv[6]
SEED = os.environ.get("RTC_BENCH_SEED", "1")
CALL_LIMIT_S = 45  # a call that neither connects nor fails by then is stopped
MEDIA = ["--camera", "test", "--video-size", "160x120", "--fps", "15", "--mic", "tone",
         "--speaker", "none"]


def log(msg):
    print(f"bench-setup: {msg}", file=sys.stderr, flush=True)


def spawn(name, argv, stdin=subprocess.DEVNULL):
    return bench_common.spawn(WORK, name, argv, stdin)


def rtc_cli(ns, name, args):
    return spawn(name, ["ip", "netns", "exec", ns, BIN, "--headless", "--log-file",
                        os.path.join(WORK, name + ".log")] + args)


lab = spawn("netlab", [NETLAB, "media", "--profile", PROFILE, "--seed", SEED,
                       "--max-duration", str(COUNT * CALL_LIMIT_S + 120)], stdin=subprocess.PIPE)
ready = json.loads(wait_for(os.path.join(WORK, "netlab.out"), '"ready"', lab, 20))
serve = rtc_cli(ready["a"], "serve", ["serve", "--listen", f"{ready['a_signal']}:0"])
url = next(w for w in wait_for(os.path.join(WORK, "serve.out"), "listening on ws://", serve,
                               15).split() if w.startswith("ws://"))
jerry = rtc_cli(ready["b"], "jerry", ["--server", url, "--id", "jerry", "listen",
                                       "--auto-accept", "--bind", ready["b_media"]] + MEDIA)
wait_for(os.path.join(WORK, "jerry.out"), '"event":"logged_in"', jerry, 15)

setups, failures = [], {}
try:
    for i in range(COUNT):
        name = f"tom-{i}"
        tom = rtc_cli(ready["a"], name, ["--server", url, "--id", "tom", "call", "jerry",
                                         "--hangup-after", "1s", "--bind", ready["a_media"]]
                      + MEDIA)
        try:
            tom.wait(CALL_LIMIT_S)
        except subprocess.TimeoutExpired:
            stop(tom)
        states = [e for e in events(os.path.join(WORK, name + ".out"))
                  if e.get("event") == "state"]
        start = next((e["t"] for e in states if e["state"] == "calling"), None)
        up = next((e["t"] for e in states if e["state"] == "connected"), None)
        if start is not None and up is not None and tom.returncode == 0:
            setups.append(up - start)
        else:
            end = states[-1].get("reason", states[-1]["state"]) if states else "no state"
            why = f"{end}, exit {tom.returncode}"
            failures[why] = failures.get(why, 0) + 1
            log(f"call {i + 1}: {why}")
        if (i + 1) % 10 == 0:
            log(f"{i + 1} of {COUNT} calls, {len(setups)} connected")
        time.sleep(0.3)  # let jerry go back to listening
finally:
    stop(jerry)
    stop(serve)
    lab.stdin.close()
    lab.wait(30)

ok = len(setups)
print(f"profile {PROFILE}, seed {SEED}: {ok} of {COUNT} calls connected and ended normally")
for why, n in sorted(failures.items()):
    print(f"  {n} x {why}")
if setups:
    ms = sorted(s * 1000 for s in setups)
    print(f"setup (calling -> connected) p50 {percentile(ms, 50):.0f} ms, "
          f"p95 {percentile(ms, 95):.0f} ms, max {ms[-1]:.0f} ms")
PY
