//! Two in-process PeerSessions on 127.0.0.1, wired through channels as the signaling
//! server would relay them: SDP offer/answer, trickle ICE, real H.264 and Opus media,
//! PLI, stats, ICE restart and close. Every wait is bounded by a timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_cli::call::CallStats;
use rtc_cli::call::peer::{
    AudioTrackWriter, FailedStage, PeerConfig, PeerEvent, PeerSession, RemoteMedia, RtpPacket,
    VideoTrackWriter, ice_ufrag,
};
use rtc_cli::call::stats::CandidateKind;
use rtc_cli::media::video::jitter::KeyframeRequest;
use rtc_cli::signaling::protocol::IceCandidate;
use tokio::sync::mpsc;
use tokio::time::timeout;
use webrtc::peer_connection::RTCPeerConnectionState;

const WAIT: Duration = Duration::from_secs(10);
const WIDTH: usize = 320;
const HEIGHT: usize = 240;
const FRAME_INTERVAL: Duration = Duration::from_millis(66);
const OPUS_FRAME: Duration = Duration::from_millis(20);

/// One side of the call: its session, the events it reported (candidates are relayed to
/// the other side by a pump task and also shown here), and its remote media.
struct Peer {
    session: Arc<PeerSession>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    media: RemoteMedia,
}

fn loopback() -> PeerConfig {
    PeerConfig {
        bind: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..PeerConfig::default()
    }
}

async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Builds two sessions whose local candidates are relayed to each other, in order, as the
/// server does.
async fn pair() -> (Peer, Peer) {
    let (a_tx, a_rx) = mpsc::channel(64);
    let (b_tx, b_rx) = mpsc::channel(64);
    let (a, a_media) = PeerSession::new(&loopback(), a_tx).await.expect("caller");
    let (b, b_media) = PeerSession::new(&loopback(), b_tx).await.expect("callee");
    let (a, b) = (Arc::new(a), Arc::new(b));
    let a_events = relay(a_rx, b.clone());
    let b_events = relay(b_rx, a.clone());
    (
        Peer {
            session: a,
            events: a_events,
            media: a_media,
        },
        Peer {
            session: b,
            events: b_events,
            media: b_media,
        },
    )
}

/// Relays `LocalCandidate`s to `to` and passes every event on for the test to observe.
fn relay(
    mut from: mpsc::Receiver<PeerEvent>,
    to: Arc<PeerSession>,
) -> mpsc::UnboundedReceiver<PeerEvent> {
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = from.recv().await {
            if let PeerEvent::LocalCandidate(c) = &event {
                to.add_remote_candidate(c)
                    .await
                    .expect("a relayed candidate is accepted");
            }
            let _ = seen_tx.send(event);
        }
    });
    seen_rx
}

/// Offer from `a`, answer from `b`, as after `accept`.
async fn negotiate(a: &Peer, b: &Peer) {
    let offer = a.session.create_offer().await.expect("offer");
    let answer = b.session.accept_offer(&offer).await.expect("answer");
    a.session
        .accept_answer(&answer)
        .await
        .expect("apply answer");
}

/// Waits for an event matching `want`, returning the events seen before it.
async fn wait_event(
    peer: &mut Peer,
    what: &str,
    want: impl Fn(&PeerEvent) -> bool,
) -> Vec<PeerEvent> {
    let mut before = Vec::new();
    bounded(what, async {
        loop {
            let event = peer.events.recv().await.expect("event stream open");
            if want(&event) {
                return;
            }
            before.push(event);
        }
    })
    .await;
    before
}

async fn connected_pair() -> (Peer, Peer) {
    let (mut a, mut b) = pair().await;
    negotiate(&a, &b).await;
    wait_event(&mut a, "caller connected", |e| *e == PeerEvent::Connected).await;
    wait_event(&mut b, "callee connected", |e| *e == PeerEvent::Connected).await;
    (a, b)
}

/// A synthetic moving image: a diagonal gradient that shifts with `n`, in I420.
fn moving_frame(n: usize) -> Vec<u8> {
    let mut yuv = vec![128u8; WIDTH * HEIGHT * 3 / 2];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            yuv[y * WIDTH + x] = ((x + y + 4 * n) % 256) as u8;
        }
    }
    yuv
}

