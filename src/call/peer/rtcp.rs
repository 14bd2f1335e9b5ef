//! An interceptor that hands inbound keyframe requests (PLI, FIR) and BYEs to the
//! application.
//!
//! webrtc 0.21 stops inbound RTCP at the end of the interceptor chain unless a packet is
//! marked [`Attribute::DeliverToApplication`]; then the local track's `poll()` yields it as
//! `OnRtcpPacket` (FIELD-NOTES; the shape follows webrtc's `examples/rtcp-processing`).

use rtc::interceptor::{Attribute, Packet, Slot, TaggedPacket};
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use super::packet_map::{Direction, PacketMap};
use crate::media::video::jitter::KeyframeRequest;

/// Where the forwarder sits: after every built-in interceptor, so reports, NACKs and TWCC
/// feedback have been consumed before it narrows inbound RTCP to keyframe requests.
pub const KEYFRAME_REQUEST_FORWARDER_SLOT: Slot = Slot::Custom(14_000);

/// Whether an RTCP packet asks for a keyframe: PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1).
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    keyframe_request(packet).is_some()
}

/// The keyframe request an RTCP packet makes, if it is one.
pub fn keyframe_request(packet: &dyn rtc::rtcp::Packet) -> Option<KeyframeRequest> {
    let any = packet.as_any();
    if any.is::<FullIntraRequest>() {
        Some(KeyframeRequest::Fir)
    } else {
        any.is::<PictureLossIndication>()
            .then_some(KeyframeRequest::Pli)
    }
}

/// Whether an RTCP packet is a BYE (RFC 3550 §6.6): the peer left.
pub fn is_goodbye(packet: &dyn rtc::rtcp::Packet) -> bool {
    packet.as_any().is::<Goodbye>()
}

/// The inbound RTCP the application acts on itself.
fn for_application(packet: &dyn rtc::rtcp::Packet) -> bool {
    is_keyframe_request(packet) || is_goodbye(packet)
}

/// Passes inbound PLI/FIR/BYE on to the application and drops the rest of the inbound
/// RTCP (which the other interceptors have already acted on), keeping the attributes
/// they left on it: an empty RTCP packet still carries them (the congestion
/// controller's `TargetBitrateChanged`) up to webrtc, which records them in the stats
/// and drops the packet. RTP and outbound traffic pass untouched.
pub fn keyframe_request_forwarder()
-> PacketMap<impl FnMut(TaggedPacket) -> Option<TaggedPacket> + Send + Sync + 'static> {
    PacketMap::new(Direction::Inbound, forward_to_application)
}

fn forward_to_application(mut msg: TaggedPacket) -> Option<TaggedPacket> {
    let Packet::Rtcp(packets) = &msg.message.packet else {
        return Some(msg);
    };
    let wanted: Vec<Box<dyn rtc::rtcp::Packet>> = packets
        .iter()
        .filter(|p| for_application(p.as_ref()))
        .cloned()
        .collect();
    let deliver = !wanted.is_empty();
    msg.message.packet = Packet::Rtcp(wanted);
    if deliver {
        msg.message.add(Attribute::DeliverToApplication);
    } else if msg.message.attributes.is_empty() {
        return None;
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::receiver_report::ReceiverReport;

    #[test]
    fn pli_and_fir_are_keyframe_requests_and_reports_are_not() {
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        assert!(is_keyframe_request(&pli));
        assert!(is_keyframe_request(&FullIntraRequest::default()));
        assert!(!is_keyframe_request(&ReceiverReport::default()));
        assert!(is_goodbye(&Goodbye::default()));
        assert!(!is_goodbye(&pli));
    }
}
