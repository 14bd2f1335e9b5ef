//! The codecs we offer and answer: H.264 constrained baseline and Opus, as a browser expects.
//!
//! Only these are registered, so an offer listing VP8, VP9, AV1, RED, ULPFEC, RTX or H.264
//! with another profile or packetization-mode=0 gets an answer that keeps just the matching
//! H.264 and Opus payload types (with the offerer's payload type numbers, RFC 3264 §6.1).

use rtc::interceptor::Registry;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use webrtc::peer_connection::{MediaEngine, register_default_interceptors};

pub use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};

/// H.264 fmtp we prefer: constrained baseline level 3.1 (`42e01f`), non-interleaved mode
/// (RFC 6184 §8.1). openh264 produces this profile.
pub const H264_FMTP_CONSTRAINED_BASELINE: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
/// H.264 fmtp also accepted: baseline level 3.1 (`42001f`), which browsers list first.
/// A constrained-baseline stream is a valid baseline stream (H.264 Annex A.2.1).
pub const H264_FMTP_BASELINE: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f";
/// Opus fmtp as browsers send it (RFC 7587 §6.1): 10 ms minimum packet time, in-band FEC.
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

/// Payload types of our own offers (dynamic range, RFC 3551 §3; numbers as browsers use).
const PT_H264_CONSTRAINED_BASELINE: u8 = 102;
const PT_H264_BASELINE: u8 = 104;
const PT_OPUS: u8 = 111;

/// RTP clock rates: 90 kHz for video (RFC 6184 §8.2.1), 48 kHz for Opus (RFC 7587 §4.1).
pub const VIDEO_CLOCK_RATE_HZ: u32 = 90_000;
/// See [`VIDEO_CLOCK_RATE_HZ`].
pub const AUDIO_CLOCK_RATE_HZ: u32 = 48_000;

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

/// Video RTCP feedback (RFC 4585 §4.2, RFC 5104 §7.1): NACK, PLI and FIR.
fn video_feedback() -> Vec<RTCPFeedback> {
    vec![
        feedback("nack", ""),
        feedback("nack", "pli"),
        feedback("ccm", "fir"),
    ]
}

/// The H.264 codec our video track sends: constrained baseline, packetization-mode 1.
pub fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: VIDEO_CLOCK_RATE_HZ,
        channels: 0,
        sdp_fmtp_line: H264_FMTP_CONSTRAINED_BASELINE.to_owned(),
        rtcp_feedback: video_feedback(),
    }
}

/// The Opus codec our audio track sends: `opus/48000/2` as SDP requires (RFC 7587 §7),
/// whatever the number of channels actually encoded.
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: AUDIO_CLOCK_RATE_HZ,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// A media engine with only our codecs, and the default interceptors (NACK generator and
/// responder, sender/receiver reports, TWCC receiver) registered on `registry`.
///
/// # Errors
/// Registration errors from webrtc (none happen with these fixed tables).
pub fn media_engine(registry: Registry) -> anyhow::Result<(MediaEngine, Registry)> {
    let mut engine = MediaEngine::default();
    let baseline = RTCRtpCodec {
        sdp_fmtp_line: H264_FMTP_BASELINE.to_owned(),
        ..h264_codec()
    };
    for (codec, payload_type, kind) in [
        (
            h264_codec(),
            PT_H264_CONSTRAINED_BASELINE,
            RtpCodecKind::Video,
        ),
        (baseline, PT_H264_BASELINE, RtpCodecKind::Video),
        (opus_codec(), PT_OPUS, RtpCodecKind::Audio),
    ] {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type,
            },
            kind,
        )?;
    }
    let registry = register_default_interceptors(registry, &mut engine)?;
    Ok((engine, registry))
}
