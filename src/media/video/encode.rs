//! H.264 encoding of I420 frames with openh264, tuned for real-time calls.
//!
//! Constrained Baseline at level 3.1 (what SDP `profile-level-id=42e01f` announces, and
//! what every WebRTC peer decodes), bitrate rate control, no frame skipping, one slice
//! per frame (RTP fragments it with FU-A), SPS and PPS repeated before every IDR so a
//! receiver can join at any keyframe.

use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level,
    Profile, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264_sys2 as sys;

use super::frame::I420Frame;

/// openh264's largest picture: 3840 on the long side, 2160 on the short one.
const MAX_LONG_SIDE: u32 = 3840;
const MAX_SHORT_SIDE: u32 = 2160;
/// A periodic IDR every this many seconds, so a receiver whose PLI got lost recovers.
const KEYFRAME_PERIOD_SECONDS: u32 = 10;
/// How far under [`coarse_start_bpp`] an encoder's first IDR is rated, for rounding.
const COARSE_START_MARGIN: f64 = 0.9;

/// What the encoder produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Picture width in pixels; even, at most 3840 (2160 if it is the short side).
    pub width: u32,
    /// Picture height in pixels; even, same limits.
    pub height: u32,
    /// Frames per second the caller feeds (rate control spreads the bitrate over them).
    pub fps: u32,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
}

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// NAL units with 4-byte Annex-B start codes (`00 00 00 01`), as
    /// `TrackLocalStaticSample` takes them. Empty only if openh264 skipped the frame
    /// (it should not: frame skipping is off), in which case nothing is sent.
    pub annexb: Vec<u8>,
    /// An IDR picture (with SPS and PPS in front): decodable without earlier frames.
    pub keyframe: bool,
}

/// Why encoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The settings cannot be encoded (odd or oversized picture, zero fps or bitrate).
    #[error("invalid H.264 encoder settings: {0}")]
    Settings(String),
    /// The frame is not the configured size; scale it first.
    #[error("frame is {got:?} but the encoder is set up for {expected:?}; scale it first")]
    FrameSize {
        /// The configured (width, height).
        expected: (u32, u32),
        /// The frame's (width, height).
        got: (u32, u32),
    },
    /// openh264 reported an error.
    #[error("openh264 encoder: {0}")]
    Codec(String),
}

