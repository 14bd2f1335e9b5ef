#!/usr/bin/env bash
# Starts a user-level PulseAudio daemon with a null sink, so audio tests have real
# input and output devices without a sound card (FIELD-NOTES: "A real audio path").
#
# Idempotent: a daemon that already answers is reused, and the null sink is loaded
# only if it is missing. Works as root in CI (no stdin, CI=true). On success it prints
# the environment the tests need as `export` lines, so `eval "$(scripts/pulse-up.sh)"`
# works; diagnostics go to stderr.
#
# Env: RTC_PULSE_SINK (sink name, default rtc_null).
set -euo pipefail

sink="${RTC_PULSE_SINK:-rtc_null}"

say() { echo "pulse-up: $*" >&2; }

for tool in pulseaudio pactl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "$tool not found; install: apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
        exit 2
    fi
done

# Waits (bounded: 50 x 0.1 s) until the daemon answers `pactl info`.
wait_for_daemon() {
    for _ in $(seq 50); do
        if pactl info >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

if ! pactl info >/dev/null 2>&1; then
    # -n: no default.pa (no hardware detection, no X11 or bluetooth modules); load only
    # the native protocol (how clients and the ALSA pulse plugin connect) and the sink.
    # stdio goes away from the caller's pipes, so a caller that reads our output to EOF
    # does not wait for the daemon.
    pulseaudio --daemonize=yes --system=false --exit-idle-time=-1 -n \
        --log-level=error \
        --load=module-native-protocol-unix \
        --load="module-null-sink sink_name=${sink} rate=48000 sink_properties=device.description=${sink}" \
        </dev/null >/dev/null 2>&1 || true
fi

if ! wait_for_daemon; then
    say "PulseAudio did not answer within 5 s"
    exit 1
fi

if ! pactl list short sinks | awk '{print $2}' | grep -qx "$sink"; then
    pactl load-module module-null-sink "sink_name=${sink}" rate=48000 \
        "sink_properties=device.description=${sink}" >/dev/null
fi
pactl set-default-sink "$sink"
pactl set-default-source "${sink}.monitor"

server="$(pactl info | sed -n 's/^Server String: //p')"
say "PulseAudio up at ${server}, default sink ${sink}, default source ${sink}.monitor"
case "$server" in
    /*) echo "export PULSE_SERVER=unix:${server}" ;;
    *) echo "export PULSE_SERVER=${server}" ;;
esac
