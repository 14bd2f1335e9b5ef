#!/usr/bin/env bash
# Measures calls across impaired links (issue 9, "Calls that survive real networks"):
# per profile of rtc-netlab (loss, delay, jitter, a bottleneck, cuts), one call between
# two rtc-cli processes in two network namespaces, media on the lab's user-space TUN
# link, signaling on a clean veth. Needs root (ip netns, /dev/net/tun); every address
# lives inside namespaces the lab creates and removes.
#
# Usage: sudo scripts/bench-network.sh [PROFILE...]   (default: every profile)
#
# Per profile:
# 1. `rtc-netlab media --profile P --seed S` builds namespaces a and b (its clock, and so
#    the cut profiles' window "5 s after start", starts here).
# 2. `serve` in a; `jerry` in b (`listen --auto-accept`) sends the test pattern (at the
#    video size and the footage's frame rate) and the speech fixture and records what
#    arrives; `tom` in a calls jerry with `--hangup-after` (15 s, or until 10 s after a
#    cut ends), sends the footage (RTC_BENCH_CLIP; by default the fixture
#    tests/fixtures/clip_320x240.y4m, 15 fps) and the speech, records what arrives.
#    Both `-v`, `--speaker none`, `--bind` to their tun0 address.
# 3. Prints one row per direction:
#    - sent: the sender's last `frames_sent`; shown: frames in the receiver's recording
#      (every decoded frame is recorded: what the receiver displayed);
#    - freezes (jerry -> tom, the test pattern's direction: tom's `-v` log has a
#      `glass-to-glass` line per decoded frame, with a monotonic stamp): W3C freezeCount and
#      totalFreezesDuration, a gap between displayed frames longer than
#      max(3 x mean, mean + 150 ms), the mean over the previous 30 intervals; plus the
#      longest gap, and the gap from the last frame to the call's end;
#    - footage: s without video (tom -> jerry: the footage carries no stamps, so no W3C
#      freezes; instead the seconds of jerry's once-a-second `stats` in which
#      `frames_decoded` did not grow, from the first that did, or all if none did);
#    - PSNR median (tom -> jerry, the footage: each recorded frame against its best
#      source match, tests/common/media_check.rs via examples/recording_check.rs; at
#      the recording's size, which is its first frame's: "(at WxH)" when the ladder had
#      stepped the sender down from the footage's, the source then scaled to it);
#    - audio NCC (the recording against the speech, 1 s windows, tests/common/audio_match.rs)
#      and concealed frames (the receiver's last `stats` event);
#    - glass-to-glass p50/p95 (jerry -> tom: the test pattern's capture-clock stamps);
#    - adapt: for a bottleneck, seconds from connected until the sender's video+audio
#      kbit/s (`stats`) stays under the bottleneck rate; `never` if it does not;
#    - end: tom's end reason and exit code, its reconnecting episodes, and for cuts the
#      seconds from the link's return to the first frame shown after it;
#    - link: packets into the forwarder (both ways) and dropped by it, and the kbit/s
#      tom offered to the link (IP bytes, retransmissions included).
#    The last lines are a Markdown table of the same figures (for BENCHMARKS.md).
#
# Env:
#   RTC_BENCH_SECONDS  call length for non-cut profiles (default 15)
#   RTC_BENCH_SEED     seed of the loss and jitter draws (default 1)
#   RTC_BENCH_CLIP     the footage tom sends, a Y4M (default the fixture,
#                      tests/fixtures/clip_320x240.y4m at 15 fps); jerry's test pattern
#                      runs at its frame rate. `scripts/footage.sh` builds (and prints
#                      the path of) a 640x480@30 webcam clip, the size and rate issue 9's
#                      targets name
#   RTC_BENCH_VIDEO_SIZE  the size both peers send, WxH (default the footage's own;
#                      larger sizes are scaled up from it by the rtc-cli sender, and for
#                      Chromium, whose fake camera plays a file at its own size, by this
#                      script: whole multiples only, each pixel repeated)
#   RTC_BENCH_PEER     `chromium`: the anchor, two headless Chromium peers
#                      (tests/browser/peer.html in bench mode, fake devices playing the
#                      same footage and speech both ways) instead of rtc-cli, figures
#                      from getStats (W3C freezes and pauses; no PSNR, NCC or
#                      glass-to-glass)
#   RTC_BENCH_KEEP     keep the temp dir (logs, events, recordings, results.json)
#   RTC_CLI_BIN, RTC_NETLAB_BIN, RTC_RECORDING_CHECK  prebuilt binaries instead of
#                      `cargo build --release --workspace --bins` and
#                      `cargo build --example recording_check`
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { echo "bench-network: $*" >&2; }
die() {
    say "$*"
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (ip netns, /dev/net/tun)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed (stdlib only)"
command -v ip >/dev/null 2>&1 || die "ip (iproute2) is needed"

target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${RTC_CLI_BIN:-}" ] || [ -z "${RTC_NETLAB_BIN:-}" ] || [ -z "${RTC_RECORDING_CHECK:-}" ]; then
    # The calls run release binaries; the recording analysis is an example, which pulls
    # in the dev-dependencies (their features would rebuild much of a release tree), so
    # it is built in the dev profile (dependencies there are optimized, Cargo.toml).
    say "building rtc-cli and rtc-netlab in release and examples/recording_check (no-ops when up to date; a clean build takes minutes)"
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release --locked --workspace --bins >&2)
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --locked --example recording_check >&2)
fi
bin="${RTC_CLI_BIN:-$target/release/rtc-cli}"
netlab="${RTC_NETLAB_BIN:-$target/release/rtc-netlab}"
check="${RTC_RECORDING_CHECK:-$target/debug/examples/recording_check}"
for b in "$bin" "$netlab" "$check"; do
    [ -x "$b" ] || die "not an executable: $b"
