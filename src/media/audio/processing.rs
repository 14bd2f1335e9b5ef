//! The send path's audio processing: high-pass filter, acoustic echo cancellation
//! (AEC3) fed with what the speaker plays, noise suppression and automatic gain control
//! (AGC2), in 10 ms frames at 48 kHz, through `sonora` (WebRTC's audio processing
//! module in Rust).
//!
//! The far-end reference travels from the speaker thread to the audio-send thread in a
//! lock-free ring ([`echo_reference`]): the speaker thread pushes each mixed 20 ms frame
//! as it hands it to the sink, with the sink's output delay; the send thread feeds what
//! arrived to the canceller before it processes each microphone frame. Nothing here runs
//! in a device callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ringbuf::traits::{Consumer as _, Observer as _, Producer as _, Split as _};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use sonora::config::{EchoCanceller, GainController2, HighPassFilter, NoiseSuppression};

use super::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Samples in one 10 ms processing frame at 48 kHz (the module's frame size).
pub const CHUNK: usize = SAMPLE_RATE_HZ as usize / 100;

/// Far-end audio the reference ring holds at most (500 ms): past it, the oldest is
/// dropped (the send thread was stalled; stale reference would mislead the canceller).
const REFERENCE_RING: usize = SAMPLE_RATE_HZ as usize / 2;

/// Reference audio kept when the send thread catches up after a stall (60 ms: the
/// canceller's own delay estimator covers the rest).
const REFERENCE_KEEP: usize = 3 * FRAME_SAMPLES;

/// How hard noise is suppressed (`--noise-suppression`, `noise_suppression` in the
/// config), after WebRTC's levels: about 6, 12, 18 and 20 dB less stationary noise
/// (BENCHMARKS.md "Echo cancellation").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseSuppressionLevel {
    /// No noise suppression.
    Off,
    /// ~6 dB.
    Low,
    /// ~12 dB.
    Moderate,
    /// ~18 dB.
    High,
    /// ~20 dB.
    VeryHigh,
}

impl NoiseSuppressionLevel {
    fn sonora(self) -> Option<sonora::config::NoiseSuppressionLevel> {
        use sonora::config::NoiseSuppressionLevel as Level;
        Some(match self {
            Self::Off => return None,
            Self::Low => Level::Low,
            Self::Moderate => Level::Moderate,
            Self::High => Level::High,
            Self::VeryHigh => Level::VeryHigh,
        })
    }
}

/// `on` or `off` (`--echo-cancellation`, `--auto-gain` and their config keys).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

impl Switch {
    /// Whether it is on.
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

/// Which processing runs on the microphone's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingSettings {
    /// Acoustic echo cancellation (`--echo-cancellation`).
    pub echo_cancellation: bool,
    /// Noise suppression and its level (`--noise-suppression`).
    pub noise_suppression: NoiseSuppressionLevel,
    /// Automatic gain control (`--auto-gain`).
    pub auto_gain: bool,
}

impl ProcessingSettings {
    /// Everything on, noise suppression `high`: the default with device microphone and
    /// speaker.
    pub const ALL_ON: Self = Self {
        echo_cancellation: true,
        noise_suppression: NoiseSuppressionLevel::High,
        auto_gain: true,
    };

    /// Everything off: the default when the microphone or the speaker is a file, a tone
    /// or none (media stays bit-exact).
    pub const ALL_OFF: Self = Self {
        echo_cancellation: false,
        noise_suppression: NoiseSuppressionLevel::Off,
        auto_gain: false,
    };

    /// Whether any processing runs (the high-pass filter comes with any of it).
    pub fn any(&self) -> bool {
        self.echo_cancellation
            || self.noise_suppression != NoiseSuppressionLevel::Off
            || self.auto_gain
    }
}

/// The canceller's own figures, as of the latest processed frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EchoStats {
    /// Echo return loss enhancement, dB: how much the canceller takes off the echo.
    pub erle_db: Option<f64>,
    /// Likelihood (0-1) that echo is left in the output.
    pub residual_echo_likelihood: Option<f64>,
    /// The echo path delay the canceller estimates, ms.
    pub delay_ms: Option<i32>,
}

