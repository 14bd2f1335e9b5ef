//! The camera preview of an idle `listen` screen: the video source read into the
//! self-view slot, so a user can check the picture before answering. It owns the
//! camera only while no call's media does: the controller stops it before a call's
//! media opens and starts it again once that media is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

use crate::call::worker::Worker;
use crate::config::MediaSettings;
use crate::media::video::FrameSender;
use crate::media::video::source::open_video_source;

/// The preview thread, until [`Preview::stop`].
#[derive(Debug)]
pub struct Preview {
    worker: Worker,
}

impl Preview {
    /// Opens the video source of `config` (on the preview thread: a camera can take a
    /// while) and sends its frames to `slot` until stopped. A source that cannot be
    /// opened is logged; the self-view stays empty.
    pub fn start(config: &MediaSettings, slot: FrameSender) -> Self {
        let config = config.clone();
        let worker = Worker::spawn("preview", move |stop| run(&config, &slot, stop));
        Self { worker }
    }

    /// Stops the preview and waits until the source is closed (at most one frame).
    pub async fn stop(self) {
        self.worker.stop().await;
    }
}

fn run(config: &MediaSettings, slot: &FrameSender, stop: &AtomicBool) {
    let mut source = match open_video_source(&config.camera, config.video_size, config.fps) {
        Ok(Some(opened)) => opened.source,
        Ok(None) => return,
        Err(e) => {
            warn!("no camera preview: {e:#}");
            return;
        }
    };
    debug!(source = %source.describe(), "camera preview on");
    while !stop.load(Ordering::Relaxed) {
        match source.next_frame() {
            Ok(captured) => {
                slot.send_replace(Some(Arc::new(captured.frame)));
            }
            Err(e) => {
                warn!("camera preview stopped: {e:#}");
                break;
            }
        }
    }
    debug!("camera preview off");
}
