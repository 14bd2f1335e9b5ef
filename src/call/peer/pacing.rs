//! Pacing headroom: the pacer sends at [`PACING_FACTOR`] times the congestion
//! controller's estimate, as libwebrtc's does (`kDefaultPaceMultiplier`).
//!
//! rtc-interceptor's pacer paces at exactly the estimate ("no hidden headroom"). At call
//! bitrates that holds a 6 KB frame for 50 ms and a keyframe for several hundred: frames
//! complete late and unevenly, which the receiver's jitter buffer must then absorb as
//! added delay. The pacer's job is only to break bursts up; the encoder's rate control
//! keeps the average under the estimate. So the estimate the pacer reads is scaled up
//! on its way to it ([`scale_target_bitrate`] between the congestion controller and the
//! pacer) and back down past it, so the stats still show the estimate itself.

use rtc::interceptor::{Attribute, Slot, TaggedPacket};

use super::packet_map::{Direction, PacketMap};

/// How much faster than the estimate the pacer may send (libwebrtc: 2.5).
pub const PACING_FACTOR: f64 = 2.5;

/// Just application-ward of the congestion controller and the TWCC sender, before the
/// pacer (rtc-interceptor: 1 000, 2 000, 3 000).
pub const SCALE_UP_SLOT: Slot = Slot::Custom(2_500);
/// Just application-ward of the pacer.
pub const SCALE_DOWN_SLOT: Slot = Slot::Custom(3_500);

/// An interceptor that multiplies the `TargetBitrateChanged` estimate riding inbound
/// packets by `factor`; everything else passes untouched.
pub fn scale_target_bitrate(
    factor: f64,
) -> PacketMap<impl FnMut(TaggedPacket) -> Option<TaggedPacket> + Send + Sync + 'static> {
    PacketMap::new(Direction::Inbound, move |mut msg: TaggedPacket| {
        for attribute in &mut msg.message.attributes {
            if let Attribute::TargetBitrateChanged { bits_per_second } = attribute {
                *bits_per_second *= factor;
            }
        }
        Some(msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Packet};
    use rtc::shared::TransportContext;

    #[test]
    fn the_estimate_is_scaled_and_everything_else_passes() {
        use rtc::sansio::Protocol;
        use std::time::Instant;
        let mut up = scale_target_bitrate(PACING_FACTOR);
        let packet =
            AttributedPacket::new(Packet::Rtcp(vec![])).with(Attribute::TargetBitrateChanged {
                bits_per_second: 400_000.0,
            });
        up.handle_read(TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: packet,
        })
        .unwrap();
        let out = up.poll_read().unwrap();
        assert!(matches!(
            out.message.attributes[..],
            [Attribute::TargetBitrateChanged { bits_per_second }] if bits_per_second == 1_000_000.0
        ));
        assert!(up.poll_read().is_none());
    }
}