/// The processing of one microphone stream.
pub struct AudioProcessor {
    apm: sonora::AudioProcessing,
    settings: ProcessingSettings,
    /// The far-end reference, when echo cancellation is on.
    reference: Option<ReferenceReader>,
    /// One 10 ms chunk of reference (reused).
    far: [f32; CHUNK],
    /// One 10 ms chunk of capture as read (reused).
    near: [f32; CHUNK],
    /// The delay hint last given to the canceller, ms.
    delay_hint_ms: Option<u32>,
}

impl AudioProcessor {
    /// The processing `settings` ask for, with echo cancellation fed from `reference`;
    /// `None` when nothing is on. Echo cancellation without a reference is left off.
    pub fn new(settings: ProcessingSettings, reference: Option<ReferenceReader>) -> Option<Self> {
        if !settings.any() {
            return None;
        }
        Some(Self::build(settings, reference))
    }

    /// The processor of `settings`, with the high-pass filter whatever they say.
    fn build(settings: ProcessingSettings, reference: Option<ReferenceReader>) -> Self {
        let reference = reference.filter(|_| settings.echo_cancellation);
        let config = sonora::Config {
            high_pass_filter: Some(HighPassFilter::default()),
            echo_canceller: reference.is_some().then(EchoCanceller::default),
            noise_suppression: settings
                .noise_suppression
                .sonora()
                .map(|level| NoiseSuppression {
                    level,
                    ..Default::default()
                }),
            gain_controller2: settings.auto_gain.then(GainController2::default),
            ..Default::default()
        };
        let stream = sonora::StreamConfig::new(SAMPLE_RATE_HZ, 1);
        let apm = sonora::AudioProcessing::builder()
            .config(config)
            .capture_config(stream)
            .render_config(stream)
            // The residual echo detector: the likelihood that echo is left, for stats.
            .echo_detector(reference.is_some())
            .build();
        Self {
            apm,
            settings,
            reference,
            far: [0.0; CHUNK],
            near: [0.0; CHUNK],
            delay_hint_ms: None,
        }
    }

    /// What runs.
    pub fn settings(&self) -> ProcessingSettings {
        self.settings
    }

    /// Feeds the far-end audio that arrived since the last call to the canceller.
    fn take_reference(&mut self) {
        let Some(reference) = self.reference.as_mut() else {
            return;
        };
        reference.drop_stale();
        let delay = reference.delay_ms();
        if delay != self.delay_hint_ms
            && let Some(ms) = delay
        {
            // A hint only: AEC3 estimates the delay itself and refines it.
            let _ = self.apm.set_stream_delay_ms(ms as i32);
            self.delay_hint_ms = delay;
        }
        while reference.read_chunk(&mut self.far) {
            let mut unused = [0.0f32; CHUNK];
            let _ = self
                .apm
                .process_render_f32(&[&self.far[..]], &mut [&mut unused[..]]);
        }
    }

    /// Processes one 20 ms microphone frame in place (two 10 ms chunks).
    pub fn process(&mut self, frame: &mut AudioFrame) {
        self.take_reference();
        for chunk in frame.chunks_exact_mut(CHUNK) {
            self.near.copy_from_slice(chunk);
            if self
                .apm
                .process_capture_f32(&[&self.near[..]], &mut [chunk])
                .is_err()
            {
                // Leave the chunk as captured rather than send silence.
                chunk.copy_from_slice(&self.near);
            }
        }
    }

    /// The canceller's figures now.
    pub fn stats(&self) -> EchoStats {
        let s = self.apm.statistics();
        EchoStats {
            erle_db: s.echo_return_loss_enhancement,
            residual_echo_likelihood: s.residual_echo_likelihood,
            delay_ms: s.delay_ms,
        }
    }
}

