# Shared by the lab benchmark scripts (bench-setup.sh, bench-nat.sh); source it after
# setting `root` and defining `say`. Builds (or takes) the release binaries, makes the
# work dir, and on exit sweeps the lab's namespaces and removes the work dir unless the
# run failed or RTC_BENCH_KEEP is set.
#
# bench_lab_init NAME: sets `bin`, `netlab` and `workdir` (rtc-bench-NAME.XXXXXX).
# Env: RTC_CLI_BIN, RTC_NETLAB_BIN (prebuilt binaries instead of a release build),
#      RTC_BENCH_KEEP (keep the work dir), CARGO_TARGET_DIR.

bench_lab_init() {
    local name="$1"
    [ "$(id -u)" -eq 0 ] || { say "needs root (ip netns, /dev/net/tun)"; exit 1; }
    local target="${CARGO_TARGET_DIR:-$root/target}"
    if [ -z "${RTC_CLI_BIN:-}" ] || [ -z "${RTC_NETLAB_BIN:-}" ]; then
        say "building rtc-cli and rtc-netlab in release (a no-op when up to date)"
        (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release --locked --workspace --bins >&2)
    fi
    bin="${RTC_CLI_BIN:-$target/release/rtc-cli}"
    netlab="${RTC_NETLAB_BIN:-$target/release/rtc-netlab}"
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/rtc-bench-$name.XXXXXX")"
    status=0
    trap 'status=$?; bench_lab_cleanup' EXIT
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
bench_lab_cleanup() {
    "$netlab" sweep >/dev/null 2>&1 || true
    if [ "$status" -eq 0 ] && [ -z "${RTC_BENCH_KEEP:-}" ]; then
        rm -rf "$workdir"
    else
        say "logs kept in $workdir"
    fi
}
