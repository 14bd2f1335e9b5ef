//! cpal streams kept alive on their own thread (a `cpal::Stream` is not `Send`), and
//! the real-time callbacks that move samples between the device and lock-free rings.
//!
//! The callbacks only convert, downmix or duplicate channels, and push to or pop from
//! an SPSC ring: no locks, no allocation, no blocking.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig, SupportedBufferSize};
use ringbuf::traits::{Consumer as _, Observer as _, Producer as _};
use ringbuf::{HeapCons, HeapProd};

use super::device::quiet_alsa;

/// Calls `$build::<T>(args)` with `T` the Rust type of the cpal sample format `$format`
/// (`$what` names the direction in the error for a format cpal adds later).
macro_rules! with_sample_type {
    ($format:expr, $what:literal, $build:ident($($arg:expr),*)) => {
        match $format {
            SampleFormat::F32 => $build::<f32>($($arg),*),
            SampleFormat::I16 => $build::<i16>($($arg),*),
            SampleFormat::U16 => $build::<u16>($($arg),*),
            SampleFormat::I32 => $build::<i32>($($arg),*),
            SampleFormat::U32 => $build::<u32>($($arg),*),
            SampleFormat::I8 => $build::<i8>($($arg),*),
            SampleFormat::U8 => $build::<u8>($($arg),*),
            SampleFormat::F64 => $build::<f64>($($arg),*),
            other => anyhow::bail!("unsupported {} sample format {other}", $what),
        }
    };
}

/// Periods per ALSA buffer when cpal is given a fixed buffer size (cpal 0.15
/// `set_hw_params_from_format`: period = buffer / 4).
const PERIODS: u32 = 4;

/// How long opening a device may take before it is reported as failed.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// The configurations to try, in order: the device's default format and rate with a
/// fixed ALSA buffer of `buffer` (cpal splits it into 4 periods) when the device's
/// range allows it, then the default buffer size. FIELD-NOTES: a fixed 960-frame
/// capture buffer starts within a second where the default took 1-1.5 s; the PulseAudio
/// ALSA plugin refuses a 20 ms playback buffer, so playback asks for more.
///
/// The fixed size is rounded down to a multiple of [`PERIODS`]: cpal asks ALSA for
/// periods of `buffer / 4` and a buffer of exactly `buffer`, which the PulseAudio
/// plugin refuses (EINVAL) unless it is whole periods: 20 ms at its default 44.1 kHz
/// is 882 frames, refused, where 880 opens.
pub(super) fn candidate_configs(
    supported: &cpal::SupportedStreamConfig,
    buffer: Duration,
) -> Vec<StreamConfig> {
    let default = supported.config();
    let frames = (f64::from(supported.sample_rate().0) * buffer.as_secs_f64()) as u32;
    let frames = frames / PERIODS * PERIODS;
    let mut candidates = Vec::with_capacity(2);
    if let SupportedBufferSize::Range { min, max } = supported.buffer_size()
        && (*min..=*max).contains(&frames)
    {
        candidates.push(StreamConfig {
            buffer_size: cpal::BufferSize::Fixed(frames),
            ..default.clone()
        });
    }
    candidates.push(default);
    candidates
}

/// Tries `build` with each configuration in turn; returns the first that works, or
/// the last error.
pub(super) fn build_first<T>(
    configs: &[StreamConfig],
    mut build: impl FnMut(&StreamConfig) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut last = anyhow::anyhow!("no stream configuration to try");
    for config in configs {
        match build(config) {
            Ok(built) => return Ok(built),
            Err(e) => {
                tracing::debug!(?config, "stream configuration refused: {e:#}");
                last = e;
            }
        }
    }
    Err(last)
}

/// A running cpal stream, owned by a thread that drops it when this handle drops.
pub(super) struct StreamThread {
    /// Dropping this sender tells the thread to drop the stream and end.
    _stop: mpsc::Sender<()>,
}