done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/rtc-bench-network.XXXXXX")"
status=0
runner=""

# Stops the runner, which stops its children (rtc-netlab then removes the namespaces and
# kills whatever still runs inside them).
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
        kill -TERM "$runner" 2>/dev/null || true
        wait "$runner" 2>/dev/null || true
    fi
    "$netlab" sweep >/dev/null 2>&1 || true
    if [ "$status" -eq 0 ] && [ -z "${RTC_BENCH_KEEP:-}" ]; then
        rm -rf "$workdir"
    else
        say "logs, events and recordings kept in $workdir"
    fi
}
trap 'status=$?; cleanup' EXIT
trap 'status=130; exit 130' INT
trap 'status=143; exit 143' TERM

python3 - "$bin" "$netlab" "$check" "$root" "$workdir" "$@" <<'PY' &
"""Runs one call per profile and prints the table (stdlib only)."""

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(sys.argv[4], "scripts"))
import bench_common  # noqa: E402
from bench_common import events, parse_ts, percentile, wait_for  # noqa: E402

BIN, NETLAB, CHECK, ROOT, WORK = sys.argv[1:6]
SEED = os.environ.get("RTC_BENCH_SEED", "1")
SECONDS = int(os.environ.get("RTC_BENCH_SECONDS", "15"))
CLIP = os.environ.get("RTC_BENCH_CLIP") or os.path.join(ROOT, "tests/fixtures/clip_320x240.y4m")


def y4m_format(path):
    """(width, height, frames per second) from a Y4M's header line."""
    with open(path, "rb") as f:
        fields = f.readline().split()
    if not fields or fields[0] != b"YUV4MPEG2":
        raise SystemExit(f"RTC_BENCH_CLIP {path}: not a Y4M file")
    tags = {x[:1].decode(): x[1:].decode() for x in fields[1:]}
    num, den = (int(v) for v in tags["F"].split(":"))
    return int(tags["W"]), int(tags["H"]), num / den


CLIP_W, CLIP_H, CLIP_FPS = y4m_format(CLIP)
VIDEO_SIZE = os.environ.get("RTC_BENCH_VIDEO_SIZE", f"{CLIP_W}x{CLIP_H}")
PATTERN_FPS = str(max(1, round(CLIP_FPS)))
SPEECH = os.path.join(ROOT, "tests/fixtures/speech_48k_mono.wav")
ALL = ["clean", "delay100", "loss2-delay80", "loss5", "loss10", "jitter30",
       "delay100-jitter30", "bw300", "cut5", "cut10", "cut25"]
PROFILES = sys.argv[6:] or ALL
BOTTLENECK_KBPS = {"bw300": 300}
PEER = os.environ.get("RTC_BENCH_PEER", "rtc-cli")
CUTS = {"cut5": (5, 5), "cut10": (5, 10), "cut25": (5, 25)}  # (start s, length s)
G2G = re.compile(r"^(\S+)\s.*glass-to-glass.*latency_ms=([0-9.]+)(?:.*monotonic_ms=([0-9]+))?")

