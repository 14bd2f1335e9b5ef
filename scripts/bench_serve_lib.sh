# Shared by the signaling-server benchmarks (bench-serve.sh, bench-cluster.sh); source
# it after setting `root` and `bench` (the script's name, for messages); `workdir`
# must be set before `launch_serve`.
#
# bench_serve_init PROFILE: builds rtc-cli and examples/serve_load for PROFILE (debug or
# release), sets `bin` and `load`, and raises the open-file limit to the hard limit (the
# clients and the servers need one handle per connection).
# Env: CARGO_TARGET_DIR.

say() { echo "$bench: $*" >&2; }
die() {
    say "$*"
    exit 1
}

bench_serve_init() {
    local profile="$1" flags=()
    case "$profile" in
    debug) ;;
    release) flags=(--release) ;;
    *) die "PROFILE must be debug or release, got '$profile'" ;;
    esac
    local target="${CARGO_TARGET_DIR:-$root/target}"
    say "building rtc-cli and examples/serve_load ($profile)"
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build "${flags[@]}" --bin rtc-cli --example serve_load >&2)
    bin="$target/$profile/rtc-cli"
    load="$target/$profile/examples/serve_load"
    ulimit -n "$(ulimit -Hn)"
    say "open-file limit: $(ulimit -n)"
}

# Starts `rtc-cli serve` as $1 (log and output in $workdir/$1.*) on 127.0.0.1:0 with
# caps that fit the load, extra flags "${@:2}"; sets `launched_pid` and `launched_url`.
launch_serve() {
    local name="$1"
    shift
    local out="$workdir/$name.out"
    "$bin" --log-file "$workdir/$name.log" serve --listen 127.0.0.1:0 \
        --max-connections 30000 --max-connections-per-address 30000 "$@" >"$out" 2>&1 &
    launched_pid=$!
    for _ in $(seq 100); do
        launched_url="$(grep -o 'ws://[0-9.:]*' "$out" 2>/dev/null || true)"
        [ -n "$launched_url" ] && return 0
        sleep 0.1
    done
    die "$name did not start: $(cat "$out")"
}

# The resident set of process $1, in KB.
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Waits up to $2 seconds for a line matching $1 in file $3.
wait_line() {
    for _ in $(seq $(($2 * 10))); do
        grep -q "$1" "$3" 2>/dev/null && return 0
        sleep 0.1
    done
    die "no '$1' within $2 s in $3: $(tail -5 "$3")"
}
