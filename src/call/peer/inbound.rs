//! The shape of our small interceptors: each changes or drops inbound packets with one
//! function and passes outbound ones untouched (sans-I/O: packets are queued between
//! `handle_*` and `poll_*`, webrtc 0.21's `Protocol` contract).

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// An interceptor that passes each inbound packet through `map` (`None` drops it).
pub struct InboundMap<F> {
    map: F,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<F> InboundMap<F>
where
    F: FnMut(TaggedPacket) -> Option<TaggedPacket>,
{
    /// An interceptor applying `map` to inbound packets.
    pub fn new(map: F) -> Self {
        Self {
            map,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl<F> Protocol<TaggedPacket, TaggedPacket, ()> for InboundMap<F>
where
    F: FnMut(TaggedPacket) -> Option<TaggedPacket>,
{
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(msg) = (self.map)(msg) {
            self.read_queue.push_back(msg);
        }
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

impl<F> Interceptor for InboundMap<F>
where
    F: FnMut(TaggedPacket) -> Option<TaggedPacket> + Send + Sync,
{
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
