//! Mixing the decoded audio of several peers into the one speaker output: a sum, and a
//! peak limiter that keeps the sum under [`CEILING`] (-1 dBFS) without clipping.
//!
//! Voices rarely peak together, so the sum gets no fixed attenuation: a single peer
//! plays bit-exact (the limiter never acts on a frame that fits), and only the frames
//! where the sum would leave the ceiling are turned down. The gain falls at once to what
//! the frame's peak allows (ramped across the frame, so no step is heard) and recovers
//! by 1/[`RELEASE_FRAMES`] a frame, as a broadcast limiter does.

use super::{AudioFrame, FRAME_SAMPLES};

/// The largest magnitude the mix may reach: -1 dBFS (10^(-1/20)), EBU R 128's maximum
/// true-peak level. The headroom is for intersample peaks: resampling the mix to the
/// device's rate, and the DAC's reconstruction, rise above the largest sample, and a
/// mix limited at full scale would clip there.
pub const CEILING: f32 = 0.891_250_9;

/// Frames (20 ms each) the gain takes to recover from zero to unity: 0.5 s.
pub const RELEASE_FRAMES: u32 = 25;

/// Sums frames and limits the result. One per speaker output.
#[derive(Debug, Clone)]
pub struct Mixer {
    /// The gain at the end of the last frame, in (0, 1].
    gain: f32,
}

impl Default for Mixer {
    fn default() -> Self {
        Self::new()
    }
}

impl Mixer {
    /// A mixer at unity gain.
    pub fn new() -> Self {
        Self { gain: 1.0 }
    }

    /// The gain applied at the end of the last frame, in (0, 1].
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Writes the limited sum of `inputs` into `out` (silence for no input).
    pub fn mix<'a>(
        &mut self,
        inputs: impl IntoIterator<Item = &'a AudioFrame>,
        out: &mut AudioFrame,
    ) {
        out.fill(0.0);
        for frame in inputs {
            for (o, s) in out.iter_mut().zip(frame) {
                *o += s;
            }
        }
        let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let recovered = (self.gain + 1.0 / RELEASE_FRAMES as f32).min(1.0);
        let allowed = if peak > CEILING { CEILING / peak } else { 1.0 };
        let target = recovered.min(allowed);
        let start = self.gain.min(allowed);
        if start == 1.0 && target == 1.0 {
            self.gain = 1.0;
            return;
        }
        // Ramp from where the last frame ended to this frame's gain, but never above what
        // this frame's peak allows, so no sample exceeds the ceiling.
        let step = (target - start) / FRAME_SAMPLES as f32;
        for (i, o) in out.iter_mut().enumerate() {
            let g = (start + step * (i + 1) as f32).min(allowed);
            *o = (*o * g).clamp(-CEILING, CEILING);
        }
        self.gain = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amplitude: f32) -> AudioFrame {
        let mut f = [0.0; FRAME_SAMPLES];
        for (i, s) in f.iter_mut().enumerate() {
            *s = amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / 48_000.0).sin();
        }
        f
    }

    #[test]
    fn one_input_that_fits_passes_bit_exact() {
        let input = tone(440.0, 0.85);
        let mut out = [0.0; FRAME_SAMPLES];
        let mut mixer = Mixer::new();
        mixer.mix([&input], &mut out);
        assert_eq!(out, input);
        assert_eq!(mixer.gain(), 1.0);
    }

    #[test]
    fn quiet_inputs_are_summed_exactly() {
        let (a, b) = (tone(440.0, 0.2), tone(660.0, 0.3));
        let mut out = [0.0; FRAME_SAMPLES];
        Mixer::new().mix([&a, &b], &mut out);
        for i in 0..FRAME_SAMPLES {
            assert_eq!(out[i], a[i] + b[i]);
        }
    }

    #[test]
    fn loud_inputs_never_clip_and_the_gain_recovers() {
        let loud = [tone(440.0, 0.8), tone(440.0, 0.8), tone(440.0, 0.8)];
        let mut mixer = Mixer::new();
        let mut out = [0.0; FRAME_SAMPLES];
        for _ in 0..10 {
            mixer.mix(loud.iter(), &mut out);
            assert!(out.iter().all(|s| s.abs() <= CEILING), "a sample clipped");
        }
        // The sum peaks at 2.4: the gain settles near the ceiling / 2.4.
        assert!(
            (mixer.gain() - CEILING / 2.4).abs() < 0.01,
            "{}",
            mixer.gain()
        );
        let quiet = tone(440.0, 0.1);
        for _ in 0..RELEASE_FRAMES {
            mixer.mix([&quiet], &mut out);
        }
        assert_eq!(mixer.gain(), 1.0);
        mixer.mix([&quiet], &mut out);
        assert_eq!(out, quiet);
    }

    #[test]
    fn the_gain_moves_without_a_step_between_frames() {
        let mut mixer = Mixer::new();
        let mut out = [0.0; FRAME_SAMPLES];
        let dc = [[0.9f32; FRAME_SAMPLES], [0.9f32; FRAME_SAMPLES]];
        mixer.mix(dc.iter(), &mut out);
        let last = out[FRAME_SAMPLES - 1];
        mixer.mix(dc.iter(), &mut out);
        assert!((out[0] - last).abs() < 0.01, "{} then {}", last, out[0]);
    }

    #[test]
    fn no_input_is_silence() {
        let mut out = [1.0; FRAME_SAMPLES];
        Mixer::new().mix(std::iter::empty(), &mut out);
        assert!(out.iter().all(|&s| s == 0.0));
    }
}
