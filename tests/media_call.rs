//! Real media between two `rtc-cli` processes through a local `serve`, all on
//! 127.0.0.1: the bundled footage and speech cross both ways in one call and what
//! arrives is checked against the source (frames arriving, PSNR, audio correlation);
//! mute and camera off stop the media; a call works inside a loopback-only network
//! namespace.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::audio_match::match_windows;
use common::media_check::{best_match_psnrs, read_wav_48k, read_y4m};
use common::process::{Home, Proc, serve};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Sends the clip and the speech, records what arrives.
fn file_media(camera: &Path, mic: &Path, video: &Path, audio: &Path) -> Vec<String> {
    [
        "--camera".to_owned(),
        format!("file:{}", camera.display()),
        "--mic".to_owned(),
        format!("file:{}", mic.display()),
        "--video-size".to_owned(),
        "320x240".to_owned(),
        "--speaker".to_owned(),
        "none".to_owned(),
        "--bind".to_owned(),
        "127.0.0.1".to_owned(),
        "--record-video".to_owned(),
        video.display().to_string(),
        "--record-audio".to_owned(),
        audio.display().to_string(),
    ]
    .into()
}

fn check_direction(what: &str, sent: u64, video: &Path, audio: &Path) {
    let source_frames = read_y4m(&fixture("clip_320x240.y4m"));
    let recorded = read_y4m(video);
    let arrived = recorded.len() as f64 / sent as f64;
    eprintln!(
        "{what}: {} of {sent} frames arrived ({:.1} %)",
        recorded.len(),
        arrived * 100.0
    );
    assert!(
        arrived >= 0.9,
        "{what}: only {} of {sent} frames arrived",
        recorded.len()
    );
    let psnrs = best_match_psnrs(&recorded, &source_frames);
    let worst = psnrs.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = psnrs.iter().sum::<f64>() / psnrs.len() as f64;
    eprintln!("{what}: PSNR worst {worst:.1} dB, mean {mean:.1} dB");
    assert!(
        worst >= 32.0,
        "{what}: a frame has PSNR {worst:.1} dB < 32 dB"
    );

    let speech = read_wav_48k(&fixture("speech_48k_mono.wav"));
    let received = read_wav_48k(audio);
    // 1 s windows; speech sits around -20 dBFS RMS, so 0.01 skips the pauses.
    let matched = match_windows(&speech, &received, 48_000, 0.01);
    let ncc = matched.weighted_ncc().unwrap_or(0.0);
    eprintln!("{what}: audio {}", matched.describe(48_000));
    assert!(
        matched.windows.len() >= 4,
        "{what}: too little audio arrived: {matched:?}"
    );
    assert!(
        ncc >= 0.8,
        "{what}: NCC {ncc:.3} < 0.8: {}",
        matched.describe(48_000)
    );
}

