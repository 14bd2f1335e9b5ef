//! A real browser as the other peer: headless Chromium runs tests/browser/peer.html (a
//! peer written from docs/protocol.md) against `rtc-cli serve`, with Chromium's fake
//! camera and microphone, all on 127.0.0.1. Calls go both ways: rtc-cli's offer must be
//! acceptable to the browser, and rtc-cli's answer to the browser's offer (every codec
//! Chromium has) must pick H.264 and Opus.
//!
//! The page reports success without extra protocol: once it has decoded 30 of our
//! frames, received 50 of our audio packets and sent 60 frames of its own, it logs
//! `PASSED:` and sends `hangup`, which rtc-cli shows as `remote-hangup`. On failure it
//! sends nothing and the test's bounded waits fail, printing the page's console log.
//!
//! Skipped (with a printed reason) when `chromium` is not installed or does not start.

mod common;

use std::path::Path;
use std::time::Instant;

use common::chromium::{Browser, Start, WAIT, chromium_missing};
use common::media_check::{CLIP, SPEECH, file_source, read_wav_48k, read_y4m};
use common::process::{Home, Proc};
use rtc_cli::media::video::quality::psnr;

/// Frames of the browser's camera the recording must hold (the page sends 60 or more).
const MIN_RECORDED_FRAMES: usize = 30;

/// Which side the page plays.
#[derive(Clone, Copy)]
enum PageMode {
    /// Waits for an incoming call, accepts it and answers the offer.
    Answer,
    /// Calls its peer and sends the offer after the accept.
    Call,
}

/// Starts Chromium on the peer page, logging in as `id` to `url` in `mode` with `peer`
/// as the other party, and waits for the page's login.
fn start_peer_page(url: &str, id: &str, peer: &str, mode: PageMode) -> Start {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/peer.html");
    let mode = match mode {
        PageMode::Answer => "answer",
        PageMode::Call => "call",
    };
    let page_url = format!(
        "file://{}?server={url}&id={id}&peer={peer}&mode={mode}",
        page.display()
    );
    Browser::start(&page_url, "peer: ", "logged in as")
}

/// The media sections of a page line `… codecs audio: opus; video: H264 VP8`, sorted:
/// `["audio: opus", "video: H264 VP8"]`.
/// The chat DataChannel's `application` section carries no codecs and is left out.
fn codec_sections(line: &str) -> Vec<&str> {
    let list = line.split_once("codecs ").map_or("", |(_, l)| l);
    let mut sections: Vec<&str> = list
        .split("; ")
        .filter(|s| !s.starts_with("application"))
        .collect();
    sections.sort_unstable();
    sections
}

/// rtc-cli's media: the bundled clip and speech out, the browser's video recorded to
/// `video`, nothing played, candidates on 127.0.0.1 only.
fn media_args(video: &Path, audio: &Path) -> Vec<String> {
    [
        "--camera".to_owned(),
        file_source(CLIP),
        "--video-size".into(),
        "320x240".into(),
        "--mic".into(),
        file_source(SPEECH),
        "--speaker".into(),
        "none".into(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--record-video".into(),
        video.display().to_string(),
        "--record-audio".into(),
        audio.display().to_string(),
    ]
    .into()
}

/// Runs `check`; if it panics, prints the page's console and `name`'s log, then panics
/// again.
fn explained<T>(home: &Home, name: &str, browser: &mut Browser, check: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        Ok(value) => value,
        Err(panic) => {
            eprintln!("{}", browser.page_report());
            eprintln!("{name} log:\n{}", home.log_tail(name));
            std::panic::resume_unwind(panic)
        }
    }
}

/// Waits for `p`'s call to connect, then to end because the page hung up (its pass).
fn connects_and_page_hangs_up(p: &Proc) {
    p.event(&[("event", "state"), ("state", "connected")]);
    let ended = p.event(&[("event", "state"), ("state", "ended")]);
    assert_eq!(
        ended["reason"], "remote-hangup",
        "the page hangs up only after it decoded our media: {ended}"
    );
}

/// Checks the page's `PASSED:` line names H.264 video and Opus audio coming in.
fn page_passed_with_h264_and_opus(browser: &mut Browser) {
    let passed = browser
        .page_line("PASSED:")
        .unwrap_or_else(|why| panic!("{why}\n{}", browser.page_report()));
    assert!(
        passed.contains("inbound video/H264") && passed.contains("inbound audio/opus"),
        "the browser must receive H.264 and Opus: {passed}"
    );
}