children = []
env_for = functools.partial(bench_common.env_for, WORK)


def log(msg):
    print(f"bench-network: {msg}", file=sys.stderr, flush=True)


def stop_all(*_):
    for p in children:
        if p.poll() is None:
            p.terminate()
    for p in children:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    sys.exit(143)


signal.signal(signal.SIGTERM, stop_all)
sys.stdout.reconfigure(line_buffering=True)


def spawn(name, argv, stdin=subprocess.DEVNULL, env=None):
    out = open(os.path.join(WORK, name + ".out"), "w")
    err = open(os.path.join(WORK, name + ".err"), "w")
    p = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env)
    children.append(p)
    return p


def in_ns(ns, name, args):
    """rtc-cli `args` as `name` inside namespace `ns` (ip netns exec execs the binary)."""
    return spawn(name, ["ip", "netns", "exec", ns, BIN] + args, env=env_for(name))


def stop(proc, seconds=5):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def frames_shown(log_path):
    """(wall time, glass-to-glass ms, monotonic s or None) of every decoded test-pattern
    frame in a -v log. The monotonic time spaces frames right when the wall clock steps
    (this VM's did, by 38-56 s, during calls); older binaries do not log it."""
    shown = []
    try:
        with open(log_path) as f:
            for line in f:
                m = G2G.search(line)
                if m:
                    mono = float(m.group(3)) / 1000.0 if m.group(3) else None
                    shown.append((parse_ts(m.group(1)), float(m.group(2)), mono))
    except FileNotFoundError:
        pass
    return shown


def freezes(times):
    """W3C freezeCount, totalFreezesDuration (s) and the longest gap (s) of display times:
    a gap is a freeze when longer than max(3 x mean, mean + 150 ms), the mean over the
    previous (up to 30) intervals."""
    count, total, longest, recent = 0, 0.0, 0.0, []
    for a, b in zip(times, times[1:]):
        gap = b - a
        longest = max(longest, gap)
        if recent:
            mean = sum(recent) / len(recent)
            if gap > max(3 * mean, mean + 0.150):
                count += 1
                total += gap
        recent = (recent + [gap])[-30:]
    return count, total, longest


