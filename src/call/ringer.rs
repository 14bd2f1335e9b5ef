//! Plays a call-progress tone ([`Cadence`]) on the speaker while a call rings: the
//! ring of an incoming call, the ringback of an outgoing one. The speaker is opened
//! for the tone alone and closed (a WAV file finalized) before the call's media opens
//! it, so a `--speaker file:` holds the ring of a call that was not answered.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

use super::worker::Worker;

use crate::media::audio::ring::{Cadence, RingTone};
use crate::media::audio::source::Pacing;
use crate::media::audio::{AudioSource, FRAME_SAMPLES, open_audio_sink};
use crate::media::spec::AudioSinkSpec;

/// A tone playing on its own thread until [`Ringer::stop`].
#[derive(Debug)]
pub struct Ringer {
    cadence: Cadence,
    worker: Worker,
}

impl Ringer {
    /// Starts `cadence` on the speaker `spec`. A speaker that cannot be opened is
    /// logged, not an error: the call rings without a tone.
    pub fn start(spec: &AudioSinkSpec, cadence: Cadence) -> Self {
        let spec = spec.clone();
        let worker = Worker::spawn("ringer", move |stop| play(&spec, cadence, stop));
        Self { cadence, worker }
    }

    /// Which tone plays.
    pub fn cadence(&self) -> Cadence {
        self.cadence
    }

    /// Stops the tone and waits (at most one 20 ms frame) until the speaker is closed.
    pub async fn stop(self) {
        self.worker.stop().await;
    }
}

fn play(spec: &AudioSinkSpec, cadence: Cadence, stop: &AtomicBool) {
    let mut sink = match open_audio_sink(spec) {
        Ok(opened) => match opened.media {
            Some(sink) => sink,
            None => return,
        },
        Err(e) => {
            warn!("no ring tone: {e:#}");
            return;
        }
    };
    debug!(?cadence, sink = %sink.describe(), "ring tone on");
    let mut tone = RingTone::new(cadence, Pacing::RealTime);
    let mut frame = [0.0; FRAME_SAMPLES];
    while !stop.load(Ordering::Relaxed) {
        if tone.read_frame(&mut frame).is_err() || sink.write_frame(&frame).is_err() {
            break;
        }
    }
    debug!("ring tone off");
}