/// Creates the far-end reference ring: the speaker thread writes, the send thread reads.
pub fn echo_reference() -> (ReferenceWriter, ReferenceReader) {
    let (samples_in, samples_out) = HeapRb::<f32>::new(REFERENCE_RING).split();
    let delay = Arc::new(AtomicU32::new(u32::MAX));
    (
        ReferenceWriter {
            samples: samples_in,
            delay_ms: Arc::clone(&delay),
        },
        ReferenceReader {
            samples: samples_out,
            delay_ms: delay,
        },
    )
}

/// The speaker thread's end of the reference ring.
pub struct ReferenceWriter {
    samples: HeapProd<f32>,
    delay_ms: Arc<AtomicU32>,
}

impl ReferenceWriter {
    /// Records `frame` as handed to the speaker, which plays it `delay` from now (its
    /// reported output latency, if it reports one). Never blocks: a full ring drops
    /// the frame's tail.
    pub fn push(&mut self, frame: &AudioFrame, delay: Option<std::time::Duration>) {
        self.samples.push_slice(frame);
        let ms = delay.map_or(u32::MAX, |d| d.as_millis().min(1_000) as u32);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
}

/// The send thread's end of the reference ring.
pub struct ReferenceReader {
    samples: HeapCons<f32>,
    delay_ms: Arc<AtomicU32>,
}

impl ReferenceReader {
    /// Drops reference audio beyond [`REFERENCE_KEEP`] that piled up while nobody read
    /// (before sending started, or after a stall).
    fn drop_stale(&mut self) {
        let queued = self.samples.occupied_len();
        if queued > REFERENCE_KEEP + CHUNK {
            self.samples.skip(queued - REFERENCE_KEEP);
        }
    }

    /// Fills `out` with the next 10 ms of reference; false when less is queued.
    fn read_chunk(&mut self, out: &mut [f32; CHUNK]) -> bool {
        if self.samples.occupied_len() < CHUNK {
            return false;
        }
        self.samples.pop_slice(out) == CHUNK
    }

