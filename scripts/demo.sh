#!/usr/bin/env bash
# The first thing to run: a real rtc-cli call on this machine, all on 127.0.0.1.
#
# 1. Installs what a fresh Debian/Ubuntu machine lacks to build (libclang-dev for
#    bindgen, libasound2-dev for cpal, cmake for the bundled libopus, nasm for
#    openh264's assembly, pkg-config; see FIELD-NOTES) and a Rust toolchain if
#    there is none (rustup).
# 2. Builds in release (`cargo build --release`, into target/).
# 3. Starts a local `rtc-cli serve`, and `jerry` as a headless
#    `listen --auto-accept` that sends the bundled footage and speech
#    (tests/fixtures), then calls jerry as `tom` in the call screen: jerry's video
#    as colored half-blocks, the speech on the speaker if there is one. Tom sends
#    the camera and microphone when they exist, else the test pattern and a tone.
#    `h` or `q` ends the call; everything the script started is stopped on exit,
#    also on Ctrl-C.
#
# When stdout is not a terminal (CI), tom runs headless and hangs up after 10 s,
# printing the call's events as JSON lines; the script exits with tom's exit code.
#
# Env:
#   RTC_CLI_BIN   use this rtc-cli binary; skips installing packages and building
#   RTC_DEMO_KEEP keep the temp dir with logs and config even after a clean run
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages=(libclang-dev libasound2-dev cmake nasm pkg-config)
min_rust="1.91" # Cargo.toml rust-version (sonora needs 1.91)

say() { echo "demo: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (no sudo found)"
    fi
}

# Installs the missing ones of the given Debian packages (apt-get update once).
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Whether version $1 (x.y[.z]) is at least $2.
version_at_least() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck source=/dev/null
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        if command -v dpkg >/dev/null 2>&1; then
            install_packages curl ca-certificates
        fi
        say "installing Rust with rustup (https://rustup.rs)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal
        # shellcheck source=/dev/null
        . "$HOME/.cargo/env"
    fi
    local have
    have="$(rustc --version | awk '{print $2}')"
    if ! version_at_least "$have" "$min_rust"; then
        command -v rustup >/dev/null 2>&1 ||
            die "Rust $have is older than $min_rust and there is no rustup to update it"
        say "Rust $have is older than $min_rust: updating the stable toolchain"
        rustup update stable
    fi
}

build() {
    if command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        install_packages "${packages[@]}"
    else
        say "not Debian/Ubuntu: make sure these (or your system's equivalents) are installed: ${packages[*]}"
    fi
    ensure_rust
    say "building in release (a clean build takes several minutes)"
    (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --release)
    bin="$root/target/release/rtc-cli"
}

# --- processes this script starts, stopped on every exit ----------------------

pids=()
workdir=""
status=0

# Stops a process: SIGTERM (each rtc-cli hangs up and exits), SIGKILL after 3 s.
stop() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        stop "$pid"
    done
    pids=()
    if [ -n "$workdir" ] && [ -d "$workdir" ]; then
        if [ "$status" -eq 0 ] && [ -z "${RTC_DEMO_KEEP:-}" ]; then
            rm -rf "$workdir"
        else
            say "logs and config kept in $workdir"
        fi
    fi
}
trap 'status=$?; cleanup' EXIT
trap 'status=130; exit 130' INT
trap 'status=143; exit 143' TERM

# Polls (every 0.1 s, at most $2 seconds) until file $1 has a line matching $3,
# failing early if process $4 is gone; prints the line.
wait_for_line() {
    local file="$1" seconds="$2" pattern="$3" pid="$4" line
    for _ in $(seq $((seconds * 10))); do
        if line="$(grep -m1 -E "$pattern" "$file" 2>/dev/null)"; then
            echo "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Starts `rtc-cli serve` on 127.0.0.1:8787, or on a free port if that one is taken;
# sets `server` to its ws:// URL.
start_server() {
    local listen line pid
    for listen in 127.0.0.1:8787 127.0.0.1:0; do
        "$bin" serve --listen "$listen" >"$workdir/serve.out" 2>&1 </dev/null &
        pid=$!
        if line="$(wait_for_line "$workdir/serve.out" 10 'listening on ws://' "$pid")"; then
            pids+=("$pid")
            server="${line##* }"
            return 0
        fi
        stop "$pid"
    done
    die "rtc-cli serve did not start: $(cat "$workdir/serve.out")"
}

# Starts jerry: headless, answers at once, sends the bundled clip and speech.
start_jerry() {
    local pid
    # stdin from /dev/null: jerry must not read the keys meant for tom's screen.
    "$bin" --headless --server "$server" --id jerry --config "$workdir/jerry.toml" \
        --log-file "$workdir/jerry.log" \
        listen --auto-accept \
        --camera "file:$root/tests/fixtures/clip_320x240.y4m" --video-size 320x240 \
        --mic "file:$root/tests/fixtures/speech_48k_mono.wav" \
        --speaker none --bind 127.0.0.1 \
        >"$workdir/jerry.jsonl" 2>"$workdir/jerry.err" </dev/null &
    pid=$!
    pids+=("$pid")
    wait_for_line "$workdir/jerry.jsonl" 15 '"event":"logged_in"' "$pid" >/dev/null ||
        die "jerry did not log in (see $workdir/jerry.log)"
}

# Sets `tom_media` to the camera and microphone when present, else the test
# pattern and a tone, saying so.
choose_tom_media() {
    local devices
    devices="$("$bin" devices 2>/dev/null || true)"
    tom_media=(--camera auto --mic auto)
    if grep -q 'no cameras found' <<<"$devices"; then
        say "no camera here: tom sends the test pattern"
        tom_media[1]="test"
    fi
    if grep -q 'no audio inputs found' <<<"$devices" || ! grep -q 'Audio inputs' <<<"$devices"; then
        say "no microphone here: tom sends a tone"
        tom_media[3]="tone"
    fi
}

main() {
    if [ -n "${RTC_CLI_BIN:-}" ]; then
        bin="$RTC_CLI_BIN"
        [ -x "$bin" ] || die "RTC_CLI_BIN=$bin is not an executable"
    else
        build
    fi
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/rtc-cli-demo.XXXXXX")"
    start_server
    start_jerry
    choose_tom_media

    local tom=("$bin" --server "$server" --id tom --config "$workdir/tom.toml"
        --log-file "$workdir/tom.log")
    local call=(call jerry "${tom_media[@]}" --speaker auto --bind 127.0.0.1)
    if [ -t 1 ]; then
        say "calling jerry on $server: m mute, v camera, s stats, ? help, h or q to end"
        "${tom[@]}" "${call[@]}" || status=$?
    else
        say "stdout is not a terminal: tom runs headless and hangs up after 10 s"
        "${tom[@]}" --headless "${call[@]}" --hangup-after 10s </dev/null || status=$?
    fi
    say "call ended (rtc-cli exit code $status)"
    return "$status"
}

main "$@"