/// Encodes `frames` frames with openh264; returns the Annex-B access units (skipped frames
/// left out).
fn encode_h264(frames: usize) -> Vec<Vec<u8>> {
    let mut encoder = openh264::encoder::Encoder::new().expect("openh264 encoder");
    (0..frames)
        .map(|n| {
            let yuv = openh264::formats::YUVBuffer::from_vec(moving_frame(n), WIDTH, HEIGHT);
            encoder.encode(&yuv).expect("encode").to_vec()
        })
        .filter(|au| !au.is_empty())
        .collect()
}

/// Encodes `packets` 20 ms Opus packets of a 440 Hz sine, mono 48 kHz.
fn encode_opus(packets: usize) -> Vec<Vec<u8>> {
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).expect("opus");
    let mut phase = 0.0f64;
    (0..packets)
        .map(|_| {
            let pcm: Vec<i16> = (0..960)
                .map(|_| {
                    phase += 2.0 * std::f64::consts::PI * 440.0 / 48_000.0;
                    (phase.sin() * 8000.0) as i16
                })
                .collect();
            let mut out = vec![0u8; 1500];
            let n = encoder.encode(&pcm, &mut out).expect("opus encode");
            out.truncate(n);
            out
        })
        .collect()
}

async fn send_video(writer: VideoTrackWriter, frames: Vec<Vec<u8>>) {
    for au in frames {
        writer
            .write_h264(&au, FRAME_INTERVAL, Instant::now())
            .await
            .expect("write h264");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send_audio(writer: AudioTrackWriter, packets: Vec<Vec<u8>>) {
    for packet in packets {
        writer
            .write_opus(&packet, OPUS_FRAME)
            .await
            .expect("write opus");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Receives until `done` holds for what was received, or nothing arrives for a while.
async fn collect(
    rx: &mut mpsc::Receiver<RtpPacket>,
    done: impl Fn(&[RtpPacket]) -> bool,
) -> Vec<RtpPacket> {
    let mut got = Vec::new();
    while !done(&got) {
        match timeout(Duration::from_secs(3), rx.recv()).await {
            Ok(Some(p)) => got.push(p),
            _ => break,
        }
    }
    got
}

/// NAL unit types carried in an H.264 RTP payload (RFC 6184 §5.4: single NAL, STAP-A
/// aggregates, FU-A fragments).
fn nal_types(payload: &[u8]) -> Vec<u8> {
    let Some(&first) = payload.first() else {
        return vec![];
    };
    match first & 0x1f {
        24 => {
            let mut types = Vec::new();
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if let Some(&nal) = rest.get(2) {
                    types.push(nal & 0x1f);
                }
                rest = rest.get(2 + size..).unwrap_or_default();
            }
            types
        }
        28 => payload.get(1).map(|b| vec![b & 0x1f]).unwrap_or_default(),
        t => vec![t],
    }
}

/// Checks one direction of video: every frame's packets have consecutive sequence numbers,
/// only the last has the marker bit, and the first frames carry SPS, PPS and an IDR slice.
fn check_video(packets: &[RtpPacket], frames_sent: usize) {
    let mut frames: BTreeMap<u32, Vec<&RtpPacket>> = BTreeMap::new();
    for p in packets {
        frames.entry(p.timestamp).or_default().push(p);
    }
    let complete = frames
        .values()
        .filter(|f| {
            let consecutive = f
                .windows(2)
                .all(|w| w[1].sequence_number == w[0].sequence_number.wrapping_add(1));
            let marker_last =
                f.last().is_some_and(|p| p.marker) && f[..f.len() - 1].iter().all(|p| !p.marker);
            let bytes: usize = f.iter().map(|p| p.payload.len()).sum();
            consecutive && marker_last && bytes > 0
        })
        .count();
    assert!(
        complete * 10 >= frames_sent * 9,
        "{complete} of {frames_sent} frames arrived whole"
    );
    let types: BTreeSet<u8> = packets.iter().flat_map(|p| nal_types(&p.payload)).collect();
    for (nal, name) in [(7, "SPS"), (8, "PPS"), (5, "IDR")] {
        assert!(types.contains(&nal), "no {name} NAL unit in {types:?}");
    }
}

fn check_audio(packets: &[RtpPacket], sent: usize) {
    assert!(
        packets.len() * 10 >= sent * 9,
        "{} of {sent} Opus packets",
        packets.len()
    );
    for w in packets.windows(2) {
        let steps = w[1].sequence_number.wrapping_sub(w[0].sequence_number);
        let ts = w[1].timestamp.wrapping_sub(w[0].timestamp);
        assert_eq!(ts, u32::from(steps) * 960, "20 ms of 48 kHz per packet");
    }
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).expect("decoder");
    let mut pcm = vec![0i16; 5760];
    let samples = decoder
        .decode(&packets[0].payload, &mut pcm, false)
        .expect("a received payload is valid Opus");
    assert_eq!(samples, 960);
    // Two rtc-cli peers negotiate RED first: from the second packet on, each carries the
    // one before it again, 20 ms earlier.
    for w in packets.windows(2) {
        let consecutive = w[1].sequence_number == w[0].sequence_number.wrapping_add(1);
        if !consecutive {
            continue;
        }
        let offsets: Vec<u32> = w[1].redundant.iter().map(|b| b.timestamp_offset).collect();
        assert_eq!(
            offsets,
            [960],
            "RED blocks of packet {}",
            w[1].sequence_number
        );
        assert_eq!(w[1].redundant[0].data, w[0].payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_ice_connects_on_loopback_with_host_candidates() {
    let (mut a, _b) = pair().await;
    let offer = a.session.create_offer().await.expect("offer");
    assert!(offer.contains("a=ice-options:trickle") || offer.contains("a=ice-ufrag"));
    let answer = _b.session.accept_offer(&offer).await.expect("answer");
    a.session
        .accept_answer(&answer)
        .await
        .expect("apply answer");
    let before = wait_event(&mut a, "connected", |e| *e == PeerEvent::Connected).await;
    let candidates: Vec<&IceCandidate> = before
        .iter()
        .filter_map(|e| match e {
            PeerEvent::LocalCandidate(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!candidates.is_empty(), "candidates trickled: {before:?}");
    let ufrag = ice_ufrag(&offer).expect("ufrag in offer");
    for c in candidates {
        assert!(c.candidate.starts_with("candidate:"), "{c:?}");
        assert_eq!(
            c.username_fragment.as_deref(),
            Some(ufrag),
            "stamped with our ufrag"
        );
        assert!(
            c.candidate.contains("127.0.0.1"),
            "bound to loopback only: {c:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_opus_flow_both_ways_at_once() {
    let (mut a, mut b) = connected_pair().await;
    let video = encode_h264(30);
    let audio = encode_opus(50);
    let (nv, na) = (video.len(), audio.len());
    assert!(nv >= 20, "openh264 produced {nv} frames");

    let sends = [
        tokio::spawn(send_video(a.session.video_writer(), video.clone())),
        tokio::spawn(send_video(b.session.video_writer(), video)),
        tokio::spawn(send_audio(a.session.audio_writer(), audio.clone())),
        tokio::spawn(send_audio(b.session.audio_writer(), audio)),
    ];
    let enough_video = |p: &[RtpPacket]| p.iter().filter(|p| p.marker).count() >= nv;
    let enough_audio = |p: &[RtpPacket]| p.len() >= na;
    let (b_video, a_video, b_audio, a_audio) = bounded("media", async {
        tokio::join!(
            collect(&mut b.media.video, enough_video),
            collect(&mut a.media.video, enough_video),
            collect(&mut b.media.audio, enough_audio),
            collect(&mut a.media.audio, enough_audio),
        )
    })
    .await;
    for s in sends {
        bounded("senders", s).await.expect("sender task");
    }
    check_video(&b_video, nv);
    check_video(&a_video, nv);
    assert!(
        a.session.sends_red() && b.session.sends_red(),
        "RED negotiated first"
    );
    check_audio(&b_audio, na);
    check_audio(&a_audio, na);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pli_and_fir_from_the_receiver_show_up_as_keyframe_requests_at_the_sender() {
    let (mut a, mut b) = connected_pair().await;
    // The remote video track exists once its first RTP arrives.
    let writer = a.session.video_writer();
    let frames = encode_h264(5);
    for au in &frames {
        writer
            .write_h264(au, FRAME_INTERVAL, Instant::now())
            .await
            .expect("write");
    }
    bounded("first video at the receiver", b.media.video.recv())
        .await
        .expect("video packet");

    for request in [KeyframeRequest::Pli, KeyframeRequest::Fir] {
        b.session
            .send_keyframe_request(request)
            .await
            .expect("request sent");
        wait_event(&mut a, "keyframe request", |e| {
            *e == PeerEvent::KeyframeRequested(request)
        })
        .await;
    }
    assert_eq!(b.session.stats().await.pli_sent, 2);
    assert_eq!(a.session.stats().await.keyframe_requests_received, 2);
}

/// The video receiver's NACK for packets it never saw (the first keyframe's start)
/// reaches the sender's NACK responder, which sends those packets again. (Here they had
/// arrived, so the receiver's SRTP replay check drops the copies; what is counted is the
/// sender's retransmissions.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_from_the_receiver_makes_the_sender_retransmit_what_it_names() {
    let (a, mut b) = connected_pair().await;
    let writer = a.session.video_writer();
    for au in &encode_h264(3) {
        writer
            .write_h264(au, FRAME_INTERVAL, Instant::now())
            .await
            .expect("write");
    }
    let first = bounded("the frames at the receiver", async {
        collect(&mut b.media.video, |p| {
            p.iter().filter(|p| p.marker).count() >= 3
        })
        .await
    })
    .await;
    let asked: Vec<u16> = first.iter().take(2).map(|p| p.sequence_number).collect();
    assert_eq!(asked.len(), 2, "{} packets arrived", first.len());
    assert_eq!(a.session.stats().await.retransmitted_packets_sent, 0);

    // Two sequence numbers that were sent, and one that never was.
    let never = asked[0].wrapping_sub(1000);
    b.session
        .send_nack(&[never, asked[0], asked[1]])
        .await
        .expect("NACK sent");
    let resent = bounded("the retransmissions", async {
        loop {
            let resent = a.session.stats().await.retransmitted_packets_sent;
            if resent >= 2 {
                return resent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = a.session.stats().await.retransmitted_packets_sent;
    assert_eq!(
        (resent, later),
        (2, 2),
        "the packet never sent is not invented"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_show_rtt_packets_and_rates() {
    let (a, mut b) = connected_pair().await;
    let first = a.session.stats().await;
    let send = tokio::spawn(send_video(a.session.video_writer(), encode_h264(20)));
    let send_audio = tokio::spawn(send_audio(a.session.audio_writer(), encode_opus(25)));
    let received = bounded("video", async {
        collect(&mut b.media.video, |p| {
            p.iter().filter(|p| p.marker).count() >= 15
        })
        .await
    })
    .await;
    assert!(!received.is_empty());
    bounded("send", send).await.expect("send");
    bounded("send audio", send_audio).await.expect("send audio");

    // RTT comes from STUN responses on the selected pair; poll until there is one.
    let (a_now, b_now) = bounded("rtt", async {
        loop {
            let s = a.session.stats().await;
            if s.rtt.is_some() && s.video.sent.packets > 0 {
                return (s, b.session.stats().await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let rtt = a_now.rtt.expect("rtt");
    assert!(rtt < Duration::from_secs(1), "loopback RTT {rtt:?}");
    assert!(a_now.video.sent.frames >= 15);
    assert!(a_now.audio.sent.packets > 0);
    assert!(b_now.video.received.packets >= received.len() as u64);
    assert!(b_now.audio.received.packets > 0);
    assert_eq!(b_now.video.received.packets_lost, 0, "no loss on loopback");

    let call = CallStats::from_peer(&a_now, Some(&first));
    assert!(call.rtt_ms.is_some_and(|ms| ms > 0.0));
    // The selected pair on loopback: host to host on 127.0.0.1.
    let path = call.path.expect("a selected candidate pair");
    assert_eq!(path.local.kind, CandidateKind::Host);
    assert_eq!(path.remote.kind, CandidateKind::Host);
    let local = path.local.address.expect("a local address");
    assert!(local.ip().is_loopback(), "{path:?}");
    assert!(call.video_fps_out > 0.0 && call.video_kbps_out > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_returns_to_connected_and_media_keeps_flowing() {
    let (mut a, mut b) = connected_pair().await;
    let offer = a.session.restart_ice().await.expect("restart offer");
    let answer = b
        .session
        .accept_offer(&offer)
        .await
        .expect("restart answer");
    a.session
        .accept_answer(&answer)
        .await
        .expect("apply answer");

    // Back to (or still) connected, and media flows over the restarted transport.
    bounded("connected after restart", async {
        while a.session.state() != RTCPeerConnectionState::Connected
            || b.session.state() != RTCPeerConnectionState::Connected
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    while a.events.try_recv().is_ok() {}
    while b.media.video.try_recv().is_ok() {}
    let send = tokio::spawn(send_video(a.session.video_writer(), encode_h264(10)));
    let got = bounded("video after restart", async {
        collect(&mut b.media.video, |p| p.iter().any(|p| p.marker)).await
    })
    .await;
    assert!(
        got.iter().any(|p| p.marker),
        "a whole frame after the restart"
    );
    bounded("send", send).await.expect("send");
    assert!(
        !std::iter::from_fn(|| a.events.try_recv().ok()).any(|e| matches!(e, PeerEvent::Failed(_))),
        "no failure reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_offer_carries_new_ice_credentials_and_old_candidates_are_ignored() {
    let (a, b) = connected_pair().await;
    let first = a.session.local_sdp().await.expect("local description");
    let before = ice_ufrag(&first).expect("ufrag").to_owned();
    let b_before = ice_ufrag(&b.session.local_sdp().await.expect("b sdp"))
        .expect("ufrag")
        .to_owned();
    let offer = a.session.restart_ice().await.expect("restart offer");
    let after = ice_ufrag(&offer).expect("ufrag");
    assert_ne!(before, after, "ICE restart changes ice-ufrag (RFC 8445 §9)");
    let answer = b.session.accept_offer(&offer).await.expect("answer");
    a.session.accept_answer(&answer).await.expect("apply");
    let b_after = ice_ufrag(&answer).expect("ufrag").to_owned();
    assert_ne!(b_before, b_after, "the answerer restarts too");

    // A late candidate of the previous generation is dropped quietly; the same (unusable)
    // line for the current generation reaches webrtc and is refused.
    let late = |ufrag: &str| IceCandidate {
        candidate: "candidate:garbage".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: Some(ufrag.to_owned()),
    };
    assert!(
        a.session
            .add_remote_candidate(&late(&b_before))
            .await
            .is_ok()
    );
    assert!(
        a.session
            .add_remote_candidate(&late(&b_after))
            .await
            .is_err()
    );
}

/// The answerer is the DTLS client (webrtc-rs answers `a=setup:active`): connected, it
/// knows the offerer holds the SRTP keys. The offerer, the server, learns it from what the
/// answerer sends under them (here the chat DataChannel's open); a session that never
/// heard from its peer says no once the limit has passed, and does not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_is_known_to_hold_the_dtls_keys_before_media_is_sent_to_it() {
    let (a, b) = connected_pair().await;
    assert!(
        b.session.wait_peer_secured(Duration::ZERO).await,
        "the DTLS client knows once connected"
    );
    assert!(
        a.session.wait_peer_secured(WAIT).await,
        "the DTLS server learns it from the client's traffic"
    );
    let (lonely_tx, _lonely_rx) = mpsc::channel(4);
    let (lonely, _media) = PeerSession::new(&loopback(), lonely_tx)
        .await
        .expect("session");
    let limit = Duration::from_millis(100);
    let started = Instant::now();
    assert!(!lonely.wait_peer_secured(limit).await);
    assert!(started.elapsed() >= limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_one_side_is_seen_by_the_other_in_bounded_time() {
    let (a, mut b) = connected_pair().await;
    a.session.close().await;
    timeout(Duration::from_secs(15), async {
        loop {
            match b.events.recv().await {
                Some(PeerEvent::Disconnected | PeerEvent::Failed(_) | PeerEvent::Closed) | None => {
                    return;
                }
                Some(_) => {}
            }
        }
    })
    .await
    .expect("the other side noticed the close within 15 s");
    b.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_candidate_is_an_error_not_a_panic() {
    let (a, _b) = connected_pair().await;
    let bad = IceCandidate {
        candidate: "candidate:not an ice candidate".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    assert!(a.session.add_remote_candidate(&bad).await.is_err());
    assert!(a.session.accept_answer("v=0 garbage").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_before_negotiation_is_a_clear_error() {
    let (tx, _rx) = mpsc::channel(8);
    let (session, _media) = PeerSession::new(&loopback(), tx).await.expect("session");
    let err = session
        .video_writer()
        .write_h264(&[0, 0, 0, 1, 0x65], FRAME_INTERVAL, Instant::now())
        .await
        .expect_err("nothing negotiated yet");
    assert!(err.to_string().contains("negotiated"), "{err}");
    session.close().await;
}

/// A Chromium offer (many codecs) normalised to CRLF line ends.
fn chrome_offer() -> String {
    let text = include_str!("fixtures/chrome_offer.sdp");
    let mut sdp: String = text
        .lines()
        .map(|l| format!("{}\r\n", l.trim_end()))
        .collect();
    if sdp.is_empty() {
        sdp.push_str("v=0\r\n");
    }
    sdp
}

/// The lines of each m-section of an SDP, keyed by media kind.
fn media_sections(sdp: &str) -> BTreeMap<String, Vec<String>> {
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let kind = m.split(' ').next().unwrap_or_default().to_owned();
            current = Some(kind.clone());
            sections.entry(kind).or_default().push(line.to_owned());
        } else if let Some(kind) = &current {
            sections
                .entry(kind.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    sections
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrome_offer_gets_an_answer_with_h264_mode_1_opus_and_red() {
    let (tx, _rx) = mpsc::channel(64);
    let (callee, _media) = PeerSession::new(&loopback(), tx).await.expect("session");
    let answer = callee
        .accept_offer(&chrome_offer())
        .await
        .expect("an answer to Chrome's offer");
    let sections = media_sections(&answer);

    let video = sections.get("video").expect("a video m-section");
    let m_line = &video[0];
    let pts: Vec<&str> = m_line.split(' ').skip(3).collect();
    assert!(!pts.is_empty(), "video kept some payload type: {m_line}");
    for pt in &pts {
        let rtpmap = video
            .iter()
            .find(|l| l.starts_with(&format!("a=rtpmap:{pt} ")))
            .unwrap_or_else(|| panic!("rtpmap for {pt}"));
        assert!(
            rtpmap.ends_with("H264/90000"),
            "only H.264 answered: {rtpmap}"
        );
        let fmtp = video
            .iter()
            .find(|l| l.starts_with(&format!("a=fmtp:{pt} ")))
            .unwrap_or_else(|| panic!("fmtp for {pt}"));
        assert!(fmtp.contains("packetization-mode=1"), "{fmtp}");
        assert!(
            fmtp.contains("profile-level-id=42e01f") || fmtp.contains("profile-level-id=42001f"),
            "constrained baseline: {fmtp}"
        );
        for fb in ["nack", "nack pli", "ccm fir"] {
            let line = format!("a=rtcp-fb:{pt} {fb}");
            assert!(video.contains(&line), "missing {line}");
        }
    }
    // The offerer's numbers are kept (RFC 3264 §6.1): 102 is Chrome's 42001f mode 1.
    assert!(pts.contains(&"102") || pts.contains(&"106"), "{m_line}");

    let audio = sections.get("audio").expect("an audio m-section");
    // Opus, then RED over Opus, in the offer's order: Opus stays what each side sends.
    assert!(
        audio[0].split(' ').skip(3).eq(["111", "63"]),
        "Opus and RED: {}",
        audio[0]
    );
    assert!(audio.iter().any(|l| l == "a=rtpmap:111 opus/48000/2"));
    assert!(audio.iter().any(|l| l == "a=rtpmap:63 red/48000/2"));
    for section in [video, audio] {
        assert!(section.iter().any(|l| l == "a=sendrecv"), "two-way media");
    }
    assert!(answer.contains("a=setup:active") || answer.contains("a=setup:passive"));
    assert!(answer.contains("a=fingerprint:sha-256"), "DTLS-SRTP");
    callee.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_within_the_deadline_reports_failed() {
    let (tx, mut rx) = mpsc::channel(64);
    let (caller, _media) = PeerSession::new(&loopback(), tx).await.expect("session");
    caller.set_connect_timeout(Duration::from_millis(800));
    // The offer goes out but no answer ever comes back.
    caller.create_offer().await.expect("offer");
    let started = Instant::now();
    let failed = bounded("failed", async {
        loop {
            match rx.recv().await {
                // No answer, so ICE never checked a pair: the stage is ICE, not DTLS.
                Some(PeerEvent::Failed(stage)) => return stage == FailedStage::Ice,
                Some(PeerEvent::Connected) | None => return false,
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(failed, "an unanswered call reports Failed");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "not before the deadline"
    );
    caller.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_in_time_reports_no_failure() {
    let (mut a, mut b) = pair().await;
    a.session.set_connect_timeout(Duration::from_secs(3));
    b.session.set_connect_timeout(Duration::from_secs(3));
    negotiate(&a, &b).await;
    wait_event(&mut a, "connected", |e| *e == PeerEvent::Connected).await;
    wait_event(&mut b, "connected", |e| *e == PeerEvent::Connected).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let later: Vec<PeerEvent> = std::iter::from_fn(|| a.events.try_recv().ok()).collect();
    assert!(
        !later.iter().any(|e| matches!(e, PeerEvent::Failed(_))),
        "{later:?}"
    );
}
