//! Opus (RFC 6716) for 48 kHz mono 20 ms frames: encoder with in-band FEC planned for
//! the loss the peer reports ([`ExpectedLoss`]), decoder with FEC recovery and packet
//! loss concealment.

use std::time::{Duration, Instant};

use opus::{Application, Bitrate, Channels};

use super::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Default encoder bitrate, bit/s: wideband speech with room for in-band FEC.
pub const DEFAULT_BITRATE_BPS: i32 = 32_000;

/// The most packet loss the encoder plans FEC for, percent: libwebrtc's
/// `kMaxPacketLossFraction` (0.2, `audio_encoder_opus.cc`).
pub const MAX_EXPECTED_LOSS_PERCENT: u8 = 20;

/// Time constant of the average over reported loss: libwebrtc's
/// `PacketLossFractionSmoother` (an exponential filter of 0.9999 per ms, -1 / ln 0.9999
/// ms = 10 s).
pub const LOSS_TIME_CONSTANT: Duration = Duration::from_secs(10);

/// Encoder complexity, 0..=10 (`OPUS_SET_COMPLEXITY`): libwebrtc's desktop default
/// (`AudioEncoderOpusConfig::kDefaultComplexity`), one step under libopus' 10.
pub const COMPLEXITY: i32 = 9;

/// The largest Opus packet, bytes (RFC 6716 §3.4, R2: at most 1275 bytes per frame).
const MAX_PACKET_BYTES: usize = 1275;

/// Errors from the Opus codec.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// libopus refused a call (bad packet, bad setting).
    #[error("opus {what}: {source}")]
    Codec {
        /// Which call failed.
        what: &'static str,
        /// libopus' error.
        #[source]
        source: opus::Error,
    },
    /// A packet decoded to something other than one 20 ms frame (e.g. a peer sending
    /// 40 ms packets).
    #[error("opus packet holds {samples} samples per channel, expected {FRAME_SAMPLES} (20 ms)")]
    FrameDuration {
        /// Samples the packet carried.
        samples: usize,
    },
}

fn codec(what: &'static str) -> impl FnOnce(opus::Error) -> OpusError {
    move |source| OpusError::Codec { what, source }
}

/// libopus' coding mode (`OPUS_APPLICATION_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpusApplication {
    /// Tuned for speech intelligibility (high-pass filter, speech emphasis); the usual
    /// choice for calls (libwebrtc uses it for mono).
    #[default]
    Voip,
    /// Tuned for fidelity to the input waveform. On the speech fixture at 32 kbit/s it
    /// keeps a normalized cross-correlation of about 0.98 where VoIP keeps about 0.85
    /// (VoIP's high-pass and speech tuning), with the same hybrid mode and FEC.
    Audio,
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Coding mode.
    pub application: OpusApplication,
    /// Target bitrate, bit/s (libopus accepts 500..=512000).
    pub bitrate_bps: i32,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            application: OpusApplication::Voip,
            bitrate_bps: DEFAULT_BITRATE_BPS,
        }
    }
}

/// The packet loss the encoder plans in-band FEC for, following the loss the peer
/// reports, as libwebrtc's `AudioEncoderOpusImpl::OnReceivedUplinkPacketLossFraction`
/// does: the first figure as it is, then an exponential average over
/// [`LOSS_TIME_CONSTANT`], capped at [`MAX_EXPECTED_LOSS_PERCENT`]; none before any
/// figure. libopus codes the FEC (SILK's low-bitrate redundancy) only when it is told
/// to expect loss, and on a clean link that work is wasted: with a 10 % plan the encoder
/// took 383 µs a frame of the speech fixture against 296 µs with none, and 295 µs a frame
/// of a tone against 94 µs (BENCHMARKS, "Opus FEC that follows the reported loss").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExpectedLoss {
    /// The average loss fraction and when it was last moved.
    average: Option<(f64, Instant)>,
}

impl ExpectedLoss {
    /// Adds a reported loss fraction (0-1) at `now`: it moves the average by
    /// 1 - e^(-elapsed / [`LOSS_TIME_CONSTANT`]) of the way towards it.
    pub fn add(&mut self, now: Instant, fraction: f64) {
        let fraction = fraction.clamp(0.0, 1.0);
        let average = match self.average {
            None => fraction,
            Some((average, at)) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                let weight = 1.0 - (-elapsed / LOSS_TIME_CONSTANT.as_secs_f64()).exp();
                average + weight * (fraction - average)
            }
        };
        self.average = Some((average, now));
    }

    /// The loss to plan for, whole percent, at most [`MAX_EXPECTED_LOSS_PERCENT`]; 0
    /// before any figure.
    pub fn percent(&self) -> u8 {
        let average = self.average.map_or(0.0, |(average, _)| average);
        ((average * 100.0).round() as u8).min(MAX_EXPECTED_LOSS_PERCENT)
    }
}

