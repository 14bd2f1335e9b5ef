//! An interceptor that hands inbound keyframe requests (PLI, FIR) and BYEs to the
//! application.
//!
//! webrtc 0.21 stops inbound RTCP at the end of the interceptor chain unless a packet is
//! marked [`Attribute::DeliverToApplication`]; then the local track's `poll()` yields it as
//! `OnRtcpPacket` (FIELD-NOTES; the shape follows webrtc's `examples/rtcp-processing`).

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where the forwarder sits: after every built-in interceptor, so reports, NACKs and TWCC
/// feedback have been consumed before it narrows inbound RTCP to keyframe requests.
pub const KEYFRAME_REQUEST_FORWARDER_SLOT: Slot = Slot::Custom(14_000);

/// Whether an RTCP packet asks for a keyframe: PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1).
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Whether an RTCP packet is a BYE (RFC 3550 §6.6): the peer left.
pub fn is_goodbye(packet: &dyn rtc::rtcp::Packet) -> bool {
    packet.as_any().is::<Goodbye>()
}

/// The inbound RTCP the application acts on itself.
fn for_application(packet: &dyn rtc::rtcp::Packet) -> bool {
    is_keyframe_request(packet) || is_goodbye(packet)
}

/// Passes inbound PLI/FIR/BYE on to the application and drops the rest of the inbound RTCP
/// (which the other interceptors have already acted on), keeping the attributes they
/// left on it. Outbound traffic is untouched.
#[derive(Default)]
pub struct KeyframeRequestForwarder {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| for_application(p.as_ref()))
                .cloned()
                .collect();
            let is_request = !requests.is_empty();
            msg.message.packet = Packet::Rtcp(requests);
            if is_request {
                msg.message.add(Attribute::DeliverToApplication);
            } else if msg.message.attributes.is_empty() {
                return Ok(());
            }
            // Otherwise an empty RTCP packet still carries its attributes (the congestion
            // controller's `TargetBitrateChanged`) up to webrtc, which records them in the
            // stats and drops the packet.
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
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
