//! Rooms end to end (issue 12): `rtc-cli room` processes and a local `serve`, all on
//! 127.0.0.1. Four members each send their own picture (the bundled clip, the test
//! pattern, two generated clips of their own color) and their own tone; every member
//! records what each other member sent (`--record-dir`) and writes its speaker to a
//! file, and both are checked: every other member's video arrives intact, each
//! member's audio is theirs, and the speaker mixes the three others' tones and never
//! our own. Members leave and join with the others' media going on; a fifth member is
//! refused `room-full`; a member killed with SIGKILL is noticed.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::media_check::{CLIP, best_match_psnrs, colored_clip, fixture, read_wav_48k, read_y4m};
use common::process::{Home, Proc};
use rtc_cli::media::audio::mix::CEILING;
use rtc_cli::media::video::pattern::read_counter;

/// The room every test joins (each test runs its own server).
const ROOM: &str = "standup";

/// What a member sends as its camera.
#[derive(Clone, Copy)]
enum Picture {
    /// The bundled clip (`tests/fixtures/clip_320x240.y4m`).
    Clip,
    /// The built-in test pattern (its frames carry a counter strip).
    Pattern,
    /// A generated clip: a field of this Y'CbCr color with a bar moving across it.
    Color((u8, u8, u8)),
}

/// One member: its id, its picture and the frequency of its tone. The frequencies
/// share no small integer ratios, so no member's tone is a harmonic of another's.
struct Member {
    id: &'static str,
    picture: Picture,
    tone_hz: u32,
}

const ANN: Member = Member {
    id: "ann",
    picture: Picture::Clip,
    tone_hz: 440,
};
const BOB: Member = Member {
    id: "bob",
    picture: Picture::Pattern,
    tone_hz: 620,
};
const CAT: Member = Member {
    id: "cat",
    picture: Picture::Color((41, 240, 110)),
    tone_hz: 830,
};
const DAN: Member = Member {
    id: "dan",
    picture: Picture::Color((82, 90, 240)),
    tone_hz: 1130,
};

/// The source file a member's picture comes from (written into `home` when generated);
/// `None` for the test pattern.
fn picture_source(home: &Home, m: &Member) -> Option<PathBuf> {
    match m.picture {
        Picture::Clip => Some(fixture(CLIP)),
        Picture::Pattern => None,
        Picture::Color(yuv) => {
            let path = home.path(&format!("{}-source.y4m", m.id));
            if !path.exists() {
                colored_clip(&path, yuv);
            }
            Some(path)
        }
    }
}

/// `--headless … room standup` on loopback with `extra`, sending the member's picture
/// at `size` and its tone; with no `size`, nothing at all.
fn room_args(
    home: &Home,
    url: &str,
    m: &Member,
    size: Option<&str>,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--server",
        url,
        "--id",
        m.id,
        "room",
        ROOM,
        "--bind",
        "127.0.0.1",
    ]
    .map(str::to_owned)
    .into();
    match size {
        Some(size) => {
            let camera = match picture_source(home, m) {
                Some(path) => format!("file:{}", path.display()),
                None => "test".into(),
            };
            let tone = format!("tone:{}", m.tone_hz);
            let media = [
                "--camera",
                &camera,
                "--video-size",
                size,
                "--fps",
                "15",
                "--mic",
                &tone,
            ];
            args.extend(media.map(str::to_owned));
        }
        None => args.extend(["--camera", "none", "--mic", "none"].map(str::to_owned)),
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Starts a member that records everything (see [`room_args`]) and waits for its
/// `room_joined`.
fn join_recording(home: &Home, url: &str, m: &Member) -> Proc {
    let speaker = format!(
        "file:{}",
        home.path(&format!("{}-speaker.wav", m.id)).display()
    );
    let dir = home.path(m.id).display().to_string();
    let extra = ["--speaker", &speaker, "--record-dir", &dir];
    let p = home.spawn_owned(m.id, &room_args(home, url, m, Some("320x240"), &extra));
    p.event(&[("event", "room_joined"), ("room", ROOM)]);
    p
}

/// Starts a light member (160x120, no speaker) and waits for its `room_joined`.
fn join_light(home: &Home, url: &str, m: &Member) -> Proc {
    let p = home.spawn_owned(
        m.id,
        &room_args(home, url, m, Some("160x120"), &["--speaker", "none"]),
    );
    p.event(&[("event", "room_joined"), ("room", ROOM)]);
    p
}

/// Waits until `p` has a connected call with each of `peers` (in any order).
fn connected_to(p: &Proc, peers: &[&Member]) {
    for peer in peers {
        let fields = [
            ("event", "state"),
            ("state", "connected"),
            ("peer", peer.id),
        ];
        p.seen_or_wait(&fields);
    }
}

/// Checks in `m`'s last `stats` of each call that one encoder fed all three: each call
/// sent at most the frames encoded, and together they sent far more than were encoded
/// (an encoder per call would encode as many frames as all calls sent).
fn one_encode_for_all_calls(p: &Proc, m: &Member) {
    let last: Vec<serde_json::Value> = [&ANN, &BOB, &CAT, &DAN]
        .iter()
        .filter(|o| o.id != m.id)
        .map(|o| p.last_seen(&[("event", "stats"), ("peer", o.id)]))
        .collect();
    let encoded = last
        .iter()
        .map(|s| s["video_frames_encoded"].as_u64().unwrap())
        .max()
        .unwrap();
    let sent: Vec<u64> = last
        .iter()
        .map(|s| s["frames_sent"].as_u64().unwrap())
        .collect();
    eprintln!("{}: {encoded} frames encoded, sent {sent:?}", m.id);
    assert!(
        sent.iter().all(|&n| n <= encoded),
        "{}: {sent:?} > {encoded}",
        m.id
    );
    assert!(
        sent.iter().sum::<u64>() > 2 * encoded,
        "{}: {sent:?} sent from {encoded} encoded",
        m.id
    );
}

/// The power of `hz` in `samples` (48 kHz), by the Goertzel algorithm: the squared
/// magnitude of that DFT bin, normalized by the length.
fn tone_power(samples: &[f32], hz: u32) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * f64::from(hz) / 48_000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (samples.len() as f64).powi(2)
}