/// Encodes 20 ms mono frames into one Opus packet each (48 kHz, VoIP mode by default,
/// in-band FEC on, planned for no loss until [`Self::set_expected_loss`]).
pub struct OpusEncoder {
    /// libopus' encoder state.
    inner: opus::Encoder,
    /// The loss FEC is planned for, percent.
    expected_loss_percent: u8,
    /// Scratch for the packet, sized for the largest possible one.
    packet: [u8; MAX_PACKET_BYTES],
}

impl OpusEncoder {
    /// An encoder with [`EncoderSettings::default`]: VoIP at [`DEFAULT_BITRATE_BPS`].
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus cannot create or configure the encoder.
    pub fn new() -> Result<Self, OpusError> {
        Self::with_settings(EncoderSettings::default())
    }

    /// An encoder with the given mode and bitrate.
    ///
    /// # Errors
    /// [`OpusError::Codec`] for a bitrate libopus rejects.
    pub fn with_settings(settings: EncoderSettings) -> Result<Self, OpusError> {
        let application = match settings.application {
            OpusApplication::Voip => Application::Voip,
            OpusApplication::Audio => Application::Audio,
        };
        let mut inner = opus::Encoder::new(SAMPLE_RATE_HZ, Channels::Mono, application)
            .map_err(codec("encoder create"))?;
        inner
            .set_bitrate(Bitrate::Bits(settings.bitrate_bps))
            .map_err(codec("set bitrate"))?;
        inner
            .set_complexity(COMPLEXITY)
            .map_err(codec("set complexity"))?;
        inner.set_inband_fec(true).map_err(codec("set FEC"))?;
        inner
            .set_packet_loss_perc(0)
            .map_err(codec("set packet loss"))?;
        Ok(Self {
            inner,
            expected_loss_percent: 0,
            packet: [0; MAX_PACKET_BYTES],
        })
    }

