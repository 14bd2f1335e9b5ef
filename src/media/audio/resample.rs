//! A streaming mono resampler (rubato's windowed-sinc `SincFixedIn`) that takes input
//! chunks of any length and hands out output as it becomes available.

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

/// Input samples per rubato call: 10 ms at the input rate (at least 64), a trade
/// between added latency and per-call overhead.
fn chunk_frames(input_rate_hz: u32) -> usize {
    (input_rate_hz as usize / 100).max(64)
}

/// Errors creating or running a [`StreamResampler`].
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// A rate of zero, or a ratio rubato refuses.
    #[error("cannot resample {from_hz} Hz to {to_hz} Hz: {detail}")]
    Construction {
        /// Input rate, Hz.
        from_hz: u32,
        /// Output rate, Hz.
        to_hz: u32,
        /// rubato's reason.
        detail: String,
    },
    /// rubato failed on a chunk (should not happen with the buffers sized here).
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
}

/// Converts a mono stream from one rate to another, in chunks of any size.
///
/// Input is gathered until a 10 ms chunk is complete, then resampled; [`process`]
/// appends whatever output is ready. Buffers are allocated once at construction, so
/// steady-state calls do not allocate (as long as the caller's output `Vec` has
/// grown to its working size). Equal rates pass samples through untouched.
///
/// The sinc filter (64 taps, Blackman-Harris², cutoff from rubato's
/// `calculate_cutoff`) low-passes below the lower Nyquist rate, so downsampling does
/// not alias. Output sample positions line up with the input's (rubato starts its
/// filter half a window early); the latency is input held back until the filter has
/// seen enough of it, at most one chunk plus half the filter.
///
/// [`process`]: StreamResampler::process
pub struct StreamResampler {
    /// `None` when the rates are equal (identity).
    inner: Option<Inner>,
    /// Input rate, Hz.
    from_hz: u32,
    /// Output rate, Hz.
    to_hz: u32,
}

struct Inner {
    /// The rubato resampler, fixed input chunk size.
    sinc: SincFixedIn<f32>,
    /// Input samples per rubato call.
    chunk: usize,
    /// Input gathered toward the next chunk.
    pending: Vec<f32>,
    /// rubato's output buffer, one channel.
    out: Vec<Vec<f32>>,
}

impl StreamResampler {
    /// A resampler from `from_hz` to `to_hz`.
    ///
    /// # Errors
    /// [`ResampleError::Construction`] for a zero rate or a ratio rubato refuses.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        let construction = |detail: String| ResampleError::Construction {
            from_hz,
            to_hz,
            detail,
        };
        if from_hz == 0 || to_hz == 0 {
            return Err(construction("rates must be positive".into()));
        }
        if from_hz == to_hz {
            return Ok(Self {
                inner: None,
                from_hz,
                to_hz,
            });
        }
        let sinc_len = 64;
        let window = WindowFunction::BlackmanHarris2;
        let params = SincInterpolationParameters {
            sinc_len,
            f_cutoff: rubato::calculate_cutoff(sinc_len, window),
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Linear,
            window,
        };
        let chunk = chunk_frames(from_hz);
        let ratio = f64::from(to_hz) / f64::from(from_hz);
        let sinc = SincFixedIn::<f32>::new(ratio, 1.0, params, chunk, 1)
            .map_err(|e| construction(e.to_string()))?;
        let out = sinc.output_buffer_allocate(true);
        Ok(Self {
            inner: Some(Inner {
                sinc,
                chunk,
                pending: Vec::with_capacity(chunk),
                out,
            }),
            from_hz,
            to_hz,
        })
    }

    /// Input rate, Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate, Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// True when input passes through unchanged (equal rates).
    pub fn is_identity(&self) -> bool {
        self.inner.is_none()
    }

    /// Feeds `input` and appends every output sample now available to `output`.
    ///
    /// # Errors
    /// [`ResampleError::Process`] if rubato rejects a chunk.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = self.inner.as_mut() else {
            output.extend_from_slice(input);
            return Ok(());
        };
        let chunk = inner.chunk;
        let mut rest = input;
        while !rest.is_empty() {
            let take = (chunk - inner.pending.len()).min(rest.len());
            inner.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if inner.pending.len() == chunk {
                let (_, produced) = inner.sinc.process_into_buffer(
                    std::slice::from_ref(&inner.pending),
                    &mut inner.out,
                    None,
                )?;
                output.extend_from_slice(&inner.out[0][..produced]);
                inner.pending.clear();
            }
        }
        Ok(())
    }
}

