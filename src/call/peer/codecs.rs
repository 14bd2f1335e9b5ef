//! The codecs we offer and answer: H.264 constrained baseline and Opus, as a browser
//! expects, and RED over Opus (RFC 2198) for audio that survives bursts of loss.
//!
//! Only these are registered, so an offer listing VP8, VP9, AV1, ULPFEC, RTX or H.264
//! with another profile or packetization-mode=0 gets an answer that keeps just the matching
//! H.264, RED and Opus payload types (with the offerer's payload type numbers, RFC 3264
//! §6.1). Our offers list RED before Opus, so two rtc-cli peers send RED; a browser's
//! offer lists Opus first, and the answer keeps its order.

use rtc::interceptor::{
    CongestionControlBuilder, Gcc, NackResponderBuilder, Registry, Slot, TwccReceiverBuilder,
    TwccSenderBuilder,
};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers,
};
use rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use webrtc::peer_connection::MediaEngine;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::link_rate::{LinkCeiling, LinkRateCapped};
use super::loss_based::{LossCell, LossLimited};
use super::nack::{NackGenerator, RETRANSMISSION_COUNTER_SLOT, RttCell, count_retransmissions};
use super::pacing::{AudioFirstPacer, PacedRate};
use super::start_ramp::StartRamp;

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
/// RED's payload type in our offers (Chromium's number).
const PT_RED: u8 = 63;

/// RED's media type (RFC 2198 §5), which webrtc does not name.
pub const MIME_TYPE_RED: &str = "audio/red";

/// RED's fmtp: the payload types of its blocks (RFC 2198 §5), Opus after Opus as
/// Chromium writes it; the number of redundant blocks is the sender's choice.
const RED_FMTP: &str = "111/111";

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

/// RED over Opus (RFC 2198): `red/48000/2`, its blocks Opus packets.
pub fn red_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_RED.to_owned(),
        clock_rate: AUDIO_CLOCK_RATE_HZ,
        channels: 2,
        sdp_fmtp_line: RED_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// Our audio codecs in order of preference, with our payload types: RED over Opus, then
/// Opus.
pub fn audio_preferences() -> Vec<RTCRtpCodecParameters> {
    vec![
        RTCRtpCodecParameters {
            rtp_codec: red_codec(),
            payload_type: PT_RED,
        },
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: PT_OPUS,
        },
    ]
}

/// Sent packets the NACK responder keeps for retransmission (a power of two): a whole
/// keyframe at 2.5 Mbit/s plus a second of P-frames.
pub const NACK_SEND_BUFFER: u16 = 2048;

/// Send-side bandwidth estimate bounds (GCC): 100 kbit/s is the floor of a useful video
/// call; the ceiling is whatever the configured video and audio bitrates add up to.
pub const MIN_ESTIMATE_BPS: f64 = 100_000.0;

/// Where the estimate starts (libwebrtc's default start bitrate): a call into a narrow
/// link must not open with a burst of loss, and GCC climbs from here within seconds.
pub const START_ESTIMATE_BPS: f64 = 300_000.0;

/// A media engine with only our codecs, and the interceptors: our RTT-aware NACK
/// generator ([`NackGenerator`], paced by `rtt`) and webrtc's NACK responder (its
/// retransmissions counted into `retransmissions`),
/// sender/receiver reports, TWCC (both
/// ways, draft-holmer-rmcat-transport-wide-cc-extensions-01) and send-side congestion
/// control (GCC, draft-ietf-rmcat-gcc-02, at most `max_bitrate_bps`) with a pacer.
/// The estimate reaches the pipeline through the outbound stats' `target_bitrate`, the
/// loss the peer's feedback reports through `loss`.
///
/// # Errors
/// Registration errors from webrtc (none happen with these fixed tables).
pub fn media_engine(
    registry: Registry,
    max_bitrate_bps: f64,
    rtt: RttCell,
    retransmissions: Arc<AtomicU64>,
    loss: LossCell,
) -> anyhow::Result<(MediaEngine, Registry)> {
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
        (red_codec(), PT_RED, RtpCodecKind::Audio),
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
    // NACK and PLI feedback are in our codecs' own `rtcp_feedback` ([`video_feedback`]).
    let registry = registry
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(NACK_SEND_BUFFER)
                .build(),
        )
        .with(Slot::NackGenerator, NackGenerator::new(rtt))
        .with(
            RETRANSMISSION_COUNTER_SLOT,
            count_retransmissions(retransmissions),
        );
    configure_simulcast_extension_headers(&mut engine)?;
    let registry = configure_rtcp_reports(registry);
    let registry = congestion_control(registry, &mut engine, max_bitrate_bps, loss)?;
    Ok((engine, registry))
}

/// Send-side congestion control, as webrtc's `configure_congestion_control` with TWCC
/// feedback sets it up (the TWCC header extension and `transport-cc` feedback for both
/// kinds, TWCC sequence numbers out, arrival reports back, GCC's delay half with our loss
/// half, [`LossLimited`], publishing its loss to `loss`), doubling at the start of a call while the link measures far
/// above it ([`StartRamp`]), with the estimate held under the link's measured rate
/// ([`LinkRateCapped`]) and our pacer ([`AudioFirstPacer`]) in place of rtc-interceptor's.
fn congestion_control(
    registry: Registry,
    engine: &mut MediaEngine,
    max_bitrate_bps: f64,
    loss: LossCell,
) -> anyhow::Result<Registry> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_feedback(feedback("transport-cc", ""), kind);
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    let max = max_bitrate_bps.max(MIN_ESTIMATE_BPS);
    let start = START_ESTIMATE_BPS.min(max);
    let link = LinkCeiling::default();
    let gcc = move |bps| {
        LossLimited::new(Gcc::new(bps, MIN_ESTIMATE_BPS, max), MIN_ESTIMATE_BPS)
            .reporting_to(loss.clone())
    };
    let ramp = StartRamp::new(gcc, start, max, link.clone());
    let controller = LinkRateCapped::new(ramp, MIN_ESTIMATE_BPS, link.clone());
    let pacer = AudioFirstPacer::new(PacedRate {
        estimate_bps: start,
        unmeasured_cap_bps: start,
        link,
    });
    Ok(registry
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(controller).build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(Slot::Pacer, pacer)
        .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build()))
}