/// Checks what `m` recorded from `other`: at least `min_frames` frames of `other`'s
/// picture (PSNR against its source, or the test pattern's counter strip) and audio
/// whose tone is `other`'s.
fn check_recorded(home: &Home, m: &Member, other: &Member, min_frames: usize) {
    let what = format!("{} from {}", m.id, other.id);
    let dir = home.path(m.id);
    let frames = read_y4m(&dir.join(format!("{}.y4m", other.id)));
    eprintln!("{what}: {} frames", frames.len());
    assert!(
        frames.len() >= min_frames,
        "{what}: only {} frames",
        frames.len()
    );
    match picture_source(home, other) {
        Some(source) => {
            let psnrs = best_match_psnrs(&frames, &read_y4m(&source));
            let worst = psnrs.iter().copied().fold(f64::INFINITY, f64::min);
            eprintln!("{what}: worst PSNR {worst:.1} dB");
            assert!(worst >= 30.0, "{what}: a frame at {worst:.1} dB PSNR");
        }
        None => {
            let stamped = frames.iter().filter(|f| read_counter(f).is_some()).count();
            assert!(
                stamped * 10 >= frames.len() * 9,
                "{what}: only {stamped} of {} frames are the test pattern",
                frames.len()
            );
        }
    }
    let audio = read_wav_48k(&dir.join(format!("{}.wav", other.id)));
    let theirs = tone_power(&audio, other.tone_hz);
    for third in [&ANN, &BOB, &CAT, &DAN].iter().filter(|t| t.id != other.id) {
        let leak = tone_power(&audio, third.tone_hz);
        assert!(
            theirs > 1000.0 * leak,
            "{what}: {} Hz at {theirs:e} is not clearly above {} Hz at {leak:e}",
            other.tone_hz,
            third.tone_hz
        );
    }
}

/// Checks `m`'s speaker: each other member's tone well above the noise floor (the power
/// at an unused frequency), `m`'s own tone at least 40 dB under the weakest of them, and
/// no sample over the limiter's ceiling (-1 dBFS, one 16-bit step of margin for the
/// file). The three tones peak at 0.9 together and the codec adds its error, so the
/// limiter may act. (Own against the floor is no measure: codec artifacts and the
/// jitter buffer's time-stretching spread the others' tones, more into a frequency 210 Hz
/// from one of them than into the floor's 1500 Hz.)
fn check_speaker(home: &Home, m: &Member, others: &[&Member]) {
    let speaker = read_wav_48k(&home.path(&format!("{}-speaker.wav", m.id)));
    assert!(speaker.len() > 48_000 * 3, "{}: speaker too short", m.id);
    let floor = tone_power(&speaker, 1500).max(1e-12);
    let mut weakest = f64::INFINITY;
    for o in others {
        let p = tone_power(&speaker, o.tone_hz);
        eprintln!(
            "{} hears {} at {:.1} dB over the floor",
            m.id,
            o.id,
            10.0 * (p / floor).log10()
        );
        assert!(
            p > 1000.0 * floor,
            "{}: {}'s tone missing from the speaker",
            m.id,
            o.id
        );
        weakest = weakest.min(p);
    }
    let own = tone_power(&speaker, m.tone_hz);
    let below = 10.0 * (weakest / own.max(1e-30)).log10();
    eprintln!("{}'s own tone: {below:.1} dB under the others'", m.id);
    assert!(below > 40.0, "{}: its own tone is in its speaker", m.id);
    let peak = speaker.iter().fold(0.0f32, |a, s| a.max(s.abs()));
    assert!(
        peak <= CEILING + 1.0 / 32_768.0,
        "{}: the mix went over the limiter's ceiling {CEILING} (peak {peak})",
        m.id
    );
}

