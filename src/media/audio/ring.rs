//! Call-progress tones, generated: the ring of an incoming call and the ringback an
//! outgoing call hears until it is answered.
//!
//! Cadences after ETSI ES 201 970 / ITU-T E.180 Supplement 2: ringback 425 Hz, 1 s on
//! and 4 s off; the incoming ring a British-style double ring (400 + 450 Hz, 0.4 s on,
//! 0.2 s off, 0.4 s on, 2 s off), so the two never sound alike.

use super::source::{Pacing, pacer};
use super::{AudioFrame, AudioSource, SAMPLE_RATE_HZ};
use crate::media::pacer::Pacer;

/// Peak amplitude of each tone's sum (-12 dBFS: clearly heard, never clipped).
const AMPLITUDE: f32 = 0.25;

/// Which tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Someone calls us.
    Ring,
    /// We call and the callee is being rung.
    Ringback,
}

impl Cadence {
    /// The frequencies mixed, Hz.
    pub fn frequencies_hz(self) -> &'static [f64] {
        match self {
            Self::Ring => &[400.0, 450.0],
            Self::Ringback => &[425.0],
        }
    }

    /// Alternating on and off spans, ms, starting with on; the pattern repeats.
    pub fn spans_ms(self) -> &'static [u32] {
        match self {
            Self::Ring => &[400, 200, 400, 2000],
            Self::Ringback => &[1000, 4000],
        }
    }

    /// Whether the tone sounds at `sample` (counted from its start).
    pub fn is_on(self, sample: u64) -> bool {
        let per_ms = u64::from(SAMPLE_RATE_HZ / 1000);
        let period: u64 = self.spans_ms().iter().map(|&ms| u64::from(ms)).sum();
        let mut at_ms = (sample / per_ms) % period;
        for (i, &span) in self.spans_ms().iter().enumerate() {
            if at_ms < u64::from(span) {
                return i % 2 == 0;
            }
            at_ms -= u64::from(span);
        }
        false
    }
}

/// A call-progress tone as an audio source, paced in real time or not.
#[derive(Debug)]
pub struct RingTone {
    cadence: Cadence,
    /// Samples produced so far.
    sample: u64,
    pacer: Option<Pacer>,
}

impl RingTone {
    /// The tone of `cadence`, from its start.
    pub fn new(cadence: Cadence, pacing: Pacing) -> Self {
        Self {
            cadence,
            sample: 0,
            pacer: pacer(pacing),
        }
    }
}

impl AudioSource for RingTone {
    fn read_frame(&mut self, out: &mut AudioFrame) -> anyhow::Result<()> {
        if let Some(p) = &mut self.pacer {
            p.wait();
        }
        let freqs = self.cadence.frequencies_hz();
        let gain = AMPLITUDE / freqs.len() as f32;
        for s in out.iter_mut() {
            *s = if self.cadence.is_on(self.sample) {
                let t = self.sample as f64 / f64::from(SAMPLE_RATE_HZ);
                freqs
                    .iter()
                    .map(|f| (std::f64::consts::TAU * f * t).sin() as f32)
                    .sum::<f32>()
                    * gain
            } else {
                0.0
            };
            self.sample += 1;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{:?} tone", self.cadence)
    }
}

#[cfg(test)]
mod tests {
    use super::super::FRAME_SAMPLES;
    use super::*;

    /// The RMS of each 20 ms frame of `seconds` of `cadence`.
    fn frame_levels(cadence: Cadence, seconds: usize) -> Vec<f32> {
        let mut tone = RingTone::new(cadence, Pacing::Unpaced);
        let mut frame = [0.0; FRAME_SAMPLES];
        (0..seconds * 50)
            .map(|_| {
                tone.read_frame(&mut frame).unwrap();
                (frame.iter().map(|s| s * s).sum::<f32>() / FRAME_SAMPLES as f32).sqrt()
            })
            .collect()
    }

    #[test]
    fn ringback_sounds_one_second_in_five() {
        let levels = frame_levels(Cadence::Ringback, 10);
        let on = levels.iter().filter(|&&l| l > 0.1).count();
        assert_eq!(on, 100, "2 x 1 s of 50 frames");
        assert!(levels[..50].iter().all(|&l| l > 0.1), "starts sounding");
        assert!(levels[50..250].iter().all(|&l| l == 0.0));
        let peak = levels.iter().cloned().fold(0.0, f32::max);
        assert!(peak < AMPLITUDE, "never clips: {peak}");
    }

    #[test]
    fn the_ring_is_a_double_ring_every_three_seconds() {
        let levels = frame_levels(Cadence::Ring, 6);
        let starts: Vec<usize> = (1..levels.len())
            .filter(|&i| levels[i] > 0.05 && levels[i - 1] == 0.0)
            .collect();
        // Bursts at 0 (not counted: no frame before), 0.6 s, 3 s, 3.6 s.
        assert_eq!(starts, [30, 150, 180]);
        assert!(Cadence::Ring.is_on(0) && !Cadence::Ring.is_on(48_000));
    }
}
