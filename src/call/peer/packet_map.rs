//! The shape of our small interceptors: each changes or drops the packets of one
//! direction with one function and passes the other direction untouched (sans-I/O:
//! packets are queued between `handle_*` and `poll_*`, webrtc 0.21's `Protocol`
//! contract).

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Which packets a [`PacketMap`] applies its function to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets from the network to the application (`handle_read`).
    Inbound,
    /// Packets from the application to the network (`handle_write`).
    Outbound,
}

/// An interceptor that passes each packet of one [`Direction`] through `map` (`None`
/// drops it).
pub struct PacketMap<F> {
    direction: Direction,
    map: F,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<F> PacketMap<F>
where
    F: FnMut(TaggedPacket) -> Option<TaggedPacket>,
{
    /// An interceptor applying `map` to the packets going in `direction`.
    pub fn new(direction: Direction, map: F) -> Self {
        Self {
            direction,
            map,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    fn pass(&mut self, direction: Direction, msg: TaggedPacket) {
        let msg = if direction == self.direction {
            (self.map)(msg)
        } else {
            Some(msg)
        };
        let queue = match direction {
            Direction::Inbound => &mut self.read_queue,
            Direction::Outbound => &mut self.write_queue,
        };
        queue.extend(msg);
    }
}

impl<F> Protocol<TaggedPacket, TaggedPacket, ()> for PacketMap<F>
where
    F: FnMut(TaggedPacket) -> Option<TaggedPacket>,
{
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.pass(Direction::Inbound, msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.pass(Direction::Outbound, msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl<F> Interceptor for PacketMap<F>
where
    F: FnMut(TaggedPacket) -> Option<TaggedPacket> + Send + Sync,
{
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