/// A real-time H.264 encoder for frames of one size.
///
/// Its first IDR is encoded at openh264's coarsest start quantizer (QP 34-36: the
/// encoder is made at a bitrate under the lowest bits-per-pixel class of openh264's
/// `RcInitIdrQp`) and the configured bitrate applies from the second frame on:
/// that IDR goes out before any bandwidth estimate, into links whose queue may hold less
/// than it (a 320x240 IDR at 200 kbit/s is 7.7 kB at openh264's finer start, 4.0 kB at
/// the coarse one, against the 3.75 kB a 100 ms queue at 300 kbit/s holds).
pub struct H264Encoder {
    inner: Encoder,
    settings: EncoderSettings,
    /// The bitrate openh264 runs at now, kbit/s: the coarse start's until the first frame
    /// is out, `settings.bitrate_kbps` after it.
    running_kbps: u32,
    /// Frames encoded so far (gives openh264 its millisecond timestamps).
    frames: u64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("settings", &self.settings)
            .field("running_kbps", &self.running_kbps)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// An encoder for `settings`; its first frame is an IDR.
    ///
    /// # Errors
    /// [`EncodeError::Settings`] for settings openh264 cannot encode,
    /// [`EncodeError::Codec`] if openh264 fails to start.
    pub fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        validate(&settings)?;
        let running_kbps = coarse_start_kbps(&settings);
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .level(Level::Level_3_1)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            // openh264's own default and libwebrtc's (GetDefaultParams: LOW_COMPLEXITY);
            // the crate's is Medium. On the fixture clip at 640x480 it encodes about 10 %
            // faster, and a call's sender spends most of its CPU here.
            .complexity(Complexity::Low)
            .bitrate(BitRate::from_bps(running_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                settings.fps.saturating_mul(KEYFRAME_PERIOD_SECONDS),
            ))
            // One thread: predictable latency on a shared machine, and 640x480 takes ~2 ms.
            .num_threads(1);
        let inner = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| EncodeError::Codec(e.to_string()))?;
        Ok(Self {
            inner,
            settings,
            running_kbps,
            frames: 0,
        })
    }

    /// The settings this encoder was made with.
    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// Encodes one frame; `force_keyframe` makes it an IDR (as [`Self::force_intra_frame`]).
    ///
    /// # Errors
    /// [`EncodeError::FrameSize`] for a frame of another size, [`EncodeError::Codec`]
    /// when openh264 fails.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, EncodeError> {
        let expected = (self.settings.width, self.settings.height);
        let got = (frame.width(), frame.height());
        if got != expected {
            return Err(EncodeError::FrameSize { expected, got });
        }
        if force_keyframe {
            self.force_intra_frame();
        }
        let millis = self.frames * 1000 / u64::from(self.settings.fps);
        self.frames += 1;
        let stream = self
            .inner
            .encode_at(&I420View(frame), Timestamp::from_millis(millis))
            .map_err(|e| EncodeError::Codec(e.to_string()))?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        let encoded = EncodedFrame {
            annexb: stream.to_vec(),
            keyframe,
        };
        if self.running_kbps != self.settings.bitrate_kbps
            && let Err(e) = self.apply_bitrate(self.settings.bitrate_kbps)
        {
            // The frame is good; the next one tries again.
            tracing::warn!("after the first frame: {e}");
        }
        Ok(encoded)
    }

    /// Makes the next frame an IDR (on a PLI or FIR from the receiver).
    pub fn force_intra_frame(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Changes the target bitrate (kbit/s, non-zero) for the frames to come, as the
    /// congestion controller asks; no keyframe is forced. Before the first frame it takes
    /// effect once that frame (the coarse-start IDR) is out.
    ///
    /// # Errors
    /// [`EncodeError::Settings`] for 0 kbit/s, [`EncodeError::Codec`] if openh264
    /// refuses the option.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        let settings = EncoderSettings {
            bitrate_kbps: kbps,
            ..self.settings
        };
        validate(&settings)?;
        self.settings = settings;
        if self.frames == 0 {
            return Ok(());
        }
        self.apply_bitrate(kbps)
    }

    /// Sets openh264's running bitrate (kbit/s, validated non-zero) once it has encoded
    /// a frame.
    fn apply_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        let bps = i32::try_from(u64::from(kbps) * 1000).unwrap_or(i32::MAX);
        // The layer's maximum first when going up (openh264 rejects a target above it),
        // the target first when going down.
        let options = if kbps > self.running_kbps {
            [sys::ENCODER_OPTION_MAX_BITRATE, sys::ENCODER_OPTION_BITRATE]
        } else {
            [sys::ENCODER_OPTION_BITRATE, sys::ENCODER_OPTION_MAX_BITRATE]
        };
        for option in options {
            // Our one spatial layer: with SPATIAL_LAYER_ALL openh264 refuses any maximum
            // above the bitrate the encoder was made with.
            let mut info = sys::SBitrateInfo {
                iLayer: sys::SPATIAL_LAYER_0,
                iBitrate: bps,
            };
            // SAFETY: the encoder was initialized by its first frame; both options take a
            // pointer to an `SBitrateInfo` that lives across the call (codec_api.h).
            let status = unsafe {
                self.inner
                    .raw_api()
                    .set_option(option, (&raw mut info).cast())
            };
            if status != 0 {
                return Err(EncodeError::Codec(format!(
                    "setting the bitrate to {kbps} kbit/s failed ({status})"
                )));
            }
        }
        self.running_kbps = kbps;
        Ok(())
    }
}

/// The bits per pixel at or under which openh264 gives a new encoder's first IDR its
/// coarsest start quantizer (QP 34-36), by picture area in pixels: openh264's
/// `RcInitIdrQp` (codec/encoder/core/src/ratectl.cpp, `dBppArray[..][0]`, the search
/// starting there with `bFixRCOverShoot`). Above it the start is 4-8 QP finer, and the
/// IDR about twice the bytes.
fn coarse_start_bpp(area: u32) -> f64 {
    match area {
        0..=28_800 => 0.25,
        28_801..=115_200 => 0.1,
        115_201..=460_800 => 0.03,
        _ => 0.01,
    }
}

/// The bitrate (kbit/s, at least 1) to make an encoder for `s` at: the configured one,
/// or under [`coarse_start_bpp`] if that is lower.
fn coarse_start_kbps(s: &EncoderSettings) -> u32 {
    let area = s.width * s.height;
    let coarse = coarse_start_bpp(area) * f64::from(area) * f64::from(s.fps) * COARSE_START_MARGIN;
    s.bitrate_kbps.min((coarse / 1000.0) as u32).max(1)
}