/// Resamples a whole clip at once: the output holds `len × to_hz / from_hz` samples
/// (rounded), aligned with the input.
///
/// # Errors
/// As [`StreamResampler::new`] and [`StreamResampler::process`].
pub fn resample_clip(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, ResampleError> {
    let mut resampler = StreamResampler::new(from_hz, to_hz)?;
    if resampler.is_identity() {
        return Ok(samples.to_vec());
    }
    let expected = ((samples.len() as u64 * u64::from(to_hz) + u64::from(from_hz) / 2)
        / u64::from(from_hz)) as usize;
    let padding = vec![0.0; chunk_frames(from_hz)];
    let mut out = Vec::with_capacity(expected + 2 * padding.len());
    resampler.process(samples, &mut out)?;
    // Zeros push the last partial chunk and the filter's tail out.
    while out.len() < expected {
        resampler.process(&padding, &mut out)?;
    }
    out.truncate(expected);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq_hz: f64, rate_hz: u32, n: usize, amplitude: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (amplitude
                    * (2.0 * std::f64::consts::PI * freq_hz * i as f64 / f64::from(rate_hz)).sin())
                    as f32
            })
            .collect()
    }

    /// Frequency from rising zero crossings, over the steady middle part of `x`.
    fn frequency_by_zero_crossings(x: &[f32], rate_hz: u32) -> f64 {
        let crossings: Vec<usize> = x
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, _)| i)
            .collect();
        let (first, last) = (crossings[0], *crossings.last().unwrap());
        (crossings.len() - 1) as f64 * f64::from(rate_hz) / (last - first) as f64
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn resample_in_odd_chunks(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut r = StreamResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        // Odd chunk sizes exercise the internal buffering.
        for chunk in input.chunks(333) {
            r.process(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn upsampling_44k1_to_48k_keeps_frequency_amplitude_and_length() {
        let input = sine(1000.0, 44_100, 44_100, 0.5);
        let out = resample_in_odd_chunks(44_100, 48_000, &input);
        // All complete 10 ms chunks are out: 1 s in gives ~1 s out.
        assert!(
            (out.len() as i64 - 48_000).abs() <= 480,
            "{} samples",
            out.len()
        );
        let steady = &out[2_000..out.len() - 2_000];
        let f = frequency_by_zero_crossings(steady, 48_000);
        assert!((f - 1000.0).abs() < 2.0, "frequency {f}");
        let amplitude = rms(steady) * std::f64::consts::SQRT_2;
        assert!((amplitude - 0.5).abs() < 0.02, "amplitude {amplitude}");
    }

    #[test]
    fn downsampling_48k_to_16k_keeps_frequency_and_removes_content_above_nyquist() {
        let tone = sine(440.0, 48_000, 48_000, 0.5);
        let out = resample_in_odd_chunks(48_000, 16_000, &tone);
        let steady = &out[1_000..out.len() - 1_000];
        let f = frequency_by_zero_crossings(steady, 16_000);
        assert!((f - 440.0).abs() < 1.0, "frequency {f}");
        let amplitude = rms(steady) * std::f64::consts::SQRT_2;
        assert!((amplitude - 0.5).abs() < 0.02, "amplitude {amplitude}");

        // 12 kHz is above the 8 kHz output Nyquist: it must be filtered, not aliased to 4 kHz.
        let high = sine(12_000.0, 48_000, 48_000, 0.5);
        let out = resample_in_odd_chunks(48_000, 16_000, &high);
        let level = rms(&out[1_000..out.len() - 1_000]);
        assert!(level < 0.01, "aliased level {level}");
    }

    #[test]
    fn equal_rates_are_identity() {
        let input = sine(300.0, 48_000, 1_000, 0.3);
        let mut r = StreamResampler::new(48_000, 48_000).unwrap();
        assert!(r.is_identity());
        let mut out = Vec::new();
        r.process(&input, &mut out).unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn a_whole_clip_keeps_its_length_and_timing() {
        // An impulse at 10 ms stays at 10 ms: rubato's filter delay is compensated.
        let mut clip = vec![0.0f32; 44_100 / 10];
        clip[441] = 1.0;
        let out = resample_clip(&clip, 44_100, 48_000).unwrap();
        assert_eq!(out.len(), 4_800);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        assert!((peak as i64 - 480).abs() <= 1, "impulse at {peak}");
    }

    #[test]
    fn zero_rate_is_an_error() {
        let err = StreamResampler::new(0, 48_000).err().unwrap().to_string();
        assert!(err.contains("0 Hz"), "{err}");
    }
}
