#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test rtc-cli:
#   libclang-dev      bindgen in nokhwa's v4l2-sys-mit
#   libasound2-dev    cpal's alsa-sys
#   cmake             opus builds bundled libopus
#   nasm              openh264's SIMD assembly (without it encode is ~2.5x slower)
#   pkg-config        finds ALSA
#   tmux              the call-screen end-to-end test
#   nftables, iproute2, util-linux
#                     cut UDP inside a private network namespace (ICE restart test),
#                     the network lab's namespaces and NAT routers (rtc-netlab)
#   coturn            the STUN server (and TURN relay) in the NAT lab tests
#                     (tests/network_nat.rs)
#   pulseaudio, pulseaudio-utils, libasound2-plugins
#                     a real audio server with a null sink for the device tests
#   redis-server      the shared store of several `serve --redis` instances
#                     (tests/redis_cluster.rs starts its own on a free port)
#   xvfb, kitty, xterm, x11-apps
#                     real terminals (kitty graphics; xterm's sixel as a VT340) on a
#                     private X display, screenshotted with xwd (tests/terminal_pixels.rs)
#   python3-fonttools, fonts-dejavu-core
#                     a copy of DejaVu Sans Mono with octant glyphs (no Debian 12 font
#                     has Unicode 16's octants) for the octant test in kitty
#   chromium          an independent WebRTC peer: the browser interop test
#                     (tests/browser_peer.rs) runs it headless with fake devices
# Idempotent: installs only what is missing. Runs apt-get as root, else through sudo.
set -euo pipefail

packages=(libclang-dev libasound2-dev cmake nasm pkg-config tmux
          pulseaudio pulseaudio-utils libasound2-plugins iproute2 util-linux nftables
          coturn chromium redis-server xvfb kitty xterm x11-apps
          python3-fonttools fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "setup: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