def analyse(*args):
    out = subprocess.run([CHECK] + list(args), capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        log(f"recording_check {args}: {out.stderr.strip()[-300:]}")
        return {}
    return json.loads(out.stdout)


def last(evs, event):
    return next((e for e in reversed(evs) if e.get("event") == event), {})


def stalled_seconds(stats):
    """Seconds of the call (once-a-second stats, the last, cumulative one left out) in
    which the receiver's `frames_decoded` did not grow, from the first second it did
    (or all seconds if it never did). `video_fps_in` counts frames received, decodable
    or not, so it cannot tell."""
    decoded = [e.get("frames_decoded", 0) for e in stats[:-1]]
    grew = [b > a for a, b in zip([0] + decoded, decoded)]
    first = next((i for i, g in enumerate(grew) if g), 0)
    return sum(1 for g in grew[first:] if not g)


def adapt_seconds(stats, connected, rate_kbps):
    """Seconds from connected to the first stats second after which the sender's
    video+audio rate stays under `rate_kbps` until the end; None if it never does."""
    seconds = [e for e in stats if e["t"] >= connected][:-1]  # the last one is cumulative
    for i, e in enumerate(seconds):
        if all(s.get("video_kbps_out", 0) + s.get("audio_kbps_out", 0) <= rate_kbps
               for s in seconds[i:]):
            return e["t"] - connected
    return None


def start_lab(profile, tag, seconds):
    """rtc-netlab's media lab for `profile` and `serve` in its namespace a; returns
    (lab process, its ready line, lab start time, serve process, ws:// URL)."""
    lab = spawn(f"{tag}-netlab", [NETLAB, "media", "--profile", profile, "--seed", SEED,
                                  "--max-duration", str(seconds + 120)], stdin=subprocess.PIPE)
    ready = json.loads(wait_for(os.path.join(WORK, f"{tag}-netlab.out"), '"ready"', lab, 20))
    lab_t0 = time.time()
    serve = in_ns(ready["a"], f"{tag}-serve", ["serve", "--listen", f"{ready['a_signal']}:0"])
    line = wait_for(os.path.join(WORK, f"{tag}-serve.out"), "listening on ws://", serve, 15)
    url = next(w for w in line.split() if w.startswith("ws://"))
    return lab, ready, lab_t0, serve, url


def stop_lab(tag, lab, serve):
    """Stops `serve` and the lab; the lab's final counters."""
    stop(serve)
    lab.stdin.close()
    lab.wait(30)
    return json.loads(wait_for(os.path.join(WORK, f"{tag}-netlab.out"), '"final"', lab, 1))


def scaled_clip(size):
    """The footage at `size` (WxH, whole multiples of its own), each pixel repeated, as a
    Y4M in WORK for Chromium's fake camera; the footage itself at its own size."""
    width, height = (int(v) for v in size.split("x"))
    w0, h0 = CLIP_W, CLIP_H
    if (width, height) == (w0, h0):
        return CLIP
    with open(CLIP, "rb") as f:
        fields = f.readline().split()
        if width % w0 or height % h0 or width // w0 != height // h0:
            raise SystemExit(f"RTC_BENCH_VIDEO_SIZE {size}: not a whole multiple of {w0}x{h0}")
        k = width // w0
        out_path = os.path.join(WORK, f"clip_{size}.y4m")
        if os.path.exists(out_path):
            return out_path
        fields = [b"W%d" % width if x.startswith(b"W") else b"H%d" % height
                  if x.startswith(b"H") else x for x in fields]
        with open(out_path, "wb") as out:
            out.write(b" ".join(fields) + b"\n")
            planes = [(w0, h0), (w0 // 2, h0 // 2), (w0 // 2, h0 // 2)]
            while True:
                frame_header = f.readline()
                if not frame_header:
                    break
                out.write(frame_header)
                for pw, ph in planes:
                    for _ in range(ph):
                        row = f.read(pw)
                        wide = bytearray(pw * k)
                        for i in range(k):
                            wide[i::k] = row
                        out.write(bytes(wide) * k)
    return out_path


CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required", "--enable-logging=stderr", "--v=0",
    f"--use-file-for-fake-audio-capture={SPEECH}",
]
BENCH_STATS = re.compile(r'"peer: bench-stats: (\{.*\})", source')


def chromium(ns, tag, name, url, mode, seconds):
    """Headless Chromium in `ns` running tests/browser/peer.html in bench mode."""
    page = (f"file://{ROOT}/tests/browser/peer.html?server={url}&id={name}&peer=jerry"
            f"&mode={mode}&only=10.77.0.&bench={seconds}&size={VIDEO_SIZE}")
    profile_dir = os.path.join(WORK, f"{tag}-{name}-chromium")
    camera = f"--use-file-for-fake-video-capture={scaled_clip(VIDEO_SIZE)}"
    return spawn(f"{tag}-{name}", ["ip", "netns", "exec", ns, "chromium"] + CHROMIUM_FLAGS +
                 [camera, f"--user-data-dir={profile_dir}", page], env=env_for(f"{tag}-{name}"))


def bench_stats(path):
    """The page's once-a-second getStats lines, in order."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = BENCH_STATS.search(line)
                if m:
                    try:
                        out.append(json.loads(m.group(1)))
                    except json.JSONDecodeError:
                        pass
    except FileNotFoundError:
        pass
    return out


def run_chromium_profile(profile):
    """The profile's call between two headless Chromium peers: the same lab, server and
    footage/speech both ways, figures from getStats (no recordings, no clock stamps)."""
    tag = profile
    cut = CUTS.get(profile)
    seconds = max(SECONDS, cut[0] + cut[1] + 10) if cut else SECONDS
    lab, ready, lab_t0, serve, url = start_lab(profile, tag, seconds)
    jerry = chromium(ready["b"], tag, "jerry", url, "answer", seconds)
    wait_for(os.path.join(WORK, f"{tag}-jerry.err"), "peer: logged in as", jerry, 30)
    tom = chromium(ready["a"], tag, "tom", url, "call", seconds)
    ended = True
    try:
        wait_for(os.path.join(WORK, f"{tag}-tom.err"), "peer: (BENCH done|FAILED)", tom,
                 seconds + 60)
        wait_for(os.path.join(WORK, f"{tag}-jerry.err"), "peer: (BENCH done|FAILED)", jerry, 10)
    except RuntimeError as e:
        log(f"{profile}: {e}")
        ended = False
    stop(tom)
    stop(jerry)
    final = stop_lab(tag, lab, serve)
    st = {n: bench_stats(os.path.join(WORK, f"{tag}-{n}.err")) for n in ("tom", "jerry")}
    last_of = {n: (st[n][-1] if st[n] else {}) for n in st}
    failed = {n: "FAILED" in open(os.path.join(WORK, f"{tag}-{n}.err"), errors="replace").read()
              for n in st}
    r = {"profile": profile, "seconds": seconds, "peer": "chromium", "link": final,
         "tom_exit": None, "reconnecting": 0,
         "end": "hangup" if ended and not any(failed.values()) else "failed (see the page log)"}
    for sender, receiver, key in (("tom", "jerry", "tom->jerry"), ("jerry", "tom", "jerry->tom")):
        rx, tx = last_of[receiver], last_of[sender]
        decoded = [{"frames_decoded": s.get("frames_decoded", 0)} for s in st[receiver]]
        concealed = rx.get("concealed_samples")
        r[key] = {
            "sent": tx.get("frames_sent"), "shown": rx.get("frames_decoded"), "psnr": None,
            "ncc": None, "concealed": None if concealed is None else concealed // 960,
            "stalled_s": stalled_seconds(decoded),
            "freezes": rx.get("freeze_count") or 0,
            "freeze_s": rx.get("total_freezes_duration") or 0.0,
            "pauses": rx.get("pause_count") or 0,
            "pause_s": rx.get("total_pauses_duration") or 0.0,
            "longest_gap_s": None, "tail_gap_s": None, "g2g_p50": None, "g2g_p95": None,
        }
    if profile in BOTTLENECK_KBPS and st["tom"]:
        rates = [{"t": b["t"],
                  "video_kbps_out": 8 * (b.get("video_bytes_sent", 0) - a.get("video_bytes_sent", 0))
                  / 1000 / max(0.001, b["t"] - a["t"]),
                  "audio_kbps_out": 8 * (b.get("audio_bytes_sent", 0) - a.get("audio_bytes_sent", 0))
                  / 1000 / max(0.001, b["t"] - a["t"])}
                 for a, b in zip(st["tom"], st["tom"][1:])]
        start = st["tom"][0]["t"]
        r["adapt_s"] = adapt_seconds(rates + [{"t": float("inf")}], start, BOTTLENECK_KBPS[profile])
        r["kbps_out_mean"] = sum(x["video_kbps_out"] for x in rates) / max(1, len(rates))
    if cut:
        back = lab_t0 + cut[0] + cut[1]
        grew = [b["t"] for a, b in zip(st["tom"], st["tom"][1:])
                if b["t"] >= back and b.get("frames_decoded", 0) > a.get("frames_decoded", 0)]
        r["video_back_s"] = (grew[0] - back) if grew else None
    with open(os.path.join(WORK, f"{tag}-result.json"), "w") as f:
        json.dump(r, f, indent=1)
    return r


def run_profile(profile):
    tag = profile
    # rtc-cli appends to its log file: a profile run twice in one invocation would read
    # both calls' frames (and a monotonic stamp going back) as one call's.
    for name in ("tom", "jerry"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(WORK, f"{tag}-{name}.log"))
    cut = CUTS.get(profile)
    seconds = max(SECONDS, cut[0] + cut[1] + 10) if cut else SECONDS
    lab, ready, lab_t0, serve, url = start_lab(profile, tag, seconds)
    a, b = ready["a"], ready["b"]
    rec = {n: (os.path.join(WORK, f"{tag}-at-{n}.y4m"), os.path.join(WORK, f"{tag}-at-{n}.wav"))
           for n in ("tom", "jerry")}
    common = ["--headless", "-v", "--server", url]
    media = ["--mic", f"file:{SPEECH}", "--speaker", "none", "--video-size", VIDEO_SIZE]
    jerry = in_ns(b, f"{tag}-jerry", common + [
        "--id", "jerry", "--log-file", os.path.join(WORK, f"{tag}-jerry.log"), "listen",
        "--auto-accept", "--bind", ready["b_media"], "--camera", "test", "--fps", PATTERN_FPS,
        "--record-video", rec["jerry"][0], "--record-audio", rec["jerry"][1]] + media)
    wait_for(os.path.join(WORK, f"{tag}-jerry.out"), '"event":"logged_in"', jerry, 15)
    tom = in_ns(a, f"{tag}-tom", common + [
        "--id", "tom", "--log-file", os.path.join(WORK, f"{tag}-tom.log"), "call", "jerry",
        "--hangup-after", f"{seconds}s", "--bind", ready["a_media"], "--camera", f"file:{CLIP}",
        "--record-video", rec["tom"][0], "--record-audio", rec["tom"][1]] + media)
    try:
        tom.wait(seconds + 60)
    except subprocess.TimeoutExpired:
        log(f"{profile}: tom did not end within {seconds + 60} s; stopping it")
        stop(tom)
    try:
        wait_for(os.path.join(WORK, f"{tag}-jerry.out"), '"state":"ended"', jerry, 5)
    except RuntimeError:
        pass
    stop(jerry)
    final = stop_lab(tag, lab, serve)

    evs = {n: events(os.path.join(WORK, f"{tag}-{n}.out")) for n in ("tom", "jerry")}
    states = [e for e in evs["tom"] if e.get("event") == "state"]
    connected = next((e["t"] for e in states if e["state"] == "connected"), None)
    ended = last(evs["tom"], "state") if states and states[-1]["state"] == "ended" else {}
    r = {"profile": profile, "seconds": seconds, "tom_exit": tom.returncode,
         "end": ended.get("reason", "-"), "link": final,
         "reconnecting": sum(1 for e in states if e["state"] == "reconnecting"),
         "connected": connected is not None}
    stats = {n: [e for e in evs[n] if e.get("event") == "stats"] for n in evs}
    at_jerry = analyse("--video", rec["jerry"][0], "--source-video", CLIP,
                       "--audio", rec["jerry"][1], "--source-audio", SPEECH)
    at_tom = analyse("--video", rec["tom"][0], "--audio", rec["tom"][1], "--source-audio", SPEECH)
    shown = frames_shown(os.path.join(WORK, f"{tag}-tom.log"))
    times = [t for t, _, _ in shown]
    monotonic = [m for _, _, m in shown]
    count, total, longest = freezes(monotonic if None not in monotonic else times)
    end_t = ended.get("t")
    r["tom->jerry"] = {
        "sent": last(stats["tom"], "stats").get("frames_sent"),
        "shown": at_jerry.get("frames"), "psnr": at_jerry.get("psnr_median_db"),
        "psnr_size": at_jerry.get("size"),
        "ncc": at_jerry.get("audio_ncc"),
        "concealed": last(stats["jerry"], "stats").get("audio_concealed_frames"),
        "stalled_s": stalled_seconds(stats["jerry"]),
    }
    r["jerry->tom"] = {
        "sent": last(stats["jerry"], "stats").get("frames_sent"),
        "shown": at_tom.get("frames"), "ncc": at_tom.get("audio_ncc"),
        "concealed": last(stats["tom"], "stats").get("audio_concealed_frames"),
        "freezes": count, "freeze_s": total, "longest_gap_s": longest,
        "tail_gap_s": (end_t - times[-1]) if times and end_t else None,
        "g2g_p50": percentile([g for _, g, _ in shown], 50) if shown else None,
        "g2g_p95": percentile([g for _, g, _ in shown], 95) if shown else None,
    }
    if profile in BOTTLENECK_KBPS and connected:
        r["adapt_s"] = adapt_seconds(stats["tom"], connected, BOTTLENECK_KBPS[profile])
        r["kbps_out_mean"] = sum(e.get("video_kbps_out", 0) for e in stats["tom"][1:-1]) / max(
            1, len(stats["tom"]) - 2)
    if cut:
        back = lab_t0 + cut[0] + cut[1]
        after = [t for t in times if t >= back]
        r["video_back_s"] = (after[0] - back) if after else None
    with open(os.path.join(WORK, f"{tag}-result.json"), "w") as f:
        json.dump(r, f, indent=1)
    return r


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def psnr_cell(d):
    """The PSNR median, with the size it was measured at when that is not the footage's
    (the recording keeps its first frame's size, and the ladder may have started lower)."""
    cell = fmt(d["psnr"])
    if d.get("psnr_size") and d["psnr_size"] != f"{CLIP_W}x{CLIP_H}":
        cell += f" (at {d['psnr_size']})"
    return cell


def row(r):
    tj, jt = r["tom->jerry"], r["jerry->tom"]
    adapt = "-"
    if r["profile"] in BOTTLENECK_KBPS:
        adapt = "never" if r.get("adapt_s") is None else f"{r['adapt_s']:.1f} s"
        adapt += f" ({fmt(r.get('kbps_out_mean'), '.0f')} kbit/s)"
    end = r["end"] if r["tom_exit"] is None else f"{r['end']}, exit {r['tom_exit']}"
    if r["reconnecting"]:
        end += f", {r['reconnecting']}x reconnecting"
    if "video_back_s" in r:
        end += f", video back {fmt(r['video_back_s'])} s" if r["video_back_s"] is not None \
            else ", video never back"
    link = r["link"]
    drops = sum(link[d][k] for d in ("a_to_b", "b_to_a")
                for k in ("dropped_loss", "dropped_queue", "dropped_cut"))
    offered = 8 * link["a_to_b"]["bytes_in"] / 1000 / max(1.0, link["t"])
    return [r["profile"], f"{fmt(tj['shown'], 'd')}/{fmt(tj['sent'], 'd')}",
            f"{fmt(jt['shown'], 'd')}/{fmt(jt['sent'], 'd')}", str(tj["stalled_s"]),
            freeze_cell(jt),
            psnr_cell(tj), f"{fmt(tj['ncc'], '.2f')} / {fmt(jt['ncc'], '.2f')}",
            f"{fmt(tj['concealed'], 'd')} / {fmt(jt['concealed'], 'd')}",
            f"{fmt(jt['g2g_p50'], '.0f')} / {fmt(jt['g2g_p95'], '.0f')}", adapt, end,
            f"{link['a_to_b']['packets_in'] + link['b_to_a']['packets_in']}/{drops}, "
            f"{offered:.0f}"]


def freeze_cell(d):
    """`count, total (max gap)`, and the frameless end of the call when over 1 s (a
    call that ends inside a cut shows no freeze between frames)."""
    cell = f"{d['freezes']}, {d['freeze_s']:.1f} s"
    if d["longest_gap_s"] is not None:
        cell += f" (max gap {d['longest_gap_s']:.1f} s)"
    if d.get("pauses"):
        cell += f"; {d['pauses']} pause(s) (gaps over 5 s), {d['pause_s']:.1f} s"
    if d["tail_gap_s"] is not None and d["tail_gap_s"] > 1.0:
        cell += f"; none in the last {d['tail_gap_s']:.1f} s"
    return cell


HEADER = ["profile", "footage shown/sent (tom->jerry)", "pattern shown/sent (jerry->tom)",
          "footage: s without video",
          "freezes (jerry->tom)", "PSNR median dB", "audio NCC (->jerry / ->tom)",
          "concealed (jerry / tom)", "g2g p50/p95 ms", "bitrate adapt", "end",
          "link packets/dropped, tom->jerry kbit/s offered"]


def main():
    if PEER not in ("rtc-cli", "chromium"):
        log(f"RTC_BENCH_PEER must be rtc-cli or chromium, got {PEER!r}")
        return 2
    log(f"{len(PROFILES)} profile(s), peers {PEER}, seed {SEED}, footage {os.path.basename(CLIP)} sent at {VIDEO_SIZE}, calls of {SECONDS} s (cuts: until 10 s "
        f"after the cut), work dir {WORK}")
    results = []
    for profile in PROFILES:
        t = time.time()
        log(f"{profile}: calling")
        try:
            r = run_chromium_profile(profile) if PEER == "chromium" else run_profile(profile)
        except RuntimeError as e:
            log(f"{profile}: {e}")
            for p in children:
                stop(p)
            continue
        results.append(r)
        cells = row(r)
        log(f"{profile}: done in {time.time() - t:.0f} s: " + "; ".join(
            f"{h}: {c}" for h, c in zip(HEADER[1:], cells[1:])))
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    if PEER == "chromium":
        print("\npeers: two headless Chromium (tests/browser/peer.html, bench mode), the "
              "footage both ways, figures from getStats: 'pattern' is the footage too, "
              "freezes are Chromium's freezeCount/totalFreezesDuration (gaps over 5 s are W3C "
              "pauses: pauseCount/totalPausesDuration), concealed is "
              "concealedSamples / 960 (20 ms frames); no PSNR, NCC or glass-to-glass")
    print("\n| " + " | ".join(HEADER) + " |")
    print("|" + " --- |" * len(HEADER))
    for r in results:
        print("| " + " | ".join(row(r)) + " |")
    return 0 if len(results) == len(PROFILES) else 1


sys.exit(main())
PY
runner=$!
wait "$runner" || status=$?
runner=""
exit "$status"