    /// The speaker's output delay last reported, ms.
    fn delay_ms(&self) -> Option<u32> {
        match self.delay_ms.load(Ordering::Relaxed) {
            u32::MAX => None,
            ms => Some(ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled speech clip, 48 kHz mono, as samples in [-1, 1].
    fn speech() -> Vec<f32> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/speech_48k_mono.wav"
        );
        let mut reader = hound::WavReader::open(path).expect("the bundled speech clip");
        reader
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect()
    }

    fn power(x: &[f32]) -> f64 {
        x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64
    }

    fn correlation(a: &[f32], b: &[f32]) -> f64 {
        let ab: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        (ab / (power(a) * power(b)).sqrt()) / a.len().min(b.len()) as f64
    }

    /// The best correlation of `out` with `reference` over output lags of 0-25 ms (the
    /// module's band split and canceller delay the output by a few ms), over their
    /// first 3 s.
    fn aligned_correlation(out: &[f32], reference: &[f32]) -> f64 {
        let span = (3 * RATE).min(out.len()).min(reference.len());
        let (out, reference) = (&out[..span], &reference[..span]);
        (0..1200)
            .map(|lag| correlation(&out[lag..], &reference[..reference.len() - lag]))
            .fold(f64::MIN, f64::max)
    }

    /// Runs `mic` through `processor` in 20 ms frames, with `far` as the speaker's
    /// audio (pushed as the speaker thread would).
    fn run(settings: ProcessingSettings, mic: &[f32], far: Option<&[f32]>) -> Vec<f32> {
        let (mut writer, reader) = echo_reference();
        let mut processor = AudioProcessor::build(settings, Some(reader));
        let mut out = Vec::with_capacity(mic.len());
        for (i, chunk) in mic.chunks_exact(FRAME_SAMPLES).enumerate() {
            let mut speaker = [0.0; FRAME_SAMPLES];
            if let Some(far) = far {
                speaker.copy_from_slice(&far[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES]);
            }
            writer.push(&speaker, None);
            let mut frame: AudioFrame = chunk.try_into().unwrap();
            processor.process(&mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    const RATE: usize = SAMPLE_RATE_HZ as usize;

    /// The high-pass filter alone: the linear part of the processing, which the other
    /// figures are measured against (it shifts low frequencies' phase).
    const HPF_ONLY: ProcessingSettings = ProcessingSettings::ALL_OFF;

    #[test]
    fn the_canceller_removes_a_synthetic_echo_and_keeps_double_talk() {
        let clip = speech();
        let far_src = &clip[..RATE * 7 / 2];
        let near_src = &clip[RATE * 7 / 2..RATE * 7];
        let total = RATE * 9;
        let far: Vec<f32> = (0..total)
            .map(|i| 0.8 * far_src[i % far_src.len()])
            .collect();
        // The echo path: 120 ms of delay and a decaying impulse response, -6 dB overall.
        let delay = RATE * 120 / 1000;
        let taps: Vec<f32> = (0..480)
            .map(|k| (-(k as f32) / 100.0).exp() * if k % 2 == 0 { 1.0 } else { -0.5 })
            .collect();
        let gain = 0.5 / taps.iter().map(|t| t * t).sum::<f32>().sqrt();
        let echo: Vec<f32> = (0..total)
            .map(|n| {
                let taps_in = taps.iter().enumerate().take_while(|(k, _)| delay + k <= n);
                gain * taps_in.map(|(k, t)| t * far[n - delay - k]).sum::<f32>()
            })
            .collect();
        // Near-end speech from 6 s to 9 s: double talk.
        let mut near = vec![0.0f32; total];
        near[RATE * 6..RATE * 9].copy_from_slice(&near_src[..RATE * 3]);
        let mic: Vec<f32> = echo.iter().zip(&near).map(|(a, b)| a + b).collect();
        let settings = ProcessingSettings {
            echo_cancellation: true,
            ..ProcessingSettings::ALL_OFF
        };
        let out = run(settings, &mic, Some(&far));
        // Far end only, after 2 s of convergence.
        let erle =
            10.0 * (power(&echo[RATE * 2..RATE * 6]) / power(&out[RATE * 2..RATE * 6])).log10();
        assert!(erle >= 25.0, "ERLE {erle:.1} dB");
        // Double talk: the near end as the linear part of the processing leaves it.
        let near_ref = run(HPF_ONLY, &near, None);
        let kept = aligned_correlation(&out[RATE * 6..RATE * 9], &near_ref[RATE * 6..RATE * 9]);
        assert!(kept >= 0.7, "near-end correlation {kept:.3}");
        eprintln!("synthetic echo: ERLE {erle:.1} dB, double-talk correlation {kept:.3}");
    }

    /// The SNR of `x`, a noisy signal, in the manner of ITU-T G.160 Appendix II: 10 ms
    /// frames are speech where the clean signal is within 20 dB of its loudest frame,
    /// pauses where it is more than 30 dB below it (the bundled reading has ~0.5 s of
    /// those); the speech power is what the speech frames carry above the pauses' noise
    /// floor. `None` with under 20 pause frames.
    fn g160_snr(x: &[f32], clean: &[f32]) -> Option<f64> {
        let frame_power = |v: &[f32]| -> Vec<f64> { v.chunks_exact(CHUNK).map(power).collect() };
        let (px, pc) = (frame_power(x), frame_power(clean));
        let peak = pc.iter().cloned().fold(0.0, f64::max);
        let picked = |keep: &dyn Fn(f64) -> bool| -> Vec<f64> {
            px.iter()
                .zip(&pc)
                .filter(|(_, c)| keep(**c))
                .map(|(p, _)| *p)
                .collect()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let speech = mean(&picked(&|c| c > peak * 1e-2));
        let pauses = picked(&|c| c < peak * 1e-3);
        if pauses.len() < 20 {
            return None;
        }
        let noise = mean(&pauses);
        Some(10.0 * ((speech - noise).max(1e-12) / noise).log10())
    }

    /// `n` samples of white (`pink` false) or pink noise, the same every run: xorshift,
    /// through Paul Kellet's pink filter for pink.
    fn noise(n: usize, pink: bool) -> Vec<f32> {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut b = [0.0f32; 7];
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let w = (seed as f64 / u64::MAX as f64) as f32 * 2.0 - 1.0;
                if !pink {
                    return w;
                }
                b[0] = 0.99886 * b[0] + w * 0.055_517_9;
                b[1] = 0.99332 * b[1] + w * 0.075_075_9;
                b[2] = 0.96900 * b[2] + w * 0.153_852;
                b[3] = 0.86650 * b[3] + w * 0.310_485_6;
                b[4] = 0.55000 * b[4] + w * 0.532_952_2;
                b[5] = -0.7616 * b[5] - w * 0.016_898;
                let p = b.iter().sum::<f32>() + w * 0.5362;
                b[6] = w * 0.115_926;
                p
            })
            .collect()
    }

    #[test]
    fn noise_suppression_takes_stationary_noise_down_and_keeps_speech() {
        let clip = speech();
        let n = clip.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        let clean: Vec<f32> = clip[..n].iter().map(|v| v * 0.8).collect();
        let settings = ProcessingSettings {
            noise_suppression: NoiseSuppressionLevel::Moderate,
            ..ProcessingSettings::ALL_OFF
        };
        let clean_ref = run(HPF_ONLY, &clean, None);
        for pink in [false, true] {
            // Noise at 5 dB SNR.
            let mut noise = noise(n, pink);
            let scale = ((power(&clean) / power(&noise)) / 10f64.powf(0.5)).sqrt() as f32;
            noise.iter_mut().for_each(|v| *v *= scale);
            // Noise alone, after 1 s: how much the suppressor takes off.
            let noise_out = run(settings, &noise, None);
            let noise_ref = run(HPF_ONLY, &noise, None);
            let down = 10.0 * (power(&noise_ref[RATE..]) / power(&noise_out[RATE..])).log10();
            assert!(down >= 10.0, "pink {pink}: noise down {down:.1} dB");
            // Speech in the noise: the SNR (G.160) rises by 10 dB, and what is left still
            // follows the clean speech closely.
            let noisy: Vec<f32> = clean.iter().zip(&noise).map(|(a, b)| a + b).collect();
            let out = run(settings, &noisy, None);
            let snr_in = g160_snr(&noisy[RATE..], &clean[RATE..]).expect("pauses");
            let snr_out = g160_snr(&out[RATE..], &clean[RATE..]).expect("pauses");
            assert!(
                snr_out - snr_in >= 10.0,
                "pink {pink}: SNR {snr_in:.1} -> {snr_out:.1} dB"
            );
            let before =
                aligned_correlation(&run(HPF_ONLY, &noisy, None)[RATE..], &clean_ref[RATE..]);
            let kept = aligned_correlation(&out[RATE..], &clean_ref[RATE..]);
            assert!(
                kept >= 0.85,
                "pink {pink}: speech correlation {before:.3} -> {kept:.3}"
            );
            eprintln!(
                "{} noise: down {down:.1} dB; SNR {snr_in:.1} -> {snr_out:.1} dB; speech correlation {before:.3} -> {kept:.3}",
                if pink { "pink" } else { "white" }
            );
        }
    }

    #[test]
    fn nothing_on_is_no_processor_and_stale_reference_is_dropped() {
        assert!(AudioProcessor::new(ProcessingSettings::ALL_OFF, None).is_none());
        let (mut writer, mut reader) = echo_reference();
        for _ in 0..20 {
            writer.push(
                &[0.1; FRAME_SAMPLES],
                Some(std::time::Duration::from_millis(45)),
            );
        }
        reader.drop_stale();
        assert_eq!(reader.samples.occupied_len(), REFERENCE_KEEP);
        assert_eq!(reader.delay_ms(), Some(45));
    }
}
