//! Two calls' media pipelines wired to each other in-process on 127.0.0.1 (SDP and
//! ICE candidates handed across directly, as the server would relay them): when the
//! receiver loses its decoder state, video resumes within 1 s through a PLI and a
//! keyframe.

mod common;

use std::time::{Duration, Instant};

use common::settings::loopback_media;
use rtc_cli::call::media::{MediaCall, MediaEvent, VideoSlots};
use rtc_cli::call::peer::PeerEvent;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

struct Side {
    media: MediaCall,
    events: mpsc::Receiver<MediaEvent>,
    slots: VideoSlots,
    connected: bool,
}

async fn side() -> Side {
    let (tx, events) = mpsc::channel(64);
    let slots = VideoSlots::new();
    let media = MediaCall::start(&loopback_media((320, 240), 30, 500), &slots, tx)
        .await
        .unwrap();
    Side {
        media,
        events,
        slots,
        connected: false,
    }
}

/// Relays candidates between the two sides and starts sending on connect, until both
/// are connected.
async fn relay_until_connected(a: &mut Side, b: &mut Side) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(a.connected && b.connected) {
        let (ev, from_a) = tokio::select! {
            ev = a.events.recv() => (ev, true),
            ev = b.events.recv() => (ev, false),
            _ = tokio::time::sleep_until(deadline) => panic!("not connected within {WAIT:?}"),
        };
        let (me, other) = if from_a {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        match ev.expect("media events open") {
            MediaEvent::Peer(PeerEvent::LocalCandidate(c)) => {
                other.media.peer().add_remote_candidate(&c).await.unwrap();
            }
            MediaEvent::Peer(PeerEvent::Connected) => {
                me.media.start_sending();
                me.connected = true;
            }
            MediaEvent::Peer(PeerEvent::Failed(stage)) => panic!("{stage:?} failed"),
            _ => {}
        }
    }
}

/// Waits until the remote slot holds a picture (`true`) or is blank (`false`),
/// returning when it did.
async fn slot_becomes(rx: &mut rtc_cli::media::video::FrameReceiver, picture: bool) -> Instant {
    loop {
        if rx.borrow_and_update().is_some() == picture {
            return Instant::now();
        }
        tokio::time::timeout(WAIT, rx.changed())
            .await
            .expect("the slot changed within the wait")
            .expect("slot open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_resumes_within_a_second_after_the_decoder_loses_its_state() {
    let mut caller = side().await;
    let mut callee = side().await;
    let offer = caller.media.peer().create_offer().await.unwrap();
    let answer = callee.media.peer().accept_offer(&offer).await.unwrap();
    caller.media.peer().accept_answer(&answer).await.unwrap();
    relay_until_connected(&mut caller, &mut callee).await;

    let mut remote = callee.slots.remote.subscribe();
    slot_becomes(&mut remote, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = callee.media.final_stats().await;
    assert!(before.frames_decoded > 5, "video flows: {before:?}");

    let restarted = Instant::now();
    callee.media.restart_video_decoder();
    // The receive thread blanks the picture when it drops the decoder state; the next
    // picture can only come from the keyframe the PLI asked for.
    slot_becomes(&mut remote, false).await;
    let resumed = slot_becomes(&mut remote, true).await;
    let gap = resumed - restarted;
    eprintln!("video resumed {gap:?} after the decoder restart");
    assert!(gap < Duration::from_secs(1), "video took {gap:?} to resume");

    let after_rx = callee.media.final_stats().await;
    let after_tx = caller.media.final_stats().await;
    assert!(
        after_rx.pli_sent > before.pli_sent,
        "a PLI was sent: {after_rx:?}"
    );
    assert!(
        after_tx.keyframes_sent >= 2,
        "the sender answered with a keyframe: {after_tx:?}"
    );
    caller.media.close().await;
    callee.media.close().await;
}
