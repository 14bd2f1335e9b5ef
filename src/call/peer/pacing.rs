//! Pacing headroom: the pacer sends at [`PACING_FACTOR`] times the congestion
//! controller's estimate, as libwebrtc's does (`kDefaultPaceMultiplier`).
//!
//! rtc-interceptor's pacer paces at exactly the estimate ("no hidden headroom"). At call
//! bitrates that holds a 6 KB frame for 50 ms and a keyframe for several hundred: frames
//! complete late and unevenly, which the receiver's jitter buffer must then absorb as
//! added delay. The pacer's job is only to break bursts up; the encoder's rate control
//! keeps the average under the estimate. So the estimate the pacer reads is scaled up
//! on its way to it ([`ScaleTargetBitrate`] between the congestion controller and the
//! pacer) and back down past it, so the stats still show the estimate itself.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Slot, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// How much faster than the estimate the pacer may send (libwebrtc: 2.5).
pub const PACING_FACTOR: f64 = 2.5;

/// Just application-ward of the congestion controller and the TWCC sender, before the
/// pacer (rtc-interceptor: 1 000, 2 000, 3 000).
pub const SCALE_UP_SLOT: Slot = Slot::Custom(2_500);
/// Just application-ward of the pacer.
pub const SCALE_DOWN_SLOT: Slot = Slot::Custom(3_500);

/// Multiplies the `TargetBitrateChanged` estimate riding inbound packets by a factor.
pub struct ScaleTargetBitrate {
    factor: f64,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl ScaleTargetBitrate {
    /// Scales by `factor` (> 0).
    pub fn new(factor: f64) -> Self {
        Self {
            factor,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for ScaleTargetBitrate {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        for attribute in &mut msg.message.attributes {
            if let Attribute::TargetBitrateChanged { bits_per_second } = attribute {
                *bits_per_second *= self.factor;
            }
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

impl Interceptor for ScaleTargetBitrate {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Packet};
    use rtc::shared::TransportContext;

    #[test]
    fn the_estimate_is_scaled_and_everything_else_passes() {
        let mut up = ScaleTargetBitrate::new(PACING_FACTOR);
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
