//! WAV files: reading any PCM or float WAV into mono f32, writing 48 kHz mono 16-bit.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader, WavSpec};

use super::SAMPLE_RATE_HZ;

/// Errors reading or writing a WAV file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be opened, parsed or written.
    #[error("WAV file {path}")]
    Io {
        /// The file in question.
        path: PathBuf,
        /// What hound reported.
        #[source]
        source: hound::Error,
    },
    /// The header describes something this reader does not decode.
    #[error("WAV file {path}: unsupported format ({detail})")]
    Unsupported {
        /// The file in question.
        path: PathBuf,
        /// The format the header declared.
        detail: String,
    },
}

/// A whole WAV file downmixed to mono.
#[derive(Debug, Clone, PartialEq)]
pub struct MonoClip {
    /// Samples in [-1.0, 1.0], one per frame (channels averaged).
    pub samples: Vec<f32>,
    /// The file's sample rate, in Hz.
    pub sample_rate_hz: u32,
}

impl MonoClip {
    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate_hz)
    }
}

/// Reads a whole WAV file (8/16/24/32-bit integer PCM or 32-bit float, any rate, any
/// channel count) and averages its channels into mono f32.
///
/// # Errors
/// [`WavError::Io`] when the file cannot be opened or is not a WAV file or is cut
/// short; [`WavError::Unsupported`] for zero channels, a zero rate or an odd bit depth.
pub fn read_mono(path: &Path) -> Result<MonoClip, WavError> {
    let io = |source| WavError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = WavReader::open(path).map_err(io)?;
    let spec = reader.spec();
    let unsupported = |detail: String| WavError::Unsupported {
        path: path.to_owned(),
        detail,
    };
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(unsupported(format!(
            "{} channels at {} Hz",
            spec.channels, spec.sample_rate
        )));
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(io)?,
        (SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(io)?
        }
        (format, bits) => return Err(unsupported(format!("{format:?} with {bits} bits"))),
    };
    Ok(MonoClip {
        samples: downmix(&interleaved, usize::from(spec.channels)),
        sample_rate_hz: spec.sample_rate,
    })
}

/// Averages interleaved frames of `channels` samples into one sample each; a trailing
/// partial frame is dropped.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    let scale = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * scale)
        .collect()
}

/// Writes 48 kHz mono 16-bit PCM. The header's lengths are fixed up by
/// [`WavWriter::finish`], or on drop if `finish` was not called (errors then only logged).
pub struct WavWriter {
    /// `None` once finished, so drop does not finalize twice.
    inner: Option<hound::WavWriter<BufWriter<File>>>,
    /// For error messages.
    path: PathBuf,
}

impl WavWriter {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// [`WavError::Io`] when the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, WavError> {
        let spec = WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE_HZ,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let inner = hound::WavWriter::create(path, spec).map_err(|source| WavError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            inner: Some(inner),
            path: path.to_owned(),
        })
    }

    /// Appends samples in [-1.0, 1.0] (values outside are clipped).
    ///
    /// # Errors
    /// [`WavError::Io`] on a write failure or after `finish`.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), WavError> {
        let Some(writer) = self.inner.as_mut() else {
            return Err(self.err(hound::Error::IoError(std::io::Error::other(
                "already finished",
            ))));
        };
        for &s in samples {
            if let Err(e) = writer.write_sample(to_i16(s)) {
                return Err(self.err(e));
            }
        }
        Ok(())
    }

    /// Flushes and fixes up the header.
    ///
    /// # Errors
    /// [`WavError::Io`] when the final write fails.
    pub fn finish(mut self) -> Result<(), WavError> {
        self.finalize()
    }

    fn finalize(&mut self) -> Result<(), WavError> {
        match self.inner.take() {
            Some(writer) => writer.finalize().map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }

    fn err(&self, source: hound::Error) -> WavError {
        WavError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        if let Err(e) = self.finalize() {
            tracing::warn!("{e}");
        }
    }
}

/// Converts a sample in [-1.0, 1.0] to 16-bit PCM, clipping.
pub fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_stereo_44k(path: &Path, left: &[f32], right: &[f32]) {
        let spec = WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for (l, r) in left.iter().zip(right) {
            w.write_sample(to_i16(*l)).unwrap();
            w.write_sample(to_i16(*r)).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn stereo_44k_reads_as_averaged_mono() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.wav");
        let left: Vec<f32> = (0..441).map(|i| (i as f32 / 441.0) - 0.5).collect();
        let right: Vec<f32> = left.iter().map(|v| v * 0.5 + 0.1).collect();
        write_stereo_44k(&path, &left, &right);

        let clip = read_mono(&path).unwrap();
        assert_eq!(clip.sample_rate_hz, 44_100);
        assert_eq!(clip.samples.len(), 441);
        for (i, s) in clip.samples.iter().enumerate() {
            let expected = (left[i] + right[i]) / 2.0;
            assert!((s - expected).abs() < 1e-3, "sample {i}: {s} vs {expected}");
        }
    }

    #[test]
    fn float_wav_reads_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("float.wav");
        let spec = WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 32,
            sample_format: SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for v in [0.25f32, -0.75, 1.0] {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let clip = read_mono(&path).unwrap();
        assert_eq!(clip.samples, vec![0.25, -0.75, 1.0]);
        assert_eq!(clip.sample_rate_hz, 8_000);
    }

    #[test]
    fn writer_round_trips_and_finalizes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let samples: Vec<f32> = (0..960).map(|i| ((i as f32) * 0.01).sin() * 0.5).collect();
        {
            let mut w = WavWriter::create(&path).unwrap();
            w.write(&samples).unwrap();
            // Dropped without finish(): the header must still be fixed up.
        }
        let clip = read_mono(&path).unwrap();
        assert_eq!(clip.sample_rate_hz, SAMPLE_RATE_HZ);
        assert_eq!(clip.samples.len(), samples.len());
        let max_err = clip
            .samples
            .iter()
            .zip(&samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_err < 1e-4, "max error {max_err}");
    }

    #[test]
    fn finish_fixes_the_header_and_clips_out_of_range_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut w = WavWriter::create(&path).unwrap();
        w.write(&[0.5, 2.0]).unwrap();
        w.finish().unwrap();
        let clip = read_mono(&path).unwrap();
        assert_eq!(clip.samples.len(), 2);
        assert!(
            (clip.samples[1] - 1.0).abs() < 1e-4,
            "clipped to full scale"
        );
    }

    #[test]
    fn missing_and_garbage_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.wav");
        let err = read_mono(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.wav"), "{err}");

        let garbage = dir.path().join("garbage.wav");
        std::fs::write(&garbage, b"definitely not RIFF").unwrap();
        let err = read_mono(&garbage).unwrap_err().to_string();
        assert!(err.contains("garbage.wav"), "{err}");
    }
}