    /// Plans in-band FEC for `percent` packet loss (`OPUS_SET_PACKET_LOSS_PERC`, capped
    /// at [`MAX_EXPECTED_LOSS_PERCENT`]) from the next frame on; libopus is told only
    /// when the figure changes.
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus refuses the setting.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), OpusError> {
        let percent = percent.min(MAX_EXPECTED_LOSS_PERCENT);
        if percent == self.expected_loss_percent {
            return Ok(());
        }
        self.inner
            .set_packet_loss_perc(i32::from(percent))
            .map_err(codec("set packet loss"))?;
        self.expected_loss_percent = percent;
        Ok(())
    }

    /// The loss FEC is planned for, percent.
    pub fn expected_loss(&self) -> u8 {
        self.expected_loss_percent
    }

    /// Encodes one 20 ms frame into one packet (the payload of one RTP packet).
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus fails.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<u8>, OpusError> {
        let len = self
            .inner
            .encode_float(frame, &mut self.packet)
            .map_err(codec("encode"))?;
        Ok(self.packet[..len].to_vec())
    }

    /// The encoder's lookahead, in samples at 48 kHz: how far the decoded signal lags
    /// the input.
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus fails.
    pub fn lookahead_samples(&mut self) -> Result<usize, OpusError> {
        let n = self.inner.get_lookahead().map_err(codec("lookahead"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// Decodes Opus packets to 20 ms mono frames, recovers a lost frame from its
/// successor's in-band FEC, or conceals it (PLC).
pub struct OpusDecoder {
    /// libopus' decoder state (accepts mono and stereo packets, outputs mono).
    inner: opus::Decoder,
}

impl OpusDecoder {
    /// A 48 kHz mono decoder.
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus cannot create the decoder.
    pub fn new() -> Result<Self, OpusError> {
        let inner =
            opus::Decoder::new(SAMPLE_RATE_HZ, Channels::Mono).map_err(codec("decoder create"))?;
        Ok(Self { inner })
    }

    /// Decodes `packet` into `out`.
    ///
    /// # Errors
    /// [`OpusError::Codec`] for a corrupt packet; [`OpusError::FrameDuration`] for a
    /// packet that is not 20 ms long (checked before decoding, `out` untouched).
    pub fn decode(&mut self, packet: &[u8], out: &mut AudioFrame) -> Result<(), OpusError> {
        let samples =
            opus::packet::get_nb_samples(packet, SAMPLE_RATE_HZ).map_err(codec("packet parse"))?;
        if samples != FRAME_SAMPLES {
            return Err(OpusError::FrameDuration { samples });
        }
        self.decode_checked(packet, out, false, "decode")
    }

    /// Recovers the frame before `next_packet` (which was lost) from `next_packet`'s
    /// in-band FEC data; when it carries none, libopus conceals instead. Then decode
    /// `next_packet` itself normally on the next tick.
    ///
    /// # Errors
    /// [`OpusError::Codec`] for a corrupt packet.
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        out: &mut AudioFrame,
    ) -> Result<(), OpusError> {
        self.decode_checked(next_packet, out, true, "FEC decode")
    }

    /// Packet loss concealment: extrapolates one 20 ms frame from the decoder state.
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus fails.
    pub fn conceal(&mut self, out: &mut AudioFrame) -> Result<(), OpusError> {
        self.decode_checked(&[], out, false, "conceal")
    }

    fn decode_checked(
        &mut self,
        packet: &[u8],
        out: &mut AudioFrame,
        fec: bool,
        what: &'static str,
    ) -> Result<(), OpusError> {
        let samples = self
            .inner
            .decode_float(packet, out, fec)
            .map_err(codec(what))?;
        if samples != FRAME_SAMPLES {
            return Err(OpusError::FrameDuration { samples });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::quality::normalized_cross_correlation;
    use crate::media::audio::wav::read_mono;
    use std::path::Path;

    fn speech() -> Vec<f32> {
        let clip = read_mono(Path::new("tests/fixtures/speech_48k_mono.wav")).unwrap();
        assert_eq!(clip.sample_rate_hz, SAMPLE_RATE_HZ);
        clip.samples
    }

    fn frames(samples: &[f32]) -> Vec<AudioFrame> {
        samples
            .chunks_exact(FRAME_SAMPLES)
            .map(|c| c.try_into().unwrap())
            .collect()
    }

    /// Encodes `frames` with FEC planned for `expected_loss` percent.
    fn encode_all(frames: &[AudioFrame], expected_loss: u8) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new().unwrap();
        enc.set_expected_loss(expected_loss).unwrap();
        frames.iter().map(|f| enc.encode(f).unwrap()).collect()
    }

    fn encode_with(settings: EncoderSettings, frames: &[AudioFrame]) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::with_settings(settings).unwrap();
        frames.iter().map(|f| enc.encode(f).unwrap()).collect()
    }

    /// Encodes and decodes the first 3 s of speech; returns (correlation, lag, mean
    /// packet bytes).
    fn round_trip(application: OpusApplication) -> (f64, isize, usize) {
        let input = speech();
        let frames = frames(&input[..3 * SAMPLE_RATE_HZ as usize]);
        let settings = EncoderSettings {
            application,
            ..EncoderSettings::default()
        };
        let packets = encode_with(settings, &frames);
        let mean_len = packets.iter().map(Vec::len).sum::<usize>() / packets.len();
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        let mut frame = [0.0; FRAME_SAMPLES];
        for p in &packets {
            dec.decode(p, &mut frame).unwrap();
            out.extend_from_slice(&frame);
        }
        let (ncc, lag) = normalized_cross_correlation(&input[..out.len()], &out, 480);
        (ncc, lag, mean_len)
    }

    #[test]
    fn speech_survives_encode_and_decode_after_aligning_for_the_codec_delay() {
        let lookahead = OpusEncoder::new().unwrap().lookahead_samples().unwrap();
        let (ncc, lag, mean_len) = round_trip(OpusApplication::Audio);
        assert!(ncc >= 0.9, "audio mode: correlation {ncc} at lag {lag}");
        // The decoded signal lags by the encoder's lookahead (6.5 ms).
        assert!(
            lag.unsigned_abs().abs_diff(lookahead) <= 8,
            "lag {lag}, lookahead {lookahead}"
        );
        // 32 kbit/s is 80 bytes per 20 ms on average.
        assert!(
            (60..=100).contains(&mean_len),
            "mean packet {mean_len} bytes"
        );

        // VoIP mode high-passes and shapes speech: less waveform-faithful, still close.
        let (ncc, lag, _) = round_trip(OpusApplication::Voip);
        assert!(ncc >= 0.8, "VoIP mode: correlation {ncc} at lag {lag}");
        assert!(
            lag.unsigned_abs().abs_diff(lookahead) <= 8,
            "lag {lag}, lookahead {lookahead}"
        );
    }

    /// Error energy of a frame recovered after dropping packet `lost` of packets coded
    /// for `expected_loss` percent, against the decode with no loss.
    fn recovery_error(use_fec: bool, lost: usize, expected_loss: u8) -> f64 {
        let input = speech();
        let frames = frames(&input);
        let packets = encode_all(&frames, expected_loss);

        let mut clean = OpusDecoder::new().unwrap();
        let mut lossy = OpusDecoder::new().unwrap();
        let (mut a, mut b) = ([0.0; FRAME_SAMPLES], [0.0; FRAME_SAMPLES]);
        for p in &packets[..lost] {
            clean.decode(p, &mut a).unwrap();
            lossy.decode(p, &mut b).unwrap();
        }
        clean.decode(&packets[lost], &mut a).unwrap();
        if use_fec {
            lossy.decode_fec(&packets[lost + 1], &mut b).unwrap();
        } else {
            lossy.conceal(&mut b).unwrap();
        }
        a.iter()
            .zip(&b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum()
    }

    /// Total error over several losses in voiced speech: (with FEC, with PLC).
    fn recovery_errors(expected_loss: u8) -> (f64, f64) {
        let (mut fec, mut plc) = (0.0, 0.0);
        for lost in [60, 90, 120, 150, 200] {
            fec += recovery_error(true, lost, expected_loss);
            plc += recovery_error(false, lost, expected_loss);
        }
        (fec, plc)
    }

    #[test]
    fn fec_planned_for_loss_recovers_a_lost_packet_better_than_concealment() {
        let (fec, plc) = recovery_errors(10);
        assert!(fec < plc * 0.8, "FEC error {fec} vs PLC error {plc}");
    }

    #[test]
    fn with_no_loss_expected_the_packets_carry_no_fec() {
        // The encoder spends nothing on redundancy: a lost packet's successor has
        // nothing to recover it from, and libopus conceals.
        let (fec, plc) = recovery_errors(0);
        assert!(fec > plc * 0.95, "FEC error {fec} vs PLC error {plc}");
    }

    #[test]
    fn expected_loss_takes_the_first_figure_then_averages_over_ten_seconds() {
        let t0 = Instant::now();
        let mut loss = ExpectedLoss::default();
        assert_eq!(loss.percent(), 0, "none before any figure");
        loss.add(t0, 0.1);
        assert_eq!(loss.percent(), 10);
        // Ten seconds of no loss, reported every 250 ms: e^-1 of the 10 % is left.
        for k in 1..=40 {
            loss.add(t0 + Duration::from_millis(250 * k), 0.0);
        }
        assert_eq!(loss.percent(), 4);
        // A burst of one report moves it little; the plan is capped at 20 %.
        loss.add(t0 + Duration::from_millis(10_250), 0.5);
        assert_eq!(loss.percent(), 5);
        let mut heavy = ExpectedLoss::default();
        heavy.add(t0, 0.6);
        assert_eq!(heavy.percent(), MAX_EXPECTED_LOSS_PERCENT);
    }

    #[test]
    fn the_encoder_takes_a_new_plan_and_caps_it() {
        let mut enc = OpusEncoder::new().unwrap();
        assert_eq!(enc.expected_loss(), 0);
        enc.set_expected_loss(7).unwrap();
        assert_eq!(enc.expected_loss(), 7);
        enc.set_expected_loss(90).unwrap();
        assert_eq!(enc.expected_loss(), MAX_EXPECTED_LOSS_PERCENT);
    }

    #[test]
    fn concealment_yields_one_frame() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = [1.0; FRAME_SAMPLES];
        dec.conceal(&mut out).unwrap();
        // Concealment before any packet is silence, and never the stale buffer.
        assert!(out.iter().all(|s| s.abs() < 1e-3));
    }

    #[test]
    fn garbage_and_wrong_duration_packets_are_errors() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = [0.0; FRAME_SAMPLES];
        assert!(dec.decode(&[], &mut out).is_err());
        // TOC byte config 3 (SILK NB 60 ms), code 0: one 60 ms frame.
        let err = dec.decode(&[0x18, 0, 0], &mut out).unwrap_err();
        assert!(
            matches!(err, OpusError::FrameDuration { samples: 2880 }),
            "{err}"
        );
    }
}