impl StreamThread {
    /// Builds and starts a stream on a new thread named `name`; `build` returns the
    /// stream and a value (e.g. the ring's other end) handed back to the caller.
    ///
    /// # Errors
    /// The build or `play` error, or a timeout if the device does not open in time.
    pub(super) fn spawn<F, T>(name: &str, build: F) -> anyhow::Result<(Self, T)>
    where
        F: FnOnce() -> anyhow::Result<(cpal::Stream, T)> + Send + 'static,
        T: Send + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<anyhow::Result<T>>(1);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let (stream, value) = match build().and_then(|(s, v)| {
                    s.play().context("starting the stream")?;
                    Ok((s, v))
                }) {
                    Ok(built) => built,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(value));
                // Blocks until the handle (the only sender) is dropped.
                let _ = stop_rx.recv();
                drop(stream);
            })
            .context("spawning the audio stream thread")?;
        match ready_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(value)) => Ok((Self { _stop: stop_tx }, value)),
            Ok(Err(e)) => Err(e),
            Err(_) => anyhow::bail!("the device did not open within {OPEN_TIMEOUT:?}"),
        }
    }
}

/// Counters a callback updates without locking.
#[derive(Debug, Default)]
pub(super) struct CallbackCounters {
    /// Samples that did not fit the ring (input) or were missing (output underrun).
    pub(super) xruns: AtomicU64,
    /// Output only: old samples skipped to bring the queued audio back down.
    pub(super) skipped: AtomicU64,
    /// Output only: the device's latency from the callback to playback, µs, as the
    /// latest callback reported it (0 until one does).
    pub(super) device_latency_us: AtomicU64,
}

/// How much queued audio an output callback keeps after serving its request.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueLimits {
    /// Above this many samples left queued, the oldest are skipped…
    pub(super) max_queued: usize,
    /// …down to this many.
    pub(super) target_queued: usize,
}

impl QueueLimits {
    /// Old samples to skip before serving `requested` from `queued`: the device may
    /// stall (PulseAudio's first callbacks come 0.5-1.5 s apart) while the pipeline
    /// keeps writing, and without this the ring would stay full, a fixed added delay.
    pub(super) fn excess(self, queued: usize, requested: usize) -> usize {
        let left = queued.saturating_sub(requested);
        if left > self.max_queued {
            left - self.target_queued
        } else {
            0
        }
    }
}

/// Builds an input stream that downmixes every frame to mono f32 and pushes it into
/// `ring`, dropping the newest samples when the ring is full. ALSA's messages about a
/// refused configuration go to the log ([`quiet_alsa`]), never over the TUI.
pub(super) fn build_input_stream(
    device: &cpal::Device,
    config: &StreamConfig,
    format: SampleFormat,
    ring: HeapProd<f32>,
    errors: mpsc::Sender<String>,
    counters: Arc<CallbackCounters>,
) -> anyhow::Result<cpal::Stream> {
    quiet_alsa();
    with_sample_type!(
        format,
        "input",
        input_stream(device, config, ring, errors, counters)
    )
}

fn input_stream<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut ring: HeapProd<f32>,
    errors: mpsc::Sender<String>,
    counters: Arc<CallbackCounters>,
) -> anyhow::Result<cpal::Stream>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let mut block = [0.0f32; 256];
    let stream = device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            for frames in data.chunks(block.len() * channels) {
                let mut n = 0;
                for (slot, frame) in block.iter_mut().zip(frames.chunks_exact(channels)) {
                    *slot = downmix(frame);
                    n += 1;
                }
                let pushed = ring.push_slice(&block[..n]);
                if pushed < n {
                    counters
                        .xruns
                        .fetch_add((n - pushed) as u64, Ordering::Relaxed);
                }
            }
        },
        move |e| {
            let _ = errors.send(e.to_string());
        },
        None,
    )?;
    Ok(stream)
}

