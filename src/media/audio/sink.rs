//! The sinks behind `--speaker`: nothing, a WAV file, a cpal speaker, and the one
//! function that opens whichever a spec names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use cpal::traits::DeviceTrait;
use ringbuf::HeapRb;
use ringbuf::traits::{Producer as _, Split as _};

use super::device::{self, Direction};
use super::resample::StreamResampler;
use super::stream::{self, CallbackCounters, QueueLimits, StreamThread};
use super::wav::WavWriter;
use super::{AudioFrame, AudioSink, FRAME_SAMPLES, Opened, SAMPLE_RATE_HZ};
use crate::media::spec::{AudioSinkSpec, DeviceSelector};

/// Audio a speaker's ring holds at most, ms: enough to ride out scheduling hiccups of
/// the pipeline, small enough that overflow (dropped) never builds up latency.
const SPEAKER_RING_MS: usize = 120;

/// The playback buffer asked of the device: 40 ms in 10 ms periods, small for a
/// call yet above what the PulseAudio ALSA plugin accepts (it refuses 20 ms).
const SPEAKER_DEVICE_BUFFER: Duration = Duration::from_millis(40);

/// Audio left queued after a device callback above which the oldest is skipped, ms.
const SPEAKER_MAX_QUEUED_MS: usize = 60;

/// What the skip leaves queued, ms: one frame of slack for the pipeline's timing.
const SPEAKER_TARGET_QUEUED_MS: usize = 20;

/// Discards everything (`--speaker none`, or the fallback after a device failed).
#[derive(Debug, Default)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn write_frame(&mut self, _frame: &AudioFrame) -> anyhow::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "no output".into()
    }
}

/// Writes what would have been played to a 48 kHz mono 16-bit WAV file, finalized
/// when the sink is dropped.
pub struct WavFileSink {
    /// The open file.
    writer: WavWriter,
    /// For `describe`.
    path: PathBuf,
}

impl WavFileSink {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            writer: WavWriter::create(path)?,
            path: path.to_owned(),
        })
    }
}

