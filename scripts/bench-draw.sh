#!/usr/bin/env bash
# Glass-to-terminal latency of the call screen (issue "Real pixels", BENCHMARKS.md):
# tom's call screen runs in a tmux pane (200x60), jerry sends the test pattern (its
# capture clock stamped in the picture), and tom's log reports, when the screen closes,
# p50/p95 from capture to the frame written to the terminal. All on 127.0.0.1.
#
# Usage: scripts/bench-draw.sh [PROFILE] [MODE]   (debug (default) or release; a
#        --render mode, default halfblock)
# Env:   RTC_BENCH_SECONDS (call length, default 12), RTC_BENCH_KEEP (keep the logs)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${1:-debug}"
mode="${2:-halfblock}"
seconds="${RTC_BENCH_SECONDS:-12}"
say() { echo "bench-draw: $*" >&2; }
case "$profile" in
debug) flags=() ;;
release) flags=(--release) ;;
*) say "PROFILE must be debug or release"; exit 1 ;;
esac
command -v tmux >/dev/null || { say "tmux is missing: run scripts/setup.sh"; exit 1; }
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build "${flags[@]}" --bin rtc-cli >&2)
bin="$target/$profile/rtc-cli"

work="$(mktemp -d "${TMPDIR:-/tmp}/rtc-cli-bench-draw.XXXXXX")"
sock="$work/tmux.sock"
cleanup() {
    tmux -S "$sock" kill-server 2>/dev/null || true
    jobs -p | xargs -r kill 2>/dev/null || true
    if [ -z "${RTC_BENCH_KEEP:-}" ]; then rm -rf "$work"; else say "kept $work"; fi
}
trap cleanup EXIT
export XDG_CONFIG_HOME="$work/config" XDG_STATE_HOME="$work/state" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

"$bin" --log-file "$work/serve.log" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>&1 &
for _ in $(seq 100); do
    url="$(grep -o 'ws://[0-9.:]*' "$work/serve.out" 2>/dev/null || true)"
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { say "serve did not start"; exit 1; }
"$bin" --log-file "$work/jerry.log" --headless --server "$url" --id jerry listen --auto-accept \
    --camera test --video-size 640x480 --fps 30 --mic tone --speaker none --bind 127.0.0.1 \
    >"$work/jerry.out" 2>&1 </dev/null &
sleep 1
tmux -S "$sock" new-session -d -s t -x 200 -y 60 \
    "'$bin' --log-file '$work/tom.log' --server '$url' --id tom call jerry --render $mode \
     --camera none --mic tone --speaker none --bind 127.0.0.1 --hangup-after ${seconds}s; \
     echo done > '$work/exit'"
for _ in $(seq $((seconds * 10 + 300))); do
    [ -f "$work/exit" ] && break
    sleep 0.1
done
[ -f "$work/exit" ] || { say "the call did not end"; exit 1; }
line="$(grep 'glass-to-terminal latency' "$work/tom.log" || true)"
[ -n "$line" ] || { say "no latency in tom's log"; exit 1; }
echo "$mode ($profile): ${line#*INFO }"
