//! The camera preview of an idle `listen` screen: the video source read into the
//! self-view slot, so a user can check the picture before answering. It owns the
//! camera only while no call's media does: the controller stops it before a call's
//! media opens and starts it again once that media is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tracing::{debug, warn};

use crate::config::MediaSettings;
use crate::media::video::FrameSender;
use crate::media::video::source::open_video_source;

/// The preview thread, until [`Preview::stop`].
#[derive(Debug)]
pub struct Preview {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Preview {
    /// Opens the video source of `config` (on the preview thread: a camera can take a
    /// while) and sends its frames to `slot` until stopped. A source that cannot be
    /// opened is logged; the self-view stays empty.
    pub fn start(config: &MediaSettings, slot: FrameSender) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let config = config.clone();
        let thread = std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || run(&config, &slot, &flag))
            .map_err(|e| warn!("cannot start the camera preview: {e}"))
            .ok();
        Self { stop, thread }
    }

    /// Stops the preview and waits until the source is closed (at most one frame).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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
