//! Calls through the network lab's impaired link (rtc-netlab): two `rtc-cli` processes
//! in two network namespaces, media on a user-space TUN link the test impairs, signaling
//! on a clean veth. Short versions of issue 9's profiles; scripts/bench-network.sh runs
//! the long ones. Skipped (with the reason printed) where namespaces or /dev/net/tun are
//! not available.

mod common;

use std::path::Path;
use std::time::Duration;

use common::media_check::{CLIP, SPEECH, file_source, read_y4m};
use common::netlab::{LabCall, media_lab};
use common::process::{Home, Proc, TONE_NO_SPEAKER, test_pattern};
use rtc_netlab::{CounterSnapshot, Impairment, Profile};

/// A home whose calls send the bundled footage and speech, play nothing, and wait long
/// enough for a call through a cut.
/// Both peers send the footage clip (scaled to `video_size`, WxH) and the speech.
fn footage_home(video_size: &str) -> Home {
    let camera = file_source(CLIP);
    let mic = file_source(SPEECH);
    Home::new()
        .with_media(&[
            "--camera",
            &camera,
            "--video-size",
            video_size,
            "--mic",
            &mic,
        ])
        .with_media(&["--speaker", "none"])
        .with_wait(Duration::from_secs(30))
}

/// The `frames_sent` of the last stats event `p` printed.
fn frames_sent(p: &Proc) -> u64 {
    p.last_seen(&[("event", "stats")])["frames_sent"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_clean_call_crosses_the_tun_link_and_most_frames_are_decoded() {
    let _turn = common::one_call_at_a_time();
    let Some(c) = footage_call(Profile::Clean) else {
        return;
    };
    // Media took the TUN link: every packet of the call's video and audio went through
    // the forwarder (signaling has its own veth, so these are media and ICE/DTLS only).
    let (ab, ba) = c.link;
    eprintln!("tun link a→b: {ab}; b→a: {ba}");
    assert!(
        ab.packets_out > 300 && ba.packets_out > 300,
        "a→b {ab}; b→a {ba}"
    );
    assert_eq!(
        ab.packets_in,
        ab.packets_out + ab.dropped_loss + ab.dropped_queue + ab.dropped_cut
    );
    c.assert_shown_at_least(80);
    // Nothing is lost, so Opus spends nothing on in-band FEC.
    assert_eq!(c.tom["audio_fec_planned_percent"], 0, "{}", c.tom);
}

/// A full cut of the media link: ICE restarts keep being tried (with backoff, until the
/// reconnect timeout), so the call shows `reconnecting` while the link is down, is
/// `connected` again after it returns, video flows again, and the call ends normally.
/// scripts/bench-network.sh measures the 10 s and 25 s cuts and how soon video is back.
#[test]
fn a_call_survives_a_5_s_cut_of_the_media_link() {
    let _turn = common::one_call_at_a_time();
    let Some(lab) = media_lab(Impairment::default(), 1) else {
        return;
    };
    let home = footage_home("320x240");
    let call = LabCall::start(lab, &home);
    let jerry = call.listener_in_b(&home, "jerry", &["--auto-accept"]);
    let tom = call.caller_in_a(&home, "tom", "jerry", &["--hangup-after", "16s"]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    std::thread::sleep(Duration::from_secs(2));
    call.lab.cut_for(Duration::from_secs(5));
    tom.event(&[("event", "state"), ("state", "reconnecting")]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    tom.event_where("video arriving again", |v| {
        v["event"] == "stats" && v["video_fps_in"].as_f64().unwrap_or(0.0) > 5.0
    });
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    assert_eq!(tom.wait_exit(), 0);
    drop(jerry);
    let cut = call.lab.a_to_b().dropped_cut;
    assert!(cut > 100, "the cut dropped only {cut} packets a→b");
}

/// What a [`footage_call`] measured.
struct FootageCall {
    /// Frames tom sent.
    sent: u64,
    /// Frames jerry recorded (every decoded frame is recorded).
    shown: u64,
    /// Jerry's and tom's last stats events.
    jerry: serde_json::Value,
    tom: serde_json::Value,
    /// The TUN link's counters after the call: (a→b, b→a).
    link: (CounterSnapshot, CounterSnapshot),
}

impl FootageCall {
    /// At least `percent` % of the frames sent were shown.
    fn assert_shown_at_least(&self, percent: u64) {
        let (shown, sent) = (self.shown, self.sent);
        assert!(shown * 100 >= sent * percent, "{shown} of {sent} frames");
    }

    /// Jerry's jitter buffer filled gaps (reordered or retransmitted packets).
    fn assert_packets_recovered(&self) {
        let recovered = self.jerry["video_packets_recovered"].as_u64().unwrap();
        assert!(recovered > 0, "{}", self.jerry);
    }
}

/// Runs an 8 s call of the footage from tom (in a) to jerry (in b) over `profile`'s
/// link.
fn footage_call(profile: Profile) -> Option<FootageCall> {
    footage_call_at(profile, "320x240")
}

/// [`footage_call`] with both peers sending at `video_size` (WxH).
fn footage_call_at(profile: Profile, video_size: &str) -> Option<FootageCall> {
    let lab = media_lab(profile.impairment(), 1)?;
    let home = footage_home(video_size);
    let call = LabCall::start(lab, &home);
    let recording = home.path("at-jerry.y4m").display().to_string();
    let jerry = call.listener_in_b(
        &home,
        "jerry",
        &["--auto-accept", "--record-video", &recording],
    );
    let tom = call.caller_in_a(&home, "tom", "jerry", &["--hangup-after", "8s"]);
    tom.event(&[("event", "state"), ("state", "connected")]);
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    let sent = frames_sent(&tom);
    let tom_stats = tom.last_seen(&[("event", "stats")]);
    assert_eq!(tom.wait_exit(), 0);
    jerry.event(&[("event", "state"), ("state", "ended")]);
    let jerry_stats = jerry.last_seen(&[("event", "stats")]);
    drop(jerry);
    let shown = read_y4m(Path::new(&recording)).len() as u64;
    eprintln!(
        "{}: {shown} of {sent} frames shown at jerry; {jerry_stats}",
        profile.name()
    );
    Some(FootageCall {
        sent,
        shown,
        jerry: jerry_stats,
        tom: tom_stats,
        link: (call.lab.a_to_b(), call.lab.b_to_a()),
    })
}

/// 100 ms ± 30 ms of independent per-packet delay reorders the packets of almost every
/// frame: before the video jitter buffer, not one frame was decoded (issue 9's table).
/// Every packet arrives, so nearly every frame must be shown, and no keyframe is asked
/// for: the first one is neither sent before jerry's DTLS handshake is done (its packets
/// could overtake the handshake's last flight and be dropped) nor decoded without the
/// parameter sets that reordering delayed.
#[test]
fn jitter_that_reorders_packets_still_shows_nearly_every_frame() {
    let _turn = common::one_call_at_a_time();
    let Some(c) = footage_call(Profile::Delay100Jitter30) else {
        return;
    };
    c.assert_shown_at_least(90);
    c.assert_packets_recovered();
    assert_eq!(c.jerry["pli_sent"], 0, "{}", c.jerry);
    assert_eq!(c.jerry["video_frames_skipped"], 0, "{}", c.jerry);
    assert_eq!(c.tom["keyframes_sent"], 1, "{}", c.tom);
}

/// 5 % random loss both ways: NACKs and retransmissions repair the video (before: about
/// 40 % of the frames were shown), the audio's lost packets come back from the RED
/// copies later packets carry (two rtc-cli peers negotiate RED first), and Opus plans
/// its in-band FEC for the loss reported.
#[test]
fn five_percent_loss_is_repaired_by_retransmissions_and_red() {
    let _turn = common::one_call_at_a_time();
    let Some(c) = footage_call(Profile::Loss5) else {
        return;
    };
    c.assert_shown_at_least(85);
    c.assert_packets_recovered();
    let resent = c.tom["retransmissions_sent"].as_u64().unwrap();
    assert!(resent > 0, "{}", c.tom);
    // 8 s of audio is 400 packets: about 20 lost, each (but the call's last) carried
    // again by the next packet.
    let red = c.jerry["audio_red_recovered_frames"].as_u64().unwrap();
    assert!(red > 0, "{}", c.jerry);
    // Tom's Opus codes in-band FEC for about the loss jerry's feedback reports.
    let planned = c.tom["audio_fec_planned_percent"].as_u64().unwrap();
    assert!((2..=12).contains(&planned), "{}", c.tom);
}

/// A 300 kbit/s bottleneck with a 100 ms queue, the bandwidth GCC starts at, and 640x480
/// sent (the ladder holds 480x360, whose keyframes are 6.3 kB against the 3.75 kB the
/// queue holds): the call's first keyframe crosses it as packet pairs whose spacing gives
/// the link's rate, the estimate is held under it, and the pacer holds video to it, so
/// keyframes queue in the sender, where audio passes them, not in the bottleneck.
/// Before the packet pairs, GCC climbed to 345-361 kbit/s 2-3 s into the call and the
/// queue dropped 38-67 packets in the first 8 s; before the pacer held video to the link,
/// each keyframe overflowed the queue at this size (17-39 drops and 1-5 audio frames
/// concealed in 15 s calls, BENCHMARKS); now 0-3 drops. (Audio concealment is left to
/// the benchmark: in a debug build on a loaded machine, CPU starvation conceals frames
/// too.)
#[test]
fn a_narrow_link_is_measured_from_packet_pairs_and_not_overrun() {
    let _turn = common::one_call_at_a_time();
    let Some(c) = footage_call_at(Profile::Bw300, "640x480") else {
        return;
    };
    c.assert_shown_at_least(80);
    let estimate = c.tom["available_bandwidth_kbps"].as_f64().unwrap();
    assert!(estimate < 300.0, "{}", c.tom);
    let (ab, _) = c.link;
    assert!(ab.dropped_queue < 10, "a→b {ab}");
}

/// Every DTLS datagram dropped for the lab's first 10 s: rtc-dtls gives up after its 7
/// retransmissions (about 8 s) before the call ever connected. Instead of
/// ending `ice-failed`, the call starts over with a fresh PeerConnection (a notice says
/// so), whose handshake completes once DTLS passes again, and the call ends normally.
/// Before: 3 of 100 setups under 10 % loss ended this way (BENCHMARKS).
#[test]
fn a_dtls_handshake_that_gives_up_is_retried_with_a_fresh_connection() {
    let _turn = common::one_call_at_a_time();
    let blackout = Impairment {
        dtls_blackout: Some(Duration::from_secs(10)),
        ..Impairment::default()
    };
    let Some(lab) = media_lab(blackout, 1) else {
        return;
    };
    let home = Home::new()
        .with_media(&test_pattern("160x120", "10"))
        .with_media(&TONE_NO_SPEAKER)
        .with_wait(Duration::from_secs(40));
    let call = LabCall::start(lab, &home);
    let jerry = call.listener_in_b(&home, "jerry", &["--auto-accept"]);
    let tom = call.caller_in_a(&home, "tom", "jerry", &["--hangup-after", "2s"]);
    let up = tom.event_where("connected, or the end", |v| {
        v["event"] == "state" && (v["state"] == "connected" || v["state"] == "ended")
    });
    assert_eq!(up["state"], "connected", "{:?}", tom.all_seen(&[]));
    tom.event(&[("event", "state"), ("state", "ended"), ("reason", "hangup")]);
    jerry.event(&[("event", "state"), ("state", "ended")]);
    let retried = |p: &Proc| {
        p.all_seen(&[("event", "notice")])
            .iter()
            .any(|n| n["message"].as_str().unwrap_or("").contains("trying again"))
    };
    assert!(
        retried(&tom) || retried(&jerry),
        "no side started over: tom {:?}",
        tom.all_seen(&[("event", "notice")])
    );
    assert_eq!(tom.wait_exit(), 0);
}
