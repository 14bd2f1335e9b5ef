//! Criterion benchmark of the send path's audio processing: one 20 ms microphone
//! frame (two 10 ms chunks) through the high-pass filter, AEC3 with the far end's 20 ms
//! of reference, noise suppression (high) and AGC2, everything on. The goal is
//! under 2 % of a core: 0.4 ms per 20 ms frame.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rtc_cli::media::audio::processing::{AudioProcessor, ProcessingSettings, echo_reference};
use rtc_cli::media::audio::wav::read_mono;
use rtc_cli::media::audio::{AudioFrame, FRAME_SAMPLES};

/// The bundled speech clip as 20 ms frames.
fn speech_frames() -> Vec<AudioFrame> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/speech_48k_mono.wav"
    );
    let clip = read_mono(std::path::Path::new(path)).expect("speech fixture");
    clip.samples
        .chunks_exact(FRAME_SAMPLES)
        .map(|c| c.try_into().expect("a whole frame"))
        .collect()
}

fn processing(c: &mut Criterion) {
    let frames = speech_frames();
    let (mut far, reference) = echo_reference();
    let mut processor =
        AudioProcessor::new(ProcessingSettings::ALL_ON, Some(reference)).expect("on");
    let mut i = 0;
    c.bench_function("audio processing 20 ms, AEC+NS+AGC+HPF", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            // The far end plays one clip; the microphone hears another part of it.
            far.push(&frames[i], None);
            let mut mic = frames[(i + frames.len() / 2) % frames.len()];
            mic.iter_mut().for_each(|s| *s *= 0.5);
            processor.process(&mut mic);
            black_box(mic)
        })
    });
}

criterion_group!(benches, processing);
criterion_main!(benches);
