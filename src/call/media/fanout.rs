//! The peers one encoded stream goes to. Capture and encode happen once; every access
//! unit and Opus packet is written to each connected peer's tracks (each with its own
//! SSRC, sequence numbers and RTP timestamps). A 1:1 call has one outlet, a mesh room
//! one per other member.
//!
//! The encoders follow the narrowest path: the video budget is the lowest of the peers'
//! congestion-controlled budgets, the keyframe guard uses the longest RTT, and Opus
//! plans its FEC for the highest loss any peer reports.

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
    /// The loss to plan Opus FEC for on this peer's path, percent.
    expected_loss_percent: u8,
}

/// What one peer's congestion controller and feedback said, handed to
/// [`Fanout::report`] on every control interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PathReport {
    /// What the path leaves for video, kbit/s.
    pub budget_kbps: u64,
    /// The round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// The loss to plan Opus FEC for, percent ([`crate::media::audio::opus::ExpectedLoss`]).
    pub expected_loss_percent: u8,
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
            expected_loss_percent: 0,
        });
    }

    /// Stops sending to a peer. Unknown keys are ignored.
    pub(super) fn detach(&self, key: PeerKey) {
        self.outlets().retain(|o| o.key != key);
    }

    /// Records a peer's latest figures. Unknown keys are ignored.
    pub(super) fn report(&self, key: PeerKey, report: PathReport) {
        if let Some(o) = self.outlets().iter_mut().find(|o| o.key == key) {
            o.budget_kbps = report.budget_kbps;
            if let Some(rtt) = report.rtt {
                o.rtt = rtt;
            }
            o.expected_loss_percent = report.expected_loss_percent;
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

    /// The loss to plan Opus FEC for, percent: the highest of the connected peers'; 0
    /// with no peer.
    pub(super) fn expected_loss_percent(&self) -> u8 {
        self.outlets()
            .iter()
            .map(|o| o.expected_loss_percent)
            .max()
            .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

    use super::*;
    use crate::call::peer::codecs::{h264_codec, opus_codec};
    use crate::call::peer::media::LocalTrack;

    /// Attaches a peer with fresh, unbound tracks.
    fn attach(fanout: &Fanout, key: PeerKey, budget_kbps: u64) {
        let track = |kind, codec| Arc::new(LocalTrack::new("test", kind, codec).unwrap());
        fanout.attach(
            key,
            VideoTrackWriter(track(RtpCodecKind::Video, h264_codec())),
            AudioTrackWriter(track(RtpCodecKind::Audio, opus_codec())),
            budget_kbps,
        );
    }

    fn report(budget_kbps: u64, rtt_ms: u64, expected_loss_percent: u8) -> PathReport {
        PathReport {
            budget_kbps,
            rtt: Some(Duration::from_millis(rtt_ms)),
            expected_loss_percent,
        }
    }

    #[test]
    fn the_encoders_follow_the_narrowest_path_of_the_peers_still_attached() {
        let fanout = Fanout::default();
        assert_eq!(fanout.budget_kbps(), None);
        assert_eq!(fanout.expected_loss_percent(), 0);
        attach(&fanout, 1, 800);
        attach(&fanout, 2, 800);
        fanout.report(1, report(600, 40, 2));
        fanout.report(2, report(900, 120, 9));
        fanout.report(3, report(100, 500, 20)); // not attached: ignored
        assert_eq!(fanout.budget_kbps(), Some(600));
        assert_eq!(fanout.rtt(), Duration::from_millis(120));
        assert_eq!(fanout.expected_loss_percent(), 9);
        assert_eq!(fanout.audio_writers().len(), 2);

        fanout.detach(2);
        assert_eq!(fanout.expected_loss_percent(), 2);
        assert_eq!(fanout.rtt(), Duration::from_millis(40));
        assert_eq!(fanout.video_writers().len(), 1);
    }
}