/// The mean of one interleaved frame, as f32.
fn downmix<T>(frame: &[T]) -> f32
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let sum: f32 = frame.iter().map(|&s| f32::from_sample_(s)).sum();
    sum / frame.len() as f32
}

/// Builds an output stream that pops mono samples from `ring` into every channel,
/// playing silence when the ring runs dry. ALSA's messages go to the log
/// ([`quiet_alsa`]).
pub(super) fn build_output_stream(
    device: &cpal::Device,
    config: &StreamConfig,
    format: SampleFormat,
    limits: QueueLimits,
    ring: HeapCons<f32>,
    errors: mpsc::Sender<String>,
    counters: Arc<CallbackCounters>,
) -> anyhow::Result<cpal::Stream> {
    quiet_alsa();
    with_sample_type!(
        format,
        "output",
        output_stream(device, config, limits, ring, errors, counters)
    )
}

fn output_stream<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    limits: QueueLimits,
    mut ring: HeapCons<f32>,
    errors: mpsc::Sender<String>,
    counters: Arc<CallbackCounters>,
) -> anyhow::Result<cpal::Stream>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let stream = device.build_output_stream(
        config,
        move |data: &mut [T], info: &cpal::OutputCallbackInfo| {
            let stamp = info.timestamp();
            if let Some(latency) = stamp.playback.duration_since(&stamp.callback) {
                counters
                    .device_latency_us
                    .store(latency.as_micros() as u64, Ordering::Relaxed);
            }
            let excess = limits.excess(ring.occupied_len(), data.len() / channels);
            if excess > 0 {
                let skipped = ring.skip(excess);
                counters
                    .skipped
                    .fetch_add(skipped as u64, Ordering::Relaxed);
            }
            let mut missing = 0u64;
            for frame in data.chunks_mut(channels) {
                let value = ring.try_pop().unwrap_or_else(|| {
                    missing += 1;
                    0.0
                });
                frame.fill(T::from_sample_(value));
            }
            if missing > 0 {
                counters.xruns.fetch_add(missing, Ordering::Relaxed);
            }
        },
        move |e| {
            let _ = errors.send(e.to_string());
        },
        None,
    )?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_skips_old_audio_only_beyond_the_limit() {
        let limits = QueueLimits {
            max_queued: 300,
            target_queued: 100,
        };
        assert_eq!(limits.excess(400, 441), 0, "underrun: nothing to skip");
        assert_eq!(limits.excess(741, 441), 0, "exactly the limit is kept");
        assert_eq!(limits.excess(5_000, 441), 5_000 - 441 - 100);
    }

    #[test]
    fn a_fixed_buffer_is_whole_periods_and_within_the_device_range() {
        let supported = |rate: u32, min: u32, max: u32| {
            cpal::SupportedStreamConfig::new(
                2,
                cpal::SampleRate(rate),
                SupportedBufferSize::Range { min, max },
                SampleFormat::F32,
            )
        };
        let configs = candidate_configs(&supported(44_100, 16, 100_000), Duration::from_millis(20));
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[0].buffer_size, cpal::BufferSize::Fixed(880));
        assert_eq!(configs[1].buffer_size, cpal::BufferSize::Default);
        let configs = candidate_configs(&supported(48_000, 16, 100_000), Duration::from_millis(20));
        assert_eq!(configs[0].buffer_size, cpal::BufferSize::Fixed(960));
        // Outside the device's range: only the default is tried.
        let configs = candidate_configs(
            &supported(48_000, 2_000, 100_000),
            Duration::from_millis(20),
        );
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].buffer_size, cpal::BufferSize::Default);
    }

    #[test]
    fn downmix_averages_any_sample_format_to_f32() {
        assert_eq!(downmix(&[0.5f32, -0.25]), 0.125);
        assert!((downmix(&[i16::MAX, i16::MAX]) - 1.0).abs() < 1e-4);
        // u16 midpoint is silence.
        assert!(downmix(&[32768u16]).abs() < 1e-4);
    }
}