fn validate(s: &EncoderSettings) -> Result<(), EncodeError> {
    let bad = |m: String| Err(EncodeError::Settings(m));
    let (long, short) = (s.width.max(s.height), s.width.min(s.height));
    if s.width == 0 || s.height == 0 || s.width % 2 == 1 || s.height % 2 == 1 {
        return bad(format!(
            "{}x{}: sides must be even and non-zero",
            s.width, s.height
        ));
    }
    if long > MAX_LONG_SIDE || short > MAX_SHORT_SIDE {
        return bad(format!(
            "{}x{}: larger than {MAX_LONG_SIDE}x{MAX_SHORT_SIDE}",
            s.width, s.height
        ));
    }
    if s.fps == 0 || s.bitrate_kbps == 0 {
        return bad(format!(
            "fps {} and bitrate {} kbit/s must be non-zero",
            s.fps, s.bitrate_kbps
        ));
    }
    Ok(())
}

/// Our packed I420 as openh264 reads it (strides equal plane widths). Sides are even,
/// which [`validate`] and the size check in [`H264Encoder::encode`] guarantee.
struct I420View<'a>(&'a I420Frame);

impl YUVSource for I420View<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width() as usize, self.0.height() as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let chroma = self.0.chroma_size().0 as usize;
        (self.0.width() as usize, chroma, chroma)
    }

    fn y(&self) -> &[u8] {
        self.0.y()
    }

    fn u(&self) -> &[u8] {
        self.0.u()
    }

    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