#[test]
fn footage_and_speech_cross_both_ways_in_one_call() {
    let home = Home::new();
    let dir = home.dir.path().to_owned();
    let (_server, url) = serve(&home, &[]);
    let (clip, speech) = (fixture("clip_320x240.y4m"), fixture("speech_48k_mono.wav"));
    let (jv, ja) = (dir.join("at-jerry.y4m"), dir.join("at-jerry.wav"));
    let (tv, ta) = (dir.join("at-tom.y4m"), dir.join("at-tom.wav"));

    let mut listen = vec![
        "--headless",
        "--server",
        &url,
        "--id",
        "jerry",
        "listen",
        "--auto-accept",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    listen.extend(file_media(&clip, &speech, &jv, &ja));
    let jerry = home.spawn_owned(&listen);
    jerry.event(&[("event", "logged_in")]);

    let mut call = vec![
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
        "--hangup-after",
        "9s",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    call.extend(file_media(&clip, &speech, &tv, &ta));
    let tom = home.spawn_owned(&call);
    tom.event(&[("event", "state"), ("state", "connected")]);
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    let tom_sent = frames_sent_before_end(&tom);
    assert_eq!(tom.wait_exit(), 0);
    let ended = jerry.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "remote-hangup");
    let jerry_sent = jerry.last_seen(&[("event", "stats")])["frames_sent"]
        .as_u64()
        .unwrap();
    drop(jerry);

    check_direction("tom → jerry", tom_sent, &jv, &ja);
    check_direction("jerry → tom", jerry_sent, &tv, &ta);
}

fn frames_sent_before_end(p: &Proc) -> u64 {
    p.last_seen(&[("event", "stats")])["frames_sent"]
        .as_u64()
        .unwrap()
}

#[test]
fn mute_and_camera_off_stop_the_media_and_the_peer_sees_it() {
    use std::io::Write;
    let home = Home::with_media(&[
        "--camera",
        "test",
        "--video-size",
        "160x120",
        "--fps",
        "15",
        "--mic",
        "tone",
        "--speaker",
        "none",
        "--bind",
        "127.0.0.1",
    ]);
    let (_server, url) = serve(&home, &[]);
    let jerry = home.spawn(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "jerry",
        "listen",
        "--auto-accept",
    ]);
    jerry.event(&[("event", "logged_in")]);
    let mut tom = home.spawn(&[
        "--headless",
        "--server",
        &url,
        "--id",
        "tom",
        "call",
        "jerry",
    ]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    // Media flows: jerry decodes video and hears audio.
    jerry.event_where("video and audio arriving", |v| {
        v["event"] == "stats"
            && v["video_fps_in"].as_f64().unwrap() > 5.0
            && v["audio_kbps_in"].as_f64().unwrap() > 5.0
    });

    let stdin = tom.child.stdin.as_mut().unwrap();
    writeln!(stdin, "mute").unwrap();
    writeln!(stdin, "camera off").unwrap();
    jerry.event_where("peer muted with camera off", |v| {
        v["event"] == "peer_media" && v["muted"] == true && v["camera"] == false
    });
    // Within a few seconds nothing arrives any more.
    jerry.event_where("media stopped", |v| {
        v["event"] == "stats"
            && v["video_fps_in"].as_f64().unwrap() == 0.0
            && v["audio_kbps_in"].as_f64().unwrap() == 0.0
    });

    let stdin = tom.child.stdin.as_mut().unwrap();
    writeln!(stdin, "unmute").unwrap();
    writeln!(stdin, "camera on").unwrap();
    jerry.event_where("media resumed", |v| {
        v["event"] == "stats"
            && v["video_fps_in"].as_f64().unwrap() > 5.0
            && v["audio_kbps_in"].as_f64().unwrap() > 5.0
    });
    let stdin = tom.child.stdin.as_mut().unwrap();
    writeln!(stdin, "hangup").unwrap();
    assert_eq!(tom.wait_exit(), 0);
}

#[test]
fn a_call_works_in_a_loopback_only_network_namespace() {
    // `unshare -n` gives a namespace with only `lo`: no multicast interface, so mDNS
    // must be off, and no --bind: the default must find the loopback path.
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "skipped: cannot create a network namespace here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: unshare is not available: {e}");
            return;
        }
    }
    let home = Home::new();
    let bin = common::process::BIN;
    let cfg = home.config();
    let script = format!(
        r#"set -e
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
ip link set lo up
export RTC_CLI_CONFIG='{cfg}' HOME='{home}'
media="--camera test --video-size 160x120 --fps 10 --mic tone --speaker none"
'{bin}' serve --listen 127.0.0.1:18787 > '{home}/serve.out' 2>&1 &
sleep 0.5
'{bin}' --headless --server ws://127.0.0.1:18787 --id jerry listen --auto-accept $media > '{home}/jerry.out' 2>&1 &
sleep 0.5
'{bin}' --headless --server ws://127.0.0.1:18787 --id tom call jerry --hangup-after 1s $media
"#,
        cfg = cfg.display(),
        home = home.dir.path().display(),
    );
    let out = Command::new("unshare")
        .args(["-n", "--kill-child", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "call in the namespace failed ({:?}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""state":"connected""#), "{stdout}");
}

/// Whether this machine can make a network namespace and filter inside it with nft.
fn namespace_with_nft() -> Result<(), String> {
    let out = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && nft add table inet probe && nft delete table inet probe",
        ])
        .output()
        .map_err(|e| format!("unshare is not available: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

#[test]
fn cutting_udp_mid_call_shows_reconnecting_and_an_ice_restart_brings_it_back() {
    if let Err(why) = namespace_with_nft() {
        eprintln!("skipped: needs a network namespace with nftables: {why}");
        return;
    }
    // Inside a private namespace only: drop UDP (the media) while the signaling TCP
    // connection stays up, until the caller shows `reconnecting`; then let UDP through
    // again and expect the ICE restart to bring the call back to `connected`.
    let home = Home::new();
    let dir = home.dir.path().display().to_string();
    let script = format!(
        r#"set -e
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
ip link set lo up
export RTC_CLI_CONFIG='{dir}/config.toml' HOME='{dir}'
media="--camera test --video-size 160x120 --fps 10 --mic tone --speaker none"
wait_for() {{
    i=0
    while [ "$(grep -c "$1" '{dir}/tom.out')" -lt "$2" ]; do
        i=$((i+1)); [ $i -gt 400 ] && {{ echo "timed out waiting for $2 x $1"; cat '{dir}/tom.out'; exit 3; }}
        sleep 0.1
    done
}}
'{bin}' serve --listen 127.0.0.1:18788 > '{dir}/serve.out' 2>&1 &
sleep 0.5
'{bin}' --headless --server ws://127.0.0.1:18788 --id jerry listen --auto-accept $media > '{dir}/jerry.out' 2>&1 &
sleep 0.5
'{bin}' --headless --server ws://127.0.0.1:18788 --id tom call jerry $media > '{dir}/tom.out' 2>'{dir}/tom.err' &
tom=$!
wait_for '"state":"connected"' 1
nft add table inet cut
nft add chain inet cut in '{{ type filter hook input priority 0; }}'
nft add rule inet cut in meta l4proto udp drop
wait_for '"state":"reconnecting"' 1
nft delete table inet cut
wait_for '"state":"connected"' 2
kill -TERM $tom
wait $tom
echo "tom exited $?"
"#,
        bin = common::process::BIN,
    );
    let out = Command::new("unshare")
        .args(["-n", "--kill-child", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tom = std::fs::read_to_string(home.dir.path().join("tom.out")).unwrap_or_default();
    assert!(
        out.status.success() && stdout.contains("tom exited 0"),
        "{stdout}\n{}\n{tom}",
        String::from_utf8_lossy(&out.stderr)
    );
    let states: Vec<&str> = tom
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "state")
        .map(|v| v["state"].as_str().unwrap_or("").to_owned())
        .map(|s| match s.as_str() {
            "connected" => "connected",
            "reconnecting" => "reconnecting",
            "ended" => "ended",
            _ => "setup",
        })
        .collect();
    let tail: Vec<&str> = states
        .iter()
        .copied()
        .skip_while(|s| *s == "setup")
        .collect();
    assert_eq!(
        tail,
        ["connected", "reconnecting", "connected", "ended"],
        "{tom}"
    );
}
