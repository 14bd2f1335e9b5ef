#!/usr/bin/env bash
# Stops the PulseAudio daemon scripts/pulse-up.sh started. Idempotent: no daemon, no error.
set -euo pipefail

say() { echo "pulse-down: $*" >&2; }

if ! command -v pulseaudio >/dev/null 2>&1; then
    say "pulseaudio not installed; nothing to stop"
    exit 0
fi

if ! pulseaudio --check >/dev/null 2>&1; then
    say "no PulseAudio daemon running"
    exit 0
fi

pulseaudio --kill >/dev/null 2>&1 || true
# Bounded wait (50 x 0.1 s) for the daemon to exit.
for _ in $(seq 50); do
    if ! pulseaudio --check >/dev/null 2>&1; then
        say "PulseAudio stopped"
        exit 0
    fi
    sleep 0.1
done
say "PulseAudio did not stop within 5 s"
exit 1
