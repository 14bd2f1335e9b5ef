#!/usr/bin/env bash
# Runs every test of rtc-cli on a fresh machine: installs what is missing, then
# formatting, clippy with warnings denied, rustdoc without warnings, and all unit,
# integration and end-to-end tests (tmux call screen, PulseAudio devices, headless
# Chromium as a peer, calls between processes on 127.0.0.1 and in network namespaces,
# through the network lab's impaired link and NAT routers), for the whole workspace
# (rtc-cli and the lab crate, netlab/).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
echo "== cargo build"
cargo build --workspace --all-targets --locked
echo "== cargo test"
trap 'scripts/pulse-down.sh >/dev/null 2>&1 || true' EXIT
# --no-fail-fast: one flaky binary must not hide how the later ones did.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.txt
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' target/test-output.txt
