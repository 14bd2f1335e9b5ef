//! The sources behind `--mic`: a tone, a looped WAV file, a cpal microphone, and the
//! one function that opens whichever a spec names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::media::pacer::Pacer;

use anyhow::Context as _;
use cpal::traits::DeviceTrait;
use ringbuf::HeapRb;
use ringbuf::traits::{Consumer as _, Split as _};

use super::device::{self, Direction};
use super::resample::{StreamResampler, resample_clip};
use super::stream::{self, CallbackCounters, StreamThread};
use super::wav::read_mono;
use super::{AudioFrame, AudioSource, FRAME_SAMPLES, Opened, SAMPLE_RATE_HZ};
use crate::media::spec::{AudioSourceSpec, DEFAULT_TONE_HZ, DeviceSelector};

/// One frame's duration.
const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Default tone amplitude (about -13.5 dBFS RMS: audible, far from clipping).
pub const TONE_AMPLITUDE: f32 = 0.3;

/// How far a paced source may fall behind its schedule before it gives up catching up
/// (e.g. after the process was suspended) and restarts the schedule from now.
const MAX_SCHEDULE_LAG: Duration = Duration::from_millis(200);

/// The capture buffer asked of the device: one 20 ms frame (FIELD-NOTES).
const MIC_DEVICE_BUFFER: Duration = Duration::from_millis(20);

/// How long a microphone may deliver nothing before `read_frame` fails. Covers the
/// slow first callback FIELD-NOTES measured (up to 1.5 s with default buffers).
const MIC_STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How often `MicSource::read_frame` looks for new samples while waiting.
const MIC_POLL: Duration = Duration::from_millis(2);

/// Captured audio held at most, in resampled 48 kHz samples (500 ms): older audio is
/// dropped so a stalled reader does not build up latency. Large because PulseAudio
/// delivers capture in bursts of 100 ms and more; a 100 ms cap lost audio here.
const MIC_MAX_BACKLOG: usize = 25 * FRAME_SAMPLES;

/// Whether a synthetic source waits for real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// One frame per 20 ms on a fixed schedule (no drift), as a live source would.
    RealTime,
    /// As fast as frames are read (tests, offline processing).
    Unpaced,
}

/// The shared schedule for real-time pacing, or none when unpaced.
pub(super) fn pacer(pacing: Pacing) -> Option<Pacer> {
    match pacing {
        Pacing::RealTime => Some(Pacer::with_max_lag(FRAME_DURATION, MAX_SCHEDULE_LAG)),
        Pacing::Unpaced => None,
    }
}

/// A sine tone.
#[derive(Debug)]
pub struct ToneSource {
    /// Frequency, Hz.
    frequency_hz: f64,
    /// Peak amplitude in [0, 1].
    amplitude: f32,
    /// Phase of the next sample, in cycles [0, 1): kept small so precision never decays.
    phase_cycles: f64,
    /// Real-time schedule.
    pacer: Option<Pacer>,
}

impl ToneSource {
    /// A tone of `frequency_hz` at peak `amplitude`.
    pub fn new(frequency_hz: f64, amplitude: f32, pacing: Pacing) -> Self {
        Self {
            frequency_hz,
            amplitude,
            phase_cycles: 0.0,
            pacer: pacer(pacing),
        }
    }

    /// The `tone` source: [`DEFAULT_TONE_HZ`] (concert A) at [`TONE_AMPLITUDE`], in
    /// real time.
    pub fn standard() -> Self {
        Self::new(f64::from(DEFAULT_TONE_HZ), TONE_AMPLITUDE, Pacing::RealTime)
    }
}

impl AudioSource for ToneSource {
    fn read_frame(&mut self, out: &mut AudioFrame) -> anyhow::Result<()> {
        if let Some(p) = &mut self.pacer {
            p.wait();
        }
        let step = self.frequency_hz / f64::from(SAMPLE_RATE_HZ);
        for s in out.iter_mut() {
            *s = self.amplitude * (std::f64::consts::TAU * self.phase_cycles).sin() as f32;
            self.phase_cycles = (self.phase_cycles + step).fract();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("tone {} Hz", self.frequency_hz)
    }
}

/// A WAV file of any rate and channel count, downmixed, resampled to 48 kHz once at
/// open, and looped forever.
#[derive(Debug)]
pub struct WavFileSource {
    /// The whole file at 48 kHz mono.
    samples: Vec<f32>,
    /// Next sample to hand out.
    position: usize,
    /// For `describe`.
    path: PathBuf,
    /// Real-time schedule.
    pacer: Option<Pacer>,
}

impl WavFileSource {
    /// Reads and converts `path`.
    ///
    /// # Errors
    /// The file cannot be read or holds no audio.
    pub fn open(path: &Path, pacing: Pacing) -> anyhow::Result<Self> {
        let clip = read_mono(path)?;
        let samples = resample_clip(&clip.samples, clip.sample_rate_hz, SAMPLE_RATE_HZ)
            .with_context(|| format!("WAV file {}", path.display()))?;
        if samples.is_empty() {
            anyhow::bail!("WAV file {} holds no audio", path.display());
        }
        Ok(Self {
            samples,
            position: 0,
            path: path.to_owned(),
            pacer: pacer(pacing),
        })
    }

