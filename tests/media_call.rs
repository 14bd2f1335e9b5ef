//! Real media between two `rtc-cli` processes through a local `serve`, all on
//! 127.0.0.1: the bundled footage and speech cross both ways in one call and what
//! arrives is checked against the source (frames arriving, PSNR, audio correlation);
//! mute and camera off stop the media; a call works inside a loopback-only network
//! namespace.

mod common;

use std::path::Path;

use common::media_check::{CLIP, SPEECH, check_received, fixture};
use common::netns;
use common::process::{Home, LOOPBACK_ONLY, Proc, TONE_NO_SPEAKER, call_args, test_pattern};

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

#[test]
fn footage_and_speech_cross_both_ways_in_one_call() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let (clip, speech) = (fixture(CLIP), fixture(SPEECH));
    let (jv, ja) = (home.path("at-jerry.y4m"), home.path("at-jerry.wav"));
    let (tv, ta) = (home.path("at-tom.y4m"), home.path("at-tom.wav"));

    let jerry_media = file_media(&clip, &speech, &jv, &ja);
    let mut listen = vec!["--auto-accept"];
    listen.extend(jerry_media.iter().map(String::as_str));
    let jerry = home.listener(&url, "jerry", &listen);

    let tom_media = file_media(&clip, &speech, &tv, &ta);
    let mut call = vec!["--hangup-after", "9s"];
    call.extend(tom_media.iter().map(String::as_str));
    let tom = home.caller(&url, "tom", "jerry", &call);
    tom.event(&[("event", "state"), ("state", "connected")]);
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    let tom_sent = frames_sent_before_end(&tom);
    check_playout("at tom", &tom.last_seen(&[("event", "stats")]));
    assert_eq!(tom.wait_exit(), 0);
    let ended = jerry.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(ended["reason"], "remote-hangup");
    let jerry_sent = frames_sent_before_end(&jerry);
    drop(jerry);

    check_received("tom → jerry", tom_sent, &jv, &ja);
    check_received("jerry → tom", jerry_sent, &tv, &ta);
}

/// The receiver's jitter buffer kept a delay inside its 20-200 ms range and, on a
/// loss-free loopback, concealed and dropped little of the ~9 s (450 frames) of audio.
fn check_playout(what: &str, stats: &serde_json::Value) {
    let delay = stats["audio_playout_delay_ms"].as_f64().unwrap();
    let concealed = stats["audio_concealed_frames"].as_u64().unwrap();
    let dropped = stats["audio_dropped_packets"].as_u64().unwrap();
    eprintln!(
        "{what}: playout delay {delay} ms, {concealed} frames concealed, {dropped} packets dropped"
    );
    assert!((20.0..=200.0).contains(&delay), "{what}: {stats}");
    assert!(concealed <= 45 && dropped <= 45, "{what}: {stats}");
}

/// The `frames_sent` of the last stats event `p` printed.
fn frames_sent_before_end(p: &Proc) -> u64 {
    p.last_seen(&[("event", "stats")])["frames_sent"]
        .as_u64()
        .unwrap()
}

/// Whether a stats event shows video above 5 fps and audio above 5 kbps arriving.
fn media_arriving(v: &serde_json::Value) -> bool {
    v["event"] == "stats"
        && v["video_fps_in"].as_f64().unwrap() > 5.0
        && v["audio_kbps_in"].as_f64().unwrap() > 5.0
}

#[test]
fn mute_and_camera_off_stop_the_media_and_the_peer_sees_it() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new()
        .with_media(&test_pattern("160x120", "15"))
        .with_media(&TONE_NO_SPEAKER)
        .with_media(&LOOPBACK_ONLY);
    let (_server, url) = home.serve(&[]);
    let jerry = home.listener(&url, "jerry", &["--auto-accept"]);
    let mut tom = home.caller(&url, "tom", "jerry", &[]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    // Media flows: jerry decodes video and hears audio.
    jerry.event_where("video and audio arriving", media_arriving);

    tom.send("mute");
    tom.send("camera off");
    jerry.event_where("peer muted with camera off", |v| {
        v["event"] == "peer_media" && v["muted"] == true && v["camera"] == false
    });
    // Within a few seconds nothing arrives any more.
    jerry.event_where("media stopped", |v| {
        v["event"] == "stats"
            && v["video_fps_in"].as_f64().unwrap() == 0.0
            && v["audio_kbps_in"].as_f64().unwrap() == 0.0
    });

    tom.send("unmute");
    tom.send("camera on");
    jerry.event_where("media resumed", media_arriving);
    tom.send("hangup");
    assert_eq!(tom.wait_exit(), 0);
}

/// A home for calls in a namespace: light media and no --bind, the default must find
/// `lo`.
fn namespace_home() -> Home {
    Home::new()
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&TONE_NO_SPEAKER)
}

