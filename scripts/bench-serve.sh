#!/usr/bin/env bash
# Measures `rtc-cli serve` under load on 127.0.0.1 (issue 11, BENCHMARKS.md):
#   1. idle logged-in clients at 1 000 / 5 000 / 10 000 (a fresh server each): the
#      server's RSS before, with them all logged in, per client, and after they all
#      closed;
#   2. call-setup handshakes per second (call -> incoming -> accept -> offer/answer ->
#      hangup, 1 KB SDPs) with p50/p99 of one handshake;
#   3. the time to serve a fresh connect + login while N half-open connections are
#      held, also against a server limited to 256 file handles.
#
# Usage: scripts/bench-serve.sh [PROFILE]   (debug (default) or release)
#
# The load generator is `examples/serve_load.rs` (tokio-tungstenite). Every wait is
# bounded; everything binds and connects to 127.0.0.1 only. The script raises its
# open-file limit to the hard limit (the clients and the server each need one handle
# per connection).
#
# Env:
#   RTC_BENCH_IDLE    the idle client counts (default "1000 5000 10000")
#   RTC_BENCH_KEEP    keep the temp dir (server logs) afterwards
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${1:-debug}"
idle_counts="${RTC_BENCH_IDLE:-1000 5000 10000}"

bench=bench-serve
# shellcheck source=scripts/bench_serve_lib.sh
. "$root/scripts/bench_serve_lib.sh"
bench_serve_init "$profile"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/rtc-cli-bench-serve.XXXXXX")"
server_pid=""
cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    jobs -p | xargs -r kill 2>/dev/null || true
    if [ -z "${RTC_BENCH_KEEP:-}" ]; then rm -rf "$workdir"; else say "kept $workdir"; fi
}
trap cleanup EXIT

# Starts a fresh server (extra flags: "$@"); sets server_pid and url.
start_server() {
    launch_serve serve "$@"
    server_pid=$launched_pid
    url=$launched_url
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}



echo "## idle logged-in clients"
echo
echo "| clients | RSS before (MB) | RSS all logged in (MB) | per client (KB) | RSS 6 s after all closed (MB) | login time (s) |"
echo "| --- | --- | --- | --- | --- | --- |"
for n in $idle_counts; do
    start_server
    sleep 0.5
    before=$(rss_kb "$server_pid")
    ctl="$workdir/ctl.$n"
    out="$workdir/idle.$n.out"
    mkfifo "$ctl"
    "$load" "$url" idle "$n" <"$ctl" >"$out" 2>&1 &
    load_pid=$!
    exec 3>"$ctl"
    wait_line '^logged_in' 300 "$out"
    # One heartbeat period (5 s) so every client has been pinged and answered.
    sleep 6
    held=$(rss_kb "$server_pid")
    echo >&3
    exec 3>&-
    wait_line '^closed' 120 "$out"
    sleep 6
    after=$(rss_kb "$server_pid")
    login_ms=$(awk '/^logged_in/ {print $3}' "$out")
    awk -v n="$n" -v b="$before" -v h="$held" -v a="$after" -v ms="$login_ms" 'BEGIN {
        printf "| %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", n, b/1024, h/1024, (h-b)*1.024/n, a/1024, ms/1000 }'
    wait "$load_pid"
    stop_server
done
echo

echo "## call-setup handshakes"
echo
start_server
for pairs in 1 8; do
    out="$workdir/calls.$pairs.out"
    timeout 60 "$load" "$url" calls "$pairs" 10 >"$out" 2>&1 || die "calls: $(cat "$out")"
    echo "- $pairs pair(s), 10 s: $(cat "$out")"
done
stop_server
echo

echo "## a fresh login while half-open connections are held"
echo
for held in 500 2000; do
    start_server
    out="$workdir/halfopen.$held.out"
    timeout 120 "$load" "$url" half-open "$held" 20 >"$out" 2>&1 || die "half-open: $(cat "$out")"
    echo "- default limits: $(cat "$out")"
    stop_server
    start_server --upgrade-timeout 120s
    prlimit --pid "$server_pid" --nofile=256:256
    out="$workdir/halfopen.$held.256.out"
    timeout 120 "$load" "$url" half-open "$held" 20 >"$out" 2>&1 || die "half-open (256 files): $(cat "$out")"
    echo "- server limited to 256 file handles, --upgrade-timeout 120s: $(cat "$out")"
    stop_server
done
