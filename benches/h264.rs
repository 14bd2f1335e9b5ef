//! Criterion benchmarks of the video path per 640x480 frame: H.264 encode and decode
//! (openh264) of the real clip scaled up, the 320x240 -> 640x480 area-average scale, and
//! the send ladder's 3/4 rung (640x480 -> 480x360).
//! Real time at 30 fps leaves 33 ms per frame for all of them together.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use rtc_cli::media::video::I420Frame;
use rtc_cli::media::video::decode::H264Decoder;
use rtc_cli::media::video::encode::{EncoderSettings, H264Encoder};
use rtc_cli::media::video::scale::Scaler;
use rtc_cli::media::video::y4m::Y4mReader;

const CLIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/clip_320x240.y4m"
);
const SETTINGS: EncoderSettings = EncoderSettings {
    width: 640,
    height: 480,
    fps: 30,
    bitrate_kbps: 1500,
};

/// The clip's frames at 320x240 and scaled to 640x480.
fn clip() -> (Vec<I420Frame>, Vec<I420Frame>) {
    let mut reader = Y4mReader::open(CLIP).expect("fixture clip");
    let mut scaler = Scaler::new(SETTINGS.width, SETTINGS.height).expect("size");
    let mut small = Vec::new();
    while let Some(frame) = reader.read_frame().expect("fixture clip frame") {
        small.push(frame);
    }
    let large = small.iter().map(|f| scaler.scale(f)).collect();
    (small, large)
}

fn bench_video(c: &mut Criterion) {
    let (small, large) = clip();

    c.bench_function("scale 320x240 -> 640x480", |b| {
        let mut scaler = Scaler::new(640, 480).expect("size");
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % small.len();
            black_box(scaler.scale(black_box(&small[i])))
        })
    });

    c.bench_function("scale 640x480 -> 480x360 (the 3/4 rung)", |b| {
        let mut scaler = Scaler::new(480, 360).expect("size");
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % large.len();
            black_box(scaler.scale(black_box(&large[i])))
        })
    });

    c.bench_function("h264 encode 640x480", |b| {
        let mut encoder = H264Encoder::new(SETTINGS).expect("encoder");
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % large.len();
            black_box(encoder.encode(black_box(&large[i]), false).expect("encode"))
        })
    });

    // A whole encoded loop of the clip, decoded in order (P-frames need their references).
    let mut encoder = H264Encoder::new(SETTINGS).expect("encoder");
    let stream: Vec<Vec<u8>> = large
        .iter()
        .enumerate()
        .map(|(i, f)| encoder.encode(f, i == 0).expect("encode").annexb)
        .collect();
    c.bench_function("h264 decode 640x480", |b| {
        let mut decoder = H264Decoder::new().expect("decoder");
        let mut i = 0;
        b.iter(|| {
            let frame = decoder.decode(black_box(&stream[i])).expect("decode");
            i = (i + 1) % stream.len();
            black_box(frame)
        })
    });
}

criterion_group!(benches, bench_video);
criterion_main!(benches);