impl AudioSink for WavFileSink {
    fn write_frame(&mut self, frame: &AudioFrame) -> anyhow::Result<()> {
        Ok(self.writer.write(frame)?)
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// A speaker through cpal at the device's native rate and format. `write_frame`
/// resamples 48 kHz to the device rate and pushes into a bounded lock-free ring
/// (dropping the newest samples when it is full); the callback pops, copies the mono
/// sample to every channel, and plays silence when the ring runs dry. When the device
/// stalls (PulseAudio's first callbacks) and audio piles up, the callback skips the
/// oldest so at most `SPEAKER_MAX_QUEUED_MS` stays queued.
pub struct SpeakerSink {
    /// Keeps the stream running; dropping it stops playback.
    _stream: StreamThread,
    /// Writing end of the callback's ring (device-rate mono).
    ring: ringbuf::HeapProd<f32>,
    /// Errors the stream reported, surfaced on the next write.
    errors: mpsc::Receiver<String>,
    /// 48 kHz to the device rate.
    resampler: StreamResampler,
    /// Resampled samples of the current frame (reused).
    resampled: Vec<f32>,
    /// Samples dropped because the ring was full.
    overflow: u64,
    /// Underrun samples counted by the callback.
    counters: Arc<CallbackCounters>,
    /// For messages.
    name: String,
    /// The device's sample rate, Hz.
    rate: u32,
}

impl SpeakerSink {
    /// Opens the speaker `selector` names and starts playing (silence until written).
    ///
    /// # Errors
    /// No such device (listing those that exist), no usable configuration, or the
    /// stream failed to start.
    pub fn open(selector: &DeviceSelector) -> anyhow::Result<Self> {
        let device = device::find_device(Direction::Output, selector)?;
        let name = device.name().unwrap_or_else(|_| selector.to_string());
        let supported = device
            .default_output_config()
            .with_context(|| format!("speaker `{name}`: no usable configuration"))?;
        let configs = stream::candidate_configs(&supported, SPEAKER_DEVICE_BUFFER);
        let rate = supported.sample_rate().0;
        let capacity = (rate as usize * SPEAKER_RING_MS / 1000).max(2 * FRAME_SAMPLES);
        let limits = QueueLimits {
            max_queued: rate as usize * SPEAKER_MAX_QUEUED_MS / 1000,
            target_queued: rate as usize * SPEAKER_TARGET_QUEUED_MS / 1000,
        };
        let (error_tx, errors) = mpsc::channel();
        let counters = Arc::new(CallbackCounters::default());
        let callback_counters = Arc::clone(&counters);
        let format = supported.sample_format();
        // The ring is made per attempt: a refused configuration consumes its consumer.
        let (stream, ring) = StreamThread::spawn("rtc-speaker", move || {
            stream::build_first(&configs, |config| {
                let (producer, consumer) = HeapRb::<f32>::new(capacity).split();
                let stream = stream::build_output_stream(
                    &device,
                    config,
                    format,
                    limits,
                    consumer,
                    error_tx.clone(),
                    Arc::clone(&callback_counters),
                )?;
                Ok((stream, producer))
            })
        })
        .with_context(|| format!("speaker `{name}`"))?;
        tracing::info!(%name, rate, %format, "speaker open");
        let resampler = StreamResampler::new(SAMPLE_RATE_HZ, rate)?;
        Ok(Self {
            _stream: stream,
            ring,
            errors,
            resampler,
            resampled: Vec::with_capacity(4 * FRAME_SAMPLES),
            overflow: 0,
            counters,
            name,
            rate,
        })
    }

    /// Samples the callback played as silence because nothing was queued.
    pub fn underrun_samples(&self) -> u64 {
        self.counters.xruns.load(Ordering::Relaxed)
    }

    /// Old samples the callback skipped to keep the delay down.
    pub fn skipped_samples(&self) -> u64 {
        self.counters.skipped.load(Ordering::Relaxed)
    }

    /// Samples dropped because the ring was full.
    pub fn overflow_samples(&self) -> u64 {
        self.overflow
    }
}

impl AudioSink for SpeakerSink {
    fn write_frame(&mut self, frame: &AudioFrame) -> anyhow::Result<()> {
        if let Ok(e) = self.errors.try_recv() {
            anyhow::bail!("speaker `{}`: {e}", self.name);
        }
        self.resampled.clear();
        self.resampler.process(frame, &mut self.resampled)?;
        let pushed = self.ring.push_slice(&self.resampled);
        if pushed < self.resampled.len() {
            self.overflow += (self.resampled.len() - pushed) as u64;
            tracing::trace!(dropped = self.resampled.len() - pushed, "speaker ring full");
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("speaker {}", self.name)
    }

    fn output_latency(&self) -> Option<Duration> {
        use ringbuf::traits::Observer as _;
        let queued =
            Duration::from_secs_f64(self.ring.occupied_len() as f64 / f64::from(self.rate));
        let device = Duration::from_micros(self.counters.device_latency_us.load(Ordering::Relaxed));
        Some(queued + device)
    }
}

/// Opens the sink a `--speaker` spec names: `None` for `none`; `auto` tries the default
/// output device and falls back to no output (`None`) with a notice.
///
/// # Errors
/// An explicit device or file that cannot be opened (the message says why, and for
/// devices lists those that exist).
pub fn open_audio_sink(spec: &AudioSinkSpec) -> anyhow::Result<Opened<Box<dyn AudioSink>>> {
    let boxed = |s: Box<dyn AudioSink>| Opened::plain(Some(s));
    Ok(match spec {
        AudioSinkSpec::None => Opened::plain(None),
        AudioSinkSpec::File(path) => boxed(Box::new(WavFileSink::create(path)?)),
        AudioSinkSpec::Device(selector) => boxed(Box::new(SpeakerSink::open(selector)?)),
        AudioSinkSpec::Auto => match SpeakerSink::open(&DeviceSelector::Default) {
            Ok(speaker) => boxed(Box::new(speaker)),
            Err(e) => {
                let notice = format!("no speaker ({e:#}); incoming audio is not played");
                tracing::warn!("{notice}");
                Opened {
                    media: None,
                    notice: Some(notice),
                }
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::wav::read_mono;

    #[test]
    fn file_sink_writes_48k_mono_and_finalizes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heard.wav");
        let opened = open_audio_sink(&AudioSinkSpec::File(path.clone())).unwrap();
        let mut sink = opened.media.unwrap();
        let frame: AudioFrame = std::array::from_fn(|i| (i as f32 / 960.0) - 0.5);
        for _ in 0..3 {
            sink.write_frame(&frame).unwrap();
        }
        drop(sink);
        let clip = read_mono(&path).unwrap();
        assert_eq!(clip.sample_rate_hz, SAMPLE_RATE_HZ);
        assert_eq!(clip.samples.len(), 3 * FRAME_SAMPLES);
        assert!((clip.samples[960 + 480] - frame[480]).abs() < 1e-4);
    }

    #[test]
    fn unwritable_file_and_unknown_device_are_clear_errors() {
        let err = open_audio_sink(&AudioSinkSpec::File("/nonexistent/dir/o.wav".into()))
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("/nonexistent/dir/o.wav"),
            "{err:#}"
        );

        let err = open_audio_sink(&AudioSinkSpec::Device(DeviceSelector::Name(
            "zzz-none".into(),
        )))
        .err()
        .unwrap();
        assert!(
            format!("{err:#}").contains("no speaker matches `zzz-none`"),
            "{err:#}"
        );
    }

    #[test]
    fn none_opens_nothing_and_null_sink_accepts_frames() {
        assert!(
            open_audio_sink(&AudioSinkSpec::None)
                .unwrap()
                .media
                .is_none()
        );
        assert!(NullSink.write_frame(&[0.0; FRAME_SAMPLES]).is_ok());
    }
}