/// The peer's SDP has a media section we cannot send or receive: no codec in common.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no common {kind} codec: the peer offers {offered}, rtc-cli sends {ours}")]
pub struct NoCommonCodec {
    /// `video` or `audio`.
    pub kind: &'static str,
    /// The peer's codecs for it, comma-separated (`none` if it lists none).
    pub offered: String,
    /// Ours: `H.264` or `Opus`.
    pub ours: &'static str,
}

/// Codecs that only protect or repair another codec's stream (RFC 4588, 2198, 5109,
/// 8627): not a choice of codec.
const REPAIR_CODECS: [&str; 5] = ["rtx", "red", "ulpfec", "flexfec-03", "cn"];

/// The payload type of `red/48000` in the first audio section of an SDP offer or answer
/// that is not rejected: what the peer's RED packets carry once negotiated (an answer
/// lists only what both sides have; an offer's RED is kept by our answer). `None`
/// without RED, or for SDP this parser cannot read.
pub fn red_payload_type(sdp: &str) -> Option<u8> {
    let parsed = rtc::sdp::SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp)).ok()?;
    let audio = parsed
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio" && m.media_name.port.value != 0)?;
    audio
        .attributes
        .iter()
        .filter(|a| a.key == "rtpmap")
        .filter_map(|a| a.value.as_deref())
        .find_map(|value| {
            let (pt, codec) = value.split_once(' ')?;
            let name = codec.split('/').next()?;
            name.eq_ignore_ascii_case("red")
                .then(|| pt.parse().ok())
                .flatten()
        })
}

/// Checks that every video and audio section of an SDP offer or answer that is not
/// rejected (port 0, RFC 3264 §6) lists H.264 or Opus respectively, so a call with a
/// peer that only has VP8, say, ends with a message that names both sides' codecs.
/// SDP this parser cannot read is left for webrtc to refuse with its own error.
///
/// # Errors
/// [`NoCommonCodec`] for the first section without a shared codec.
pub fn check_common_codecs(sdp: &str) -> Result<(), NoCommonCodec> {
    let Ok(parsed) = rtc::sdp::SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp)) else {
        return Ok(());
    };
    for media in &parsed.media_descriptions {
        let (kind, ours, name) = match media.media_name.media.as_str() {
            "video" => ("video", "H.264", "H264"),
            "audio" => ("audio", "Opus", "opus"),
            _ => continue,
        };
        if media.media_name.port.value == 0 {
            continue;
        }
        let offered: Vec<&str> = media
            .attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .filter_map(|a| {
                a.value
                    .as_deref()?
                    .split_whitespace()
                    .nth(1)?
                    .split('/')
                    .next()
            })
            .filter(|codec| !REPAIR_CODECS.iter().any(|r| r.eq_ignore_ascii_case(codec)))
            .collect();
        if !offered.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            let mut unique: Vec<&str> = Vec::new();
            for c in offered {
                if !unique.contains(&c) {
                    unique.push(c);
                }
            }
            let offered = if unique.is_empty() {
                "none".to_owned()
            } else {
                unique.join(", ")
            };
            return Err(NoCommonCodec {
                kind,
                offered,
                ours,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn sdp(sections: &[&str]) -> String {
        format!("{HEAD}{}", sections.concat())
    }

    const OPUS: &str =
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n";
    const VP8: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n";

    #[test]
    fn red_is_found_by_name_in_the_audio_section_whatever_its_number() {
        let red = "m=audio 9 UDP/TLS/RTP/SAVPF 111 100\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:100 RED/48000/2\r\na=fmtp:100 111/111\r\n";
        assert_eq!(red_payload_type(&sdp(&[red, VP8])), Some(100));
        assert_eq!(red_payload_type(&sdp(&[OPUS, VP8])), None);
        // A rejected audio section negotiates nothing.
        let rejected = red.replacen("m=audio 9", "m=audio 0", 1);
        assert_eq!(red_payload_type(&sdp(&[&rejected])), None);
        assert_eq!(red_payload_type("not sdp"), None);
    }

    #[test]
    fn a_vp8_only_peer_is_named_with_our_codec() {
        let err = check_common_codecs(&sdp(&[OPUS, VP8])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no common video codec: the peer offers VP8, rtc-cli sends H.264"
        );
    }

    #[test]
    fn a_browser_offer_and_a_rejected_section_pass() {
        let chrome = include_str!("../../../tests/fixtures/chrome_offer.sdp");
        assert_eq!(check_common_codecs(chrome), Ok(()));
        let rejected = VP8.replacen("m=video 9", "m=video 0", 1);
        assert_eq!(check_common_codecs(&sdp(&[OPUS, &rejected])), Ok(()));
    }

    #[test]
    fn audio_without_opus_is_refused_too() {
        let pcmu = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n";
        let err = check_common_codecs(&sdp(&[pcmu])).unwrap_err();
        assert_eq!((err.kind, err.offered.as_str()), ("audio", "PCMU"));
    }
}
