//! The peers one encoded stream goes to. Capture and encode happen once; every access
//! unit and Opus packet is written to each connected peer's tracks (each with its own
//! SSRC, sequence numbers and RTP timestamps). A 1:1 call has one outlet, a mesh room
//! one per other member.
//!
//! The encoder follows the narrowest path: its budget is the lowest of the peers'
//! congestion-controlled budgets, and the keyframe guard uses the longest RTT.

use std::sync::Mutex;
use std::time::Duration;

use crate::call::peer::{AudioTrackWriter, VideoTrackWriter};

/// Which peer an outlet belongs to: unique within one [`super::LocalMedia`].
pub type PeerKey = u64;

/// One peer's tracks and the figures its congestion controller gave.
struct Outlet {
    key: PeerKey,
    video: VideoTrackWriter,
    audio: AudioTrackWriter,
    /// What this peer's path leaves for video, kbit/s.
    budget_kbps: u64,
    /// This peer's round-trip time; zero before the first figure.
    rtt: Duration,
}

/// The connected peers' tracks, written by the send threads.
#[derive(Default)]
pub(super) struct Fanout {
    outlets: Mutex<Vec<Outlet>>,
}

impl Fanout {
    fn outlets(&self) -> std::sync::MutexGuard<'_, Vec<Outlet>> {
        self.outlets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts sending to a peer, with `budget_kbps` until its controller reports.
    pub(super) fn attach(
        &self,
        key: PeerKey,
        video: VideoTrackWriter,
        audio: AudioTrackWriter,
        budget_kbps: u64,
    ) {
        let mut outlets = self.outlets();
        outlets.retain(|o| o.key != key);
        outlets.push(Outlet {
            key,
            video,
            audio,
            budget_kbps,
            rtt: Duration::ZERO,
        });
    }

    /// Stops sending to a peer. Unknown keys are ignored.
    pub(super) fn detach(&self, key: PeerKey) {
        self.outlets().retain(|o| o.key != key);
    }

    /// Records a peer's latest video budget (kbit/s) and RTT.
    pub(super) fn report(&self, key: PeerKey, budget_kbps: u64, rtt: Option<Duration>) {
        if let Some(o) = self.outlets().iter_mut().find(|o| o.key == key) {
            o.budget_kbps = budget_kbps;
            if let Some(rtt) = rtt {
                o.rtt = rtt;
            }
        }
    }

    /// The lowest budget of the connected peers, kbit/s; `None` with no peer.
    pub(super) fn budget_kbps(&self) -> Option<u64> {
        self.outlets().iter().map(|o| o.budget_kbps).min()
    }

    /// The longest RTT of the connected peers; zero before any figure.
    pub(super) fn rtt(&self) -> Duration {
        self.outlets()
            .iter()
            .map(|o| o.rtt)
            .max()
            .unwrap_or_default()
    }

    /// The video tracks to write the next access unit to.
    pub(super) fn video_writers(&self) -> Vec<VideoTrackWriter> {
        self.outlets().iter().map(|o| o.video.clone()).collect()
    }

    /// The audio tracks to write the next Opus packet to.
    pub(super) fn audio_writers(&self) -> Vec<AudioTrackWriter> {
        self.outlets().iter().map(|o| o.audio.clone()).collect()
    }
}