/// The NAL unit types in an Annex-B buffer, in order (for tests and logs).
pub fn nal_unit_types(annexb: &[u8]) -> Vec<u8> {
    openh264::nal_units(annexb)
        .filter_map(|nal| {
            let body = nal.iter().position(|&b| b != 0).map(|i| &nal[i + 1..])?;
            body.first().map(|h| h & 0x1F)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::TestPattern;

    fn settings(width: u32, height: u32) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            fps: 30,
            bitrate_kbps: 500,
        }
    }

    #[test]
    fn first_frame_is_an_idr_with_sps_and_pps_then_p_frames() {
        let pattern = TestPattern::new(320, 240).unwrap();
        let mut enc = H264Encoder::new(settings(320, 240)).unwrap();
        let first = enc.encode(&pattern.render(0), false).unwrap();
        assert!(first.keyframe);
        assert!(first.annexb.starts_with(&[0, 0, 0, 1]));
        assert_eq!(nal_unit_types(&first.annexb), vec![7, 8, 5]);
        // SPS: profile_idc 66 (Baseline) with constraint_set1 (Constrained Baseline,
        // what 42e01f means), level_idc <= 31 (3.1).
        let sps = &first.annexb[4..];
        assert_eq!(sps[1], 66);
        assert_ne!(sps[2] & 0x40, 0, "constraint_set1_flag");
        assert!(sps[3] <= 31, "level_idc {}", sps[3]);
        for c in 1..5 {
            let next = enc.encode(&pattern.render(c), false).unwrap();
            assert!(!next.keyframe);
            assert_eq!(nal_unit_types(&next.annexb), vec![1]);
        }
    }

    #[test]
    fn forced_keyframes_are_idrs() {
        let pattern = TestPattern::new(320, 240).unwrap();
        let mut enc = H264Encoder::new(settings(320, 240)).unwrap();
        enc.encode(&pattern.render(0), false).unwrap();
        enc.encode(&pattern.render(1), false).unwrap();
        let forced = enc.encode(&pattern.render(2), true).unwrap();
        assert!(forced.keyframe);
        assert!(nal_unit_types(&forced.annexb).contains(&5));
        assert!(!enc.encode(&pattern.render(3), false).unwrap().keyframe);
        enc.force_intra_frame();
        assert!(enc.encode(&pattern.render(4), false).unwrap().keyframe);
    }

    /// The fixture clip (320x240, 31 frames) played forward then back, endlessly: real
    /// footage with no cut at the loop (a cut would make openh264 choose a keyframe).
    fn clip_ping_pong() -> impl Iterator<Item = I420Frame> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clip_320x240.y4m"
        );
        let mut reader = crate::media::video::y4m::Y4mReader::open(path).unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = reader.read_frame().unwrap() {
            frames.push(frame);
        }
        let back: Vec<I420Frame> = frames[1..frames.len() - 1].iter().rev().cloned().collect();
        frames.extend(back);
        frames.into_iter().cycle()
    }

    #[test]
    fn a_lower_bitrate_at_run_time_makes_smaller_frames_without_a_keyframe() {
        let mut clip = clip_ping_pong();
        let mut enc = H264Encoder::new(EncoderSettings {
            bitrate_kbps: 1500,
            ..settings(320, 240)
        })
        .unwrap();
        let mut bytes = |enc: &mut H264Encoder, range: std::ops::Range<u32>| -> usize {
            range
                .map(|c| {
                    let f = enc.encode(&clip.next().unwrap(), false).unwrap();
                    assert!(!f.keyframe || c == 0, "frame {c} is a keyframe");
                    f.annexb.len()
                })
                .sum()
        };
        bytes(&mut enc, 0..30);
        let high = bytes(&mut enc, 30..90);
        enc.set_bitrate(100).unwrap();
        bytes(&mut enc, 90..120);
        let low = bytes(&mut enc, 120..180);
        // 60 frames at 30 fps are 2 s: 100 kbit/s allow 25 000 bytes.
        assert!(
            low * 3 < high,
            "{low} bytes at 100 kbit/s vs {high} at 1500"
        );
        assert!(low < 25_000 * 3 / 2, "{low} bytes in 2 s at 100 kbit/s");
        assert_eq!(enc.settings().bitrate_kbps, 100);
        assert!(matches!(enc.set_bitrate(0), Err(EncodeError::Settings(_))));
        // And back up, above the bitrate the encoder was made with.
        enc.set_bitrate(3000).unwrap();
        bytes(&mut enc, 180..210);
        let again = bytes(&mut enc, 210..270);
        assert!(
            again > low * 3,
            "{again} bytes at 3000 kbit/s vs {low} at 100"
        );
    }

    #[test]
    fn the_first_idr_starts_coarse_and_the_bitrate_applies_after_it() {
        let clip = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clip_320x240.y4m"
        );
        // (first IDR bytes, bytes of the next 2 s) at a bitrate, on real footage.
        let run = |kbps: u32| {
            let mut reader = crate::media::video::y4m::Y4mReader::open(clip).unwrap();
            let mut enc = H264Encoder::new(EncoderSettings {
                width: 320,
                height: 240,
                fps: 15,
                bitrate_kbps: kbps,
            })
            .unwrap();
            let mut sizes = (0..31).map(|_| {
                let frame = reader
                    .read_frame()
                    .unwrap()
                    .expect("the clip has 31 frames");
                enc.encode(&frame, false).unwrap().annexb.len()
            });
            let first = sizes.next().unwrap();
            (first, sizes.sum::<usize>())
        };
        let (idr_low, rest_low) = run(100);
        let (idr_high, rest_high) = run(400);
        // openh264 alone starts 400 kbit/s at QP 26: an IDR near three times the bytes.
        assert!(
            idr_high <= idr_low * 5 / 4,
            "first IDR {idr_high} bytes at 400 kbit/s vs {idr_low} at 100"
        );
        assert!(idr_low < 5_000, "first IDR {idr_low} bytes at 100 kbit/s");
        // 2 s at 100 kbit/s are 25 000 bytes; 400 kbit/s must be spent from frame two.
        assert!(
            rest_high > rest_low * 2,
            "{rest_high} bytes in 2 s at 400 kbit/s vs {rest_low} at 100"
        );
    }

    #[test]
    fn frames_of_another_size_are_rejected() {
        let mut enc = H264Encoder::new(settings(320, 240)).unwrap();
        let frame = I420Frame::filled(640, 480, (16, 128, 128)).unwrap();
        assert_eq!(
            enc.encode(&frame, false),
            Err(EncodeError::FrameSize {
                expected: (320, 240),
                got: (640, 480)
            })
        );
    }

    #[test]
    fn impossible_settings_are_rejected() {
        for s in [
            settings(321, 240),
            settings(320, 0),
            settings(4096, 2160),
            EncoderSettings {
                fps: 0,
                ..settings(320, 240)
            },
            EncoderSettings {
                bitrate_kbps: 0,
                ..settings(320, 240)
            },
        ] {
            assert!(
                matches!(H264Encoder::new(s), Err(EncodeError::Settings(_))),
                "{s:?}"
            );
        }
    }
}