/// Checks the audio recording holds the browser's fake microphone, whose beeps come
/// several times a second: some 20 ms of it louder than -40 dBFS. A stream rtc-cli could
/// not take apart (RED when the browser sends it) records silence.
fn recording_holds_the_browser_beeps(audio: &Path) {
    let samples = read_wav_48k(audio);
    let loudest = samples
        .chunks_exact(960)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / 960.0).sqrt())
        .fold(0.0f32, f32::max);
    eprintln!(
        "recorded {:.1} s of the browser's audio, loudest 20 ms at {:.1} dBFS",
        samples.len() as f64 / 48_000.0,
        20.0 * loudest.max(1e-9).log10()
    );
    assert!(loudest > 0.01, "the browser's audio recorded as silence");
}

/// Checks the recording holds the browser's fake camera: enough frames, of the size
/// the page asked for, and moving (Chromium's fake camera animates every frame).
fn recording_holds_the_browser_camera(video: &Path) {
    let frames = read_y4m(video);
    eprintln!("recorded {} frames from the browser", frames.len());
    assert!(
        frames.len() >= MIN_RECORDED_FRAMES,
        "only {} frames of the browser's video were recorded",
        frames.len()
    );
    let (first, last) = (&frames[0], &frames[frames.len() - 1]);
    assert_eq!((first.width(), first.height()), (320, 240));
    let similarity = psnr(first, last).expect("frames of one recording have one size");
    assert!(
        similarity < 60.0,
        "first and last recorded frames are identical (PSNR {similarity:.1} dB): the video is frozen"
    );
}

#[test]
fn rtc_cli_calls_the_browser_and_media_flows_both_ways() {
    if let Some(why) = chromium_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT).failing_on_error_events();
    let (_server, url) = home.serve(&[]);
    let mut browser = match start_peer_page(&url, "browser", "tom", PageMode::Answer) {
        Start::Ready(b) => b,
        Start::Unavailable(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let started = Instant::now();
    let video = home.path("from-browser.y4m");
    let audio = home.path("from-browser.wav");
    let media = media_args(&video, &audio);
    let media: Vec<&str> = media.iter().map(String::as_str).collect();
    let tom = home.caller(&url, "tom", "browser", &media);
    explained(&home, "tom", &mut browser, || {
        connects_and_page_hangs_up(&tom);
        assert_eq!(tom.wait_exit(), 0, "a call the peer hung up ends with 0");
    });
    page_passed_with_h264_and_opus(&mut browser);
    eprintln!("call to the browser took {:?}", started.elapsed());
    let report = browser.page_report();
    let answer = browser
        .logged("answer sent with codecs")
        .unwrap_or_else(|| panic!("the page sent no answer\n{report}"));
    // rtc-cli offers RED before Opus; Chromium keeps that order, and both send RED.
    assert_eq!(
        codec_sections(answer),
        ["audio: red opus", "video: H264"],
        "the browser accepts rtc-cli's offer of H.264, RED and Opus: {answer}"
    );
    recording_holds_the_browser_camera(&video);
    recording_holds_the_browser_beeps(&audio);
}

#[test]
fn the_browser_calls_rtc_cli_and_its_answer_picks_h264_and_opus() {
    if let Some(why) = chromium_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT).failing_on_error_events();
    let (_server, url) = home.serve(&[]);
    let video = home.path("from-browser.y4m");
    let audio = home.path("from-browser.wav");
    let media = media_args(&video, &audio);
    let mut listen = vec!["--auto-accept"];
    listen.extend(media.iter().map(String::as_str));
    let mut jerry = home.listener(&url, "jerry", &listen);
    let started = Instant::now();
    let mut browser = match start_peer_page(&url, "browser", "jerry", PageMode::Call) {
        Start::Ready(b) => b,
        Start::Unavailable(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    explained(&home, "jerry", &mut browser, || {
        connects_and_page_hangs_up(&jerry);
    });
    page_passed_with_h264_and_opus(&mut browser);
    eprintln!("call from the browser took {:?}", started.elapsed());
    let report = browser.page_report();
    let offer = browser
        .logged("offer sent with codecs")
        .unwrap_or_else(|| panic!("the page sent no offer\n{report}"));
    eprintln!("{offer}");
    assert!(
        offer.contains("VP8") && offer.contains("H264") && offer.contains("opus"),
        "the browser offers all its codecs: {offer}"
    );
    let answer = browser
        .logged("answer received with codecs")
        .unwrap_or_else(|| panic!("no answer reached the page\n{report}"));
    eprintln!("{answer}");
    // Chromium offers Opus before RED; rtc-cli's answer keeps its order.
    assert_eq!(
        codec_sections(answer),
        ["audio: opus red", "video: H264"],
        "rtc-cli answers H.264, Opus and RED only: {answer}"
    );
    // The listener stays online after a call; quitting closes the recording.
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
    recording_holds_the_browser_camera(&video);
    recording_holds_the_browser_beeps(&audio);
}
