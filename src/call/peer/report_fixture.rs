//! TWCC packet reports for the congestion-control tests ([`super::link_rate`],
//! [`super::loss_based`], [`super::start_ramp`]).

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

/// A report of packet `id` (its TWCC and RTP sequence numbers too) of `size` bytes, sent
/// `sent_ms` after `t0` and arrived at `arrived_ms` on the receiver's clock, or lost.
pub(super) fn report(
    id: u64,
    size: usize,
    t0: Instant,
    sent_ms: f64,
    arrived_ms: Option<f64>,
) -> PacketReport {
    PacketReport {
        ssrc: 1,
        id,
        rtp_sequence_number: id as u16,
        is_twcc: true,
        twcc_sequence_number: id as u16,
        size,
        arrived: arrived_ms.is_some(),
        departure: t0 + Duration::from_secs_f64(sent_ms / 1000.0),
        arrival: arrived_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
        ecn: Ecn::default(),
    }
}