#[test]
fn four_members_see_and_hear_each_other_and_never_themselves() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(Duration::from_secs(40));
    let (_server, url) = home.serve(&[]);
    let all = [&ANN, &BOB, &CAT, &DAN];
    let mut procs = Vec::new();
    for m in all {
        procs.push(join_recording(&home, &url, m));
    }
    for (p, m) in procs.iter().zip(all) {
        let others: Vec<&Member> = all.iter().copied().filter(|o| o.id != m.id).collect();
        connected_to(p, &others);
    }
    // Everyone connected to everyone: let media flow a while, then leave one by one.
    std::thread::sleep(Duration::from_secs(6));
    for p in &mut procs {
        p.send("hangup");
    }
    for (p, m) in procs.into_iter().zip(all) {
        for o in all.iter().filter(|o| o.id != m.id) {
            p.seen_or_wait(&[("event", "state"), ("state", "ended"), ("peer", o.id)]);
        }
        one_encode_for_all_calls(&p, m);
        assert_eq!(p.wait_exit(), 0);
    }
    for m in all {
        let others: Vec<&Member> = all.iter().copied().filter(|o| o.id != m.id).collect();
        for o in &others {
            // 6 s of all-connected media at 15 fps is 90 frames; keep margin for a
            // loaded machine and the members' staggered starts.
            check_recorded(&home, m, o, 45);
        }
        check_speaker(&home, m, &others);
    }
}

#[test]
fn a_member_leaves_and_another_joins_while_the_others_go_on() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(Duration::from_secs(30));
    let (_server, url) = home.serve(&[]);
    let ann = join_light(&home, &url, &ANN);
    let bob = join_light(&home, &url, &BOB);
    let mut cat = join_light(&home, &url, &CAT);
    connected_to(&ann, &[&BOB, &CAT]);
    connected_to(&bob, &[&ANN, &CAT]);
    connected_to(&cat, &[&ANN, &BOB]);

    cat.send("hangup");
    assert_eq!(cat.wait_exit(), 0);
    for p in [&ann, &bob] {
        // Both come, in either order: the server ends the room call and says who left.
        p.seen_or_wait(&[("event", "member_left"), ("id", "cat")]);
        p.seen_or_wait(&[("event", "state"), ("state", "ended"), ("peer", "cat")]);
    }
    // ann's call with bob goes on: its decoded frames keep growing.
    let decoded = |p: &Proc| {
        p.event(&[("event", "stats"), ("peer", "bob")])["frames_decoded"]
            .as_u64()
            .unwrap()
    };
    let before = decoded(&ann);
    let deadline = Instant::now() + Duration::from_secs(10);
    while decoded(&ann) < before + 10 {
        assert!(
            Instant::now() < deadline,
            "ann stopped receiving bob after cat left"
        );
    }

    let dan = join_light(&home, &url, &DAN);
    connected_to(&dan, &[&ANN, &BOB]);
    for p in [&ann, &bob] {
        p.seen_or_wait(&[("event", "member_joined"), ("id", "dan")]);
        connected_to(p, &[&DAN]);
    }
    for mut p in [ann, bob, dan] {
        p.send("quit");
        assert_eq!(p.wait_exit(), 0);
    }
}

#[test]
fn a_fifth_member_is_refused_and_a_killed_member_is_noticed() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(Duration::from_secs(30));
    let (_server, url) = home.serve(&[]);
    let join = |m: &Member| {
        let p = home.spawn_owned(
            m.id,
            &room_args(&home, &url, m, None, &["--speaker", "none"]),
        );
        p.event(&[("event", "room_joined")]);
        p
    };
    let members: Vec<Proc> = [&ANN, &BOB, &CAT, &DAN].into_iter().map(join).collect();

    let eve = Member {
        id: "eve",
        picture: Picture::Pattern,
        tone_hz: 440,
    };
    let fifth = home.spawn_owned(
        "eve",
        &room_args(&home, &url, &eve, None, &["--speaker", "none"]),
    );
    let refused = fifth.event(&[("event", "error")]);
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("full"), "{refused}");
    assert_eq!(fifth.wait_exit(), 12, "room-full has its own exit code");

    let [ann, bob, cat, dan] = <[Proc; 4]>::try_from(members).ok().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &dan.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    for p in [&ann, &bob, &cat] {
        p.event(&[("event", "member_left"), ("id", "dan")]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a killed member was noticed after {:?}",
        started.elapsed()
    );
    drop(dan);
    for mut p in [ann, bob, cat] {
        p.send("quit");
        assert_eq!(p.wait_exit(), 0);
    }
}

#[test]
fn single_file_recording_flags_in_a_room_are_refused_with_the_way_to_record_a_room() {
    let home = Home::new();
    let out = home.run(&[
        "--headless",
        "--server",
        "ws://127.0.0.1:9",
        "--id",
        "ann",
        "room",
        ROOM,
        "--record-video",
        "x.y4m",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--record-dir"), "{stderr}");
    assert!(!home.path("x.y4m").exists());
}
