# Shared by the loopback benchmark scripts (bench-call.sh, bench-room.sh); source it
# after setting `root` and defining `say`. Builds (or takes) the release binary, makes
# the work dir, and on exit stops the Python runner and any rtc-cli it started, then
# removes the work dir unless the run failed or RTC_BENCH_KEEP is set.
#
# bench_loopback_init NAME: sets `bin` and `workdir` (rtc-cli-NAME.XXXXXX); the caller
# sets `runner` to the runner's pid once it starts it. The runner lists every pid it
# starts in $workdir/pids.
# Env: RTC_CLI_BIN (a prebuilt binary instead of a release build), RTC_BENCH_KEEP,
#      CARGO_TARGET_DIR.

bench_loopback_init() {
    local name="$1"
    command -v python3 >/dev/null 2>&1 || { say "python3 is needed (stdlib only)"; exit 1; }
    if [ -n "${RTC_CLI_BIN:-}" ]; then
        bin="$RTC_CLI_BIN"
    else
        local target="${CARGO_TARGET_DIR:-$root/target}"
        say "building in release (a no-op when up to date; a clean build takes minutes)"
        (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release --bin rtc-cli >&2)
        bin="$target/release/rtc-cli"
    fi
    [ -x "$bin" ] || { say "not an executable: $bin"; exit 1; }
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/rtc-cli-$name.XXXXXX")"
    status=0
    runner=""
    trap 'status=$?; bench_loopback_cleanup' EXIT
    trap 'status=130; exit 130' INT
    trap 'status=143; exit 143' TERM
}

# Stops the runner (it stops its own children on SIGTERM), then any child it left
# running: only a listed pid that still runs our binary is ours (a reaped pid may have
# been reused).
# shellcheck disable=SC2317  # invoked by the EXIT trap
bench_loopback_cleanup() {
    local pid
    if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
        kill -TERM "$runner" 2>/dev/null || true
        wait "$runner" 2>/dev/null || true
    fi
    if [ -f "$workdir/pids" ]; then
        while read -r pid; do
            if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$bin")" ]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$workdir/pids"
    fi
    if [ "$status" -eq 0 ] && [ -z "${RTC_BENCH_KEEP:-}" ]; then
        rm -rf "$workdir"
    else
        say "logs and events kept in $workdir"
    fi
}
