#!/usr/bin/env bash
# Measures two `rtc-cli serve --redis` instances sharing one Redis (issue 16,
# BENCHMARKS.md), everything on 127.0.0.1:
#   1. idle logged-in clients: N on each instance (two load processes, one per
#      instance), each server's RSS before / with all logged in / per client, and
#      Redis's;
#   2. call-setup handshakes per second (call -> incoming -> accept -> offer/answer ->
#      hangup, 1 KB SDPs), callers on instance A and callees on instance B, next to
#      the same load on one server without Redis.
#
# Usage: scripts/bench-cluster.sh [PROFILE]   (debug (default) or release)
#
# Redis is Debian's redis-server (scripts/setup.sh installs it), started here on a free
# port with no persistence. Every wait is bounded.
#
# Env:
#   RTC_BENCH_IDLE    idle clients per instance (default "1000 5000 10000")
#   RTC_BENCH_PAIRS   caller/callee pairs (default "1 8 32")
#   RTC_BENCH_KEEP    keep the temp dir (server logs) afterwards
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${1:-debug}"
idle_counts="${RTC_BENCH_IDLE:-1000 5000 10000}"
pair_counts="${RTC_BENCH_PAIRS:-1 8 32}"

bench=bench-cluster
# shellcheck source=scripts/bench_serve_lib.sh
. "$root/scripts/bench_serve_lib.sh"
bench_serve_init "$profile"
command -v redis-server >/dev/null || die "redis-server is missing: run scripts/setup.sh"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/rtc-cli-bench-cluster.XXXXXX")"
declare -A pid=() url=()
cleanup() {
    for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
    jobs -p | xargs -r kill 2>/dev/null || true
    if [ -z "${RTC_BENCH_KEEP:-}" ]; then rm -rf "$workdir"; else say "kept $workdir"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$workdir" >"$workdir/redis.out" 2>&1 &
pid[redis]=$!
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$redis_port" ping | grep -q PONG || die "redis-server did not start"
redis_url="redis://127.0.0.1:$redis_port/0"

# GET /healthz of server $1; prints the body.
health() {
    local hostport="${url[$1]#ws://}"
    exec 5<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
    printf 'GET /healthz HTTP/1.0\r\n\r\n' >&5
    sed -n '/^\r\{0,1\}$/,$p' <&5 | tail -n +2
    exec 5<&-
}

# Starts server $1 (extra flags: "${@:2}"), waits for its Redis link when clustered.
start_server() {
    local name="$1"
    shift
    launch_serve "$name" "$@"
    pid[$name]=$launched_pid
    url[$name]=$launched_url
    if [ "$#" -gt 0 ]; then
        for _ in $(seq 200); do
            health "$name" | grep -q '"redis":"up"' && return 0
            sleep 0.1
        done
        die "$name did not join Redis: $(health "$name")"
    fi
}

stop_server() {
    kill "${pid[$1]}" 2>/dev/null || true
    wait "${pid[$1]}" 2>/dev/null || true
    unset "pid[$1]"
}



echo "## idle logged-in clients, two instances on one Redis"
echo
echo "| clients per instance | A: RSS before / all in (MB), per client (KB) | B: same | Redis RSS before / all in (MB) | login time A / B (s) |"
echo "| --- | --- | --- | --- | --- |"
for n in $idle_counts; do
    redis-cli -p "$redis_port" flushall >/dev/null
    start_server a --redis "$redis_url"
    start_server b --redis "$redis_url"
    sleep 0.5
    before_a=$(rss_kb "${pid[a]}") before_b=$(rss_kb "${pid[b]}") before_r=$(rss_kb "${pid[redis]}")
    for s in a b; do
        mkfifo "$workdir/ctl.$s.$n"
        "$load" "${url[$s]}" idle "$n" "idle-$s" <"$workdir/ctl.$s.$n" >"$workdir/idle.$s.$n.out" 2>&1 &
        pid[load_$s]=$!
    done
    exec 3>"$workdir/ctl.a.$n" 4>"$workdir/ctl.b.$n"
    for s in a b; do wait_line '^logged_in' 300 "$workdir/idle.$s.$n.out"; done
    # One heartbeat period (5 s) so every client has been pinged and answered.
    sleep 6
    held_a=$(rss_kb "${pid[a]}") held_b=$(rss_kb "${pid[b]}") held_r=$(rss_kb "${pid[redis]}")
    total=$(health a | grep -o '"logged_in":[0-9]*' | cut -d: -f2)
    [ "$total" = "$((2 * n))" ] || die "instance a sees $total logged in, not $((2 * n))"
    echo >&3
    echo >&4
    exec 3>&- 4>&-
    for s in a b; do
        wait_line '^closed' 120 "$workdir/idle.$s.$n.out"
        wait "${pid[load_$s]}" || true
        unset "pid[load_$s]"
    done
    ms_a=$(awk '/^logged_in/ {print $3}' "$workdir/idle.a.$n.out")
    ms_b=$(awk '/^logged_in/ {print $3}' "$workdir/idle.b.$n.out")
    awk -v n="$n" -v ba="$before_a" -v ha="$held_a" -v bb="$before_b" -v hb="$held_b" \
        -v br="$before_r" -v hr="$held_r" -v ma="$ms_a" -v mb="$ms_b" 'BEGIN {
        printf "| %d | %.1f / %.1f, %.1f | %.1f / %.1f, %.1f | %.1f / %.1f | %.1f / %.1f |\n",
            n, ba/1024, ha/1024, (ha-ba)*1.024/n, bb/1024, hb/1024, (hb-bb)*1.024/n,
            br/1024, hr/1024, ma/1000, mb/1000 }'
    stop_server a
    stop_server b
done
echo

echo "## call-setup handshakes"
echo
redis-cli -p "$redis_port" flushall >/dev/null
start_server a --redis "$redis_url"
start_server b --redis "$redis_url"
start_server solo
for pairs in $pair_counts; do
    out="$workdir/calls.cluster.$pairs.out"
    timeout 60 "$load" "${url[a]},${url[b]}" calls "$pairs" 10 >"$out" 2>&1 || die "calls: $(cat "$out")"
    echo "- A -> B through Redis, $pairs pair(s), 10 s: $(cat "$out")"
    out="$workdir/calls.solo.$pairs.out"
    timeout 60 "$load" "${url[solo]}" calls "$pairs" 10 >"$out" 2>&1 || die "calls: $(cat "$out")"
    echo "- one server, no Redis, $pairs pair(s), 10 s: $(cat "$out")"
done
echo
echo "stream length after the run: $(redis-cli -p "$redis_port" xlen rtc-cli:log) entries"