    /// Length of one loop, in 48 kHz samples.
    pub fn loop_samples(&self) -> usize {
        self.samples.len()
    }
}

impl AudioSource for WavFileSource {
    fn read_frame(&mut self, out: &mut AudioFrame) -> anyhow::Result<()> {
        if let Some(p) = &mut self.pacer {
            p.wait();
        }
        let mut filled = 0;
        while filled < out.len() {
            let take = (out.len() - filled).min(self.samples.len() - self.position);
            out[filled..filled + take]
                .copy_from_slice(&self.samples[self.position..self.position + take]);
            filled += take;
            self.position = (self.position + take) % self.samples.len();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// A microphone through cpal, at the device's native configuration. The callback
/// downmixes to mono f32 into a lock-free ring; `read_frame` resamples to 48 kHz and
/// waits (polling every 2 ms) until a whole frame is there.
pub struct MicSource {
    /// Keeps the stream running; dropping it stops capture.
    _stream: StreamThread,
    /// Reading end of the callback's ring (device-rate mono).
    ring: ringbuf::HeapCons<f32>,
    /// Errors the stream reported, surfaced on the next read.
    errors: mpsc::Receiver<String>,
    /// Device rate to 48 kHz.
    resampler: StreamResampler,
    /// Scratch for draining the ring.
    scratch: Vec<f32>,
    /// Resampled audio not yet handed out.
    backlog: Vec<f32>,
    /// Samples the callback could not store (reader too slow).
    counters: Arc<CallbackCounters>,
    /// For messages.
    name: String,
}

impl MicSource {
    /// Opens the microphone `selector` names and starts capturing.
    ///
    /// # Errors
    /// No such device (listing those that exist), no usable configuration, or the
    /// stream failed to start.
    pub fn open(selector: &DeviceSelector) -> anyhow::Result<Self> {
        let device = device::find_device(Direction::Input, selector)?;
        let name = device.name().unwrap_or_else(|_| selector.to_string());
        let supported = device
            .default_input_config()
            .with_context(|| format!("microphone `{name}`: no usable configuration"))?;
        let configs = stream::candidate_configs(&supported, MIC_DEVICE_BUFFER);
        let rate = supported.sample_rate().0;
        let (error_tx, errors) = mpsc::channel();
        let counters = Arc::new(CallbackCounters::default());
        let callback_counters = Arc::clone(&counters);
        let format = supported.sample_format();
        // The ring is made per attempt: a refused configuration consumes its producer.
        let (stream, ring) = StreamThread::spawn("rtc-mic", move || {
            stream::build_first(&configs, |config| {
                let (producer, consumer) = HeapRb::<f32>::new(rate as usize / 2).split();
                let stream = stream::build_input_stream(
                    &device,
                    config,
                    format,
                    producer,
                    error_tx.clone(),
                    Arc::clone(&callback_counters),
                )?;
                Ok((stream, consumer))
            })
        })
        .with_context(|| format!("microphone `{name}`"))?;
        tracing::info!(%name, rate, %format, "microphone open");
        Ok(Self {
            _stream: stream,
            ring,
            errors,
            resampler: StreamResampler::new(rate, SAMPLE_RATE_HZ)?,
            scratch: vec![0.0; 4096],
            backlog: Vec::with_capacity(2 * MIC_MAX_BACKLOG),
            counters,
            name,
        })
    }

    /// Moves everything the callback captured into the resampled backlog.
    fn drain_ring(&mut self) -> anyhow::Result<()> {
        loop {
            let n = self.ring.pop_slice(&mut self.scratch);
            if n == 0 {
                return Ok(());
            }
            self.resampler
                .process(&self.scratch[..n], &mut self.backlog)?;
            if self.backlog.len() > MIC_MAX_BACKLOG {
                let excess = self.backlog.len() - MIC_MAX_BACKLOG;
                self.backlog.drain(..excess);
            }
        }
    }
}

impl AudioSource for MicSource {
    fn read_frame(&mut self, out: &mut AudioFrame) -> anyhow::Result<()> {
        let deadline = Instant::now() + MIC_STALL_TIMEOUT;
        loop {
            if let Ok(e) = self.errors.try_recv() {
                anyhow::bail!("microphone `{}`: {e}", self.name);
            }
            self.drain_ring()?;
            if self.backlog.len() >= FRAME_SAMPLES {
                out.copy_from_slice(&self.backlog[..FRAME_SAMPLES]);
                self.backlog.drain(..FRAME_SAMPLES);
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "microphone `{}` delivered no audio for {MIC_STALL_TIMEOUT:?}",
                    self.name
                );
            }
            std::thread::sleep(MIC_POLL);
        }
    }

    fn describe(&self) -> String {
        let dropped = self
            .counters
            .xruns
            .load(std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            format!("microphone {} ({dropped} samples dropped)", self.name)
        } else {
            format!("microphone {}", self.name)
        }
    }
}

/// Opens the source a `--mic` spec names: `None` for `none`; `auto` tries the default
/// microphone and falls back to the tone with a notice.
///
/// # Errors
/// An explicit device or file that cannot be opened (the message says why, and for
/// devices lists those that exist).
pub fn open_audio_source(spec: &AudioSourceSpec) -> anyhow::Result<Opened<Box<dyn AudioSource>>> {
    let boxed = |s: Box<dyn AudioSource>| Opened::plain(Some(s));
    Ok(match spec {
        AudioSourceSpec::None => Opened::plain(None),
        AudioSourceSpec::Tone { hz } => boxed(Box::new(ToneSource::new(
            f64::from(*hz),
            TONE_AMPLITUDE,
            Pacing::RealTime,
        ))),
        AudioSourceSpec::File(path) => {
            boxed(Box::new(WavFileSource::open(path, Pacing::RealTime)?))
        }
        AudioSourceSpec::Device(selector) => boxed(Box::new(MicSource::open(selector)?)),
        AudioSourceSpec::Auto => match MicSource::open(&DeviceSelector::Default) {
            Ok(mic) => boxed(Box::new(mic)),
            Err(e) => {
                let notice = format!("no microphone ({e:#}); sending a {DEFAULT_TONE_HZ} Hz tone");
                tracing::warn!("{notice}");
                Opened {
                    media: Some(Box::new(ToneSource::standard())),
                    notice: Some(notice),
                }
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rising_zero_crossings(x: &[f32]) -> usize {
        x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count()
    }

    #[test]
    fn tone_has_its_frequency_and_amplitude_across_frames() {
        let mut tone = ToneSource::new(440.0, 0.3, Pacing::Unpaced);
        let mut all = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..50 {
            tone.read_frame(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        // 50 frames = 1 s: 440 cycles, continuous across frame boundaries.
        let crossings = rising_zero_crossings(&all);
        assert!((439..=441).contains(&crossings), "{crossings}");
        let peak = all.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.3).abs() < 1e-3, "{peak}");
        assert!(
            all.windows(2).all(|w| (w[1] - w[0]).abs() < 0.02),
            "no jumps"
        );
    }

    #[test]
    fn real_time_tone_is_paced_to_the_frame_schedule() {
        let mut tone = ToneSource::new(440.0, 0.3, Pacing::RealTime);
        let mut frame = [0.0; FRAME_SAMPLES];
        let start = Instant::now();
        for _ in 0..4 {
            tone.read_frame(&mut frame).unwrap();
        }
        // The first frame is due at once, the fourth 60 ms later: never earlier.
        assert!(start.elapsed() >= Duration::from_millis(60));
    }

    fn write_wav(path: &Path, rate: u32, samples: &[f32]) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn file_source_loops_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.wav");
        // 1500 samples: not a multiple of a frame, so loops fall mid-frame.
        let ramp: Vec<f32> = (0..1500).map(|i| i as f32 / 1500.0).collect();
        write_wav(&path, SAMPLE_RATE_HZ, &ramp);
        let mut source = WavFileSource::open(&path, Pacing::Unpaced).unwrap();
        assert_eq!(source.loop_samples(), 1500);
        let mut all = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..5 {
            source.read_frame(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        for (i, s) in all.iter().enumerate() {
            assert_eq!(*s, ramp[i % 1500], "sample {i}");
        }
    }

    #[test]
    fn file_source_resamples_to_48k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone16k.wav");
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (std::f32::consts::TAU * 500.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        write_wav(&path, 16_000, &tone);
        let mut source = WavFileSource::open(&path, Pacing::Unpaced).unwrap();
        assert!(
            (source.loop_samples() as i64 - 48_000).abs() <= 1,
            "{}",
            source.loop_samples()
        );
        let mut all = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for _ in 0..25 {
            source.read_frame(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        // Half a second at 500 Hz.
        let crossings = rising_zero_crossings(&all);
        assert!((249..=251).contains(&crossings), "{crossings}");
    }

    #[test]
    fn missing_file_and_unknown_device_are_clear_errors() {
        let err = open_audio_source(&AudioSourceSpec::File("/nonexistent/x.wav".into()))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("/nonexistent/x.wav"), "{err:#}");

        let err = open_audio_source(&AudioSourceSpec::Device(DeviceSelector::Index(99)))
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("no microphone matches `99`"),
            "{err:#}"
        );
    }

    #[test]
    fn none_opens_nothing_and_tone_opens_a_tone() {
        let opened = open_audio_source(&AudioSourceSpec::None).unwrap();
        assert!(opened.media.is_none() && opened.notice.is_none());
        let opened = open_audio_source(&AudioSourceSpec::Tone {
            hz: DEFAULT_TONE_HZ,
        })
        .unwrap();
        assert_eq!(opened.media.unwrap().describe(), "tone 440 Hz");
    }
}