#[test]
fn a_call_works_in_a_loopback_only_network_namespace() {
    let _turn = common::one_call_at_a_time();
    // `unshare -n` gives a namespace with only `lo`: no multicast interface, so mDNS
    // must be off, and no --bind: the default must find the loopback path.
    if let Err(why) = netns::available("true") {
        eprintln!("skipped: cannot create a network namespace here: {why}");
        return;
    }
    let home = namespace_home();
    let (setup, url) = netns::serve_and_listener(&home, 18787, "jerry");
    let tom = home.shell_command(
        "tom",
        &call_args(&url, "tom", "jerry", &["--hangup-after", "1s"]),
    );
    let out = netns::run(&format!("{setup}{tom}\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "call in the namespace failed ({:?}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""state":"connected""#), "{stdout}");
}

/// Runs tom calling jerry in a private namespace, cuts UDP (the media) with nftables
/// once connected, keeps it cut for `hold_secs` after tom shows `reconnecting`, then lets
/// it through. Returns tom's stdout and how long after the restore tom was `connected`
/// again (seconds). The signaling TCP connection stays up throughout. `None` when the
/// machine cannot make such a namespace (the reason is printed).
fn call_through_a_udp_cut(port: u16, hold_secs: u32) -> Option<(String, f64)> {
    let nft_probe = "ip link set lo up && nft add table inet probe && nft delete table inet probe";
    if let Err(why) = netns::available(nft_probe) {
        eprintln!("skipped: needs a network namespace with nftables: {why}");
        return None;
    }
    let home = namespace_home();
    let (setup, url) = netns::serve_and_listener(&home, port, "jerry");
    let tom = home.shell_command("tom", &call_args(&url, "tom", "jerry", &[]));
    let dir = home.dir.path().display().to_string();
    let body = format!(
        r#"{setup}wait_for() {{
    i=0
    while [ "$(grep -c "$1" '{dir}/tom.out')" -lt "$2" ]; do
        i=$((i+1)); [ $i -gt 400 ] && {{ echo "timed out waiting for $2 x $1"; cat '{dir}/tom.out'; exit 3; }}
        sleep 0.1
    done
}}
{tom} > '{dir}/tom.out' 2>'{dir}/tom.err' &
tom=$!
wait_for '"state":"connected"' 1
nft add table inet cut
nft add chain inet cut in '{{ type filter hook input priority 0; }}'
nft add rule inet cut in meta l4proto udp drop
wait_for '"state":"reconnecting"' 1
sleep {hold_secs}
nft delete table inet cut
echo "restored at $(date +%s.%N)"
wait_for '"state":"connected"' 2
echo "connected at $(date +%s.%N)"
kill -TERM $tom
wait $tom
echo "tom exited $?"
"#
    );
    let out = netns::run(&body);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tom = std::fs::read_to_string(home.dir.path().join("tom.out")).unwrap_or_default();
    assert!(
        out.status.success() && stdout.contains("tom exited 0"),
        "{stdout}\n{}\n{tom}\ntom's log:\n{}\njerry's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        home.log_tail("tom"),
        home.log_tail("jerry"),
    );
    let at = |what: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what:?} line in {stdout}"))
    };
    Some((tom, at("connected at") - at("restored at")))
}

/// Tom's call states after setup, folded to connected / reconnecting / ended.
fn states_after_setup(tom: &str) -> Vec<String> {
    tom.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "state")
        .map(|v| v["state"].as_str().unwrap_or("").to_owned())
        .skip_while(|s| !matches!(s.as_str(), "connected" | "reconnecting" | "ended"))
        .collect()
}

#[test]
fn cutting_udp_mid_call_shows_reconnecting_and_an_ice_restart_brings_it_back() {
    let _turn = common::one_call_at_a_time();
    let Some((tom, _)) = call_through_a_udp_cut(18788, 0) else {
        return;
    };
    assert_eq!(
        states_after_setup(&tom),
        ["connected", "reconnecting", "connected", "ended"],
        "{tom}"
    );
}

#[test]
fn a_cut_longer_than_one_ice_restart_is_survived_by_restarting_again() {
    let _turn = common::one_call_at_a_time();
    // 17 s: longer than one restart's 15 s connect deadline, which used to end the call
    // `ice-failed`; within the 30 s reconnect timeout, restarts keep coming.
    let Some((tom, back_after)) = call_through_a_udp_cut(18789, 17) else {
        return;
    };
    assert_eq!(
        states_after_setup(&tom),
        ["connected", "reconnecting", "connected", "ended"],
        "{tom}"
    );
    eprintln!("connected again {back_after:.2} s after UDP was let through");
    // Restarts come every 3 s at most; generous for a loaded machine.
    assert!(back_after < 5.0, "{back_after} s to reconnect:\n{tom}");
}
