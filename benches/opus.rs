//! Criterion benchmarks of the audio path, per 20 ms frame: Opus encode and decode,
//! resampling 44.1 kHz to 48 kHz, and a jitter buffer push + pop.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rtc_cli::media::audio::jitter::{JitterBuffer, TIMESTAMP_STEP};
use rtc_cli::media::audio::opus::{OpusDecoder, OpusEncoder};
use rtc_cli::media::audio::resample::StreamResampler;
use rtc_cli::media::audio::source::{Pacing, ToneSource};
use rtc_cli::media::audio::{AudioFrame, AudioSource, FRAME_SAMPLES};

/// A second of a 440 Hz tone, as 50 frames.
fn tone_frames() -> Vec<AudioFrame> {
    let mut tone = ToneSource::new(440.0, 0.3, Pacing::Unpaced);
    (0..50)
        .map(|_| {
            let mut frame = [0.0; FRAME_SAMPLES];
            tone.read_frame(&mut frame).expect("tone never fails");
            frame
        })
        .collect()
}

fn opus(c: &mut Criterion) {
    let frames = tone_frames();
    let mut encoder = OpusEncoder::new().expect("encoder");
    let mut i = 0;
    c.bench_function("opus encode 20 ms mono", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(encoder.encode(&frames[i]).expect("encode"))
        })
    });

    let mut encoder = OpusEncoder::new().expect("encoder");
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| encoder.encode(f).expect("encode"))
        .collect();
    let mut decoder = OpusDecoder::new().expect("decoder");
    let mut out = [0.0; FRAME_SAMPLES];
    c.bench_function("opus decode 20 ms mono", |b| {
        b.iter(|| {
            i = (i + 1) % packets.len();
            decoder.decode(&packets[i], &mut out).expect("decode");
            black_box(out[0])
        })
    });
}

fn resample(c: &mut Criterion) {
    // 20 ms at 44.1 kHz.
    let input: Vec<f32> = (0..882).map(|i| (i as f32 * 0.0627).sin() * 0.3).collect();
    let mut resampler = StreamResampler::new(44_100, 48_000).expect("resampler");
    let mut out = Vec::with_capacity(4 * FRAME_SAMPLES);
    c.bench_function("resample 44.1k->48k 20 ms", |b| {
        b.iter(|| {
            out.clear();
            resampler.process(&input, &mut out).expect("resample");
            black_box(out.len())
        })
    });
}

fn jitter(c: &mut Criterion) {
    let payload = Bytes::from_static(&[0u8; 80]);
    let mut jb = JitterBuffer::new();
    let mut now = Instant::now();
    let mut seq: u16 = 0;
    let mut timestamp: u32 = 0;
    c.bench_function("jitter buffer push + pop", |b| {
        b.iter(|| {
            jb.push(seq, timestamp, payload.clone(), now);
            let playout = jb.pop(now);
            seq = seq.wrapping_add(1);
            timestamp = timestamp.wrapping_add(TIMESTAMP_STEP);
            now += Duration::from_millis(20);
            black_box(playout)
        })
    });
}

criterion_group!(benches, opus, resample, jitter);
criterion_main!(benches);
