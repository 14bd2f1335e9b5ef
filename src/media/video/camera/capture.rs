//! The capture thread: reads a nokhwa camera, converts each frame to I420 and hands it
//! to the [`VideoSource`] reader through a one-frame slot that drops the older frame,
//! so a slow encoder never makes frames queue up (ARCHITECTURE: latest frame only).

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nokhwa::Camera;
use nokhwa::utils::{CameraFormat, CameraIndex, RequestedFormat, RequestedFormatType};

use super::CameraError;
use super::convert::{ConvertError, mjpeg_to_i420, yuyv_to_i420};
use super::format::{CameraFormatInfo, CaptureFormat, ChosenFormat, choose_format, group_formats};
use crate::media::video::{CapturedFrame, I420Frame, VideoSource};

/// How long opening may take before the caller gives up (V4L2 opens in well under 1 s).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the reader waits for a frame before it calls the camera stalled; cameras
/// deliver the first frame within about 1-2 s of opening, then every frame interval.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Consecutive frames that fail to convert before capture ends (a webcam sometimes
/// sends one corrupt MJPEG frame; a stream of them means the format is not what it says).
const MAX_BAD_FRAMES: u32 = 30;

/// Every pixel format nokhwa knows, so a camera with no MJPEG or YUYV still opens and
/// says what it offers instead of failing inside nokhwa's own format request.
const ALL_FRAME_FORMATS: [nokhwa::utils::FrameFormat; 6] = {
    use nokhwa::utils::FrameFormat::*;
    [MJPEG, YUYV, NV12, GRAY, RAWRGB, RAWBGR]
};

/// Why the reader got no frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The capture thread ended: the camera went away or kept sending bad frames.
    #[error("camera stopped: {0}")]
    Ended(String),
    /// No frame arrived for `FRAME_TIMEOUT`.
    #[error("camera sent no frame for {0:?}")]
    Stalled(Duration),
}

/// What the capture thread and the reader share.
#[derive(Debug, Default)]
struct SlotState {
    /// The newest frame not yet taken; a newer one replaces it.
    latest: Option<CapturedFrame>,
    /// Why capture ended, once it has.
    ended: Option<String>,
    /// Set when the reader is dropped, so the thread stops at its next frame.
    reader_gone: bool,
    /// Frames replaced before the reader took them (for logs).
    dropped: u64,
}

/// A one-frame hand-over between the capture thread and the reader. The lock is held
/// only to swap an `Option`, never across I/O or conversion.
#[derive(Debug, Default)]
pub(super) struct FrameSlot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

impl FrameSlot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a frame, dropping an untaken older one. Returns false once the reader is
    /// gone (the thread should stop).
    fn put(&self, frame: CapturedFrame) -> bool {
        let mut s = self.lock();
        if s.reader_gone {
            return false;
        }
        if s.latest.replace(frame).is_some() {
            s.dropped += 1;
        }
        drop(s);
        self.changed.notify_one();
        true
    }

    /// Records why capture ended; the first reason wins.
    fn end(&self, reason: String) {
        let mut s = self.lock();
        s.ended.get_or_insert(reason);
        drop(s);
        self.changed.notify_one();
    }

    fn reader_gone(&self) -> bool {
        self.lock().reader_gone
    }

    fn close_reader(&self) {
        self.lock().reader_gone = true;
    }

    /// Waits up to `timeout` for a frame. A frame still in the slot is delivered even
    /// after capture ended; then the end reason is.
    fn take(&self, timeout: Duration) -> Result<CapturedFrame, CaptureError> {
        let guard = self.lock();
        let (mut s, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| s.latest.is_none() && s.ended.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(frame) = s.latest.take() {
            return Ok(frame);
        }
        match &s.ended {
            Some(reason) => Err(CaptureError::Ended(reason.clone())),
            None => Err(CaptureError::Stalled(timeout)),
        }
    }
}

/// Ends the slot when the capture thread returns or panics, so the reader never waits
/// on a thread that is gone.
struct EndOnDrop(Arc<FrameSlot>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.end("capture thread ended".into());
    }
}

/// A camera delivering I420 frames from its capture thread.
pub(super) struct CameraSource {
    slot: Arc<FrameSlot>,
    description: String,
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self) -> anyhow::Result<CapturedFrame> {
        Ok(self.slot.take(FRAME_TIMEOUT)?)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        let dropped = self.slot.lock().dropped;
        tracing::debug!(camera = %self.description, dropped, "camera source closed");
        // Not joined: the thread notices at its next frame and closes the device.
        self.slot.close_reader();
    }
}

/// Opens camera `index` on a new capture thread at the format closest to `want_size`
/// and `want_fps`, and returns once it streams. `label` names it in messages.
pub(super) fn spawn(
    index: CameraIndex,
    label: String,
    want_size: (u32, u32),
    want_fps: u32,
) -> Result<CameraSource, CameraError> {
    let slot = Arc::new(FrameSlot::default());
    let (opened_tx, opened_rx) = mpsc::sync_channel(1);
    let thread_slot = Arc::clone(&slot);
    let thread_label = label.clone();
    thread::Builder::new()
        .name("camera-capture".into())
        .spawn(move || {
            let end = EndOnDrop(thread_slot);
            match open_device(&index, &thread_label, want_size, want_fps) {
                Ok((camera, chosen)) => {
                    // The receiver may have timed out and gone: then nobody reads frames.
                    if opened_tx.send(Ok(chosen)).is_ok() {
                        capture_loop(camera, chosen, &end.0);
                    }
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| CameraError::Open {
            name: label.clone(),
            reason: format!("cannot start capture thread: {e}"),
        })?;

    let chosen = match opened_rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(result) => result?,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            slot.close_reader();
            return Err(CameraError::Open {
                name: label,
                reason: format!("did not open within {OPEN_TIMEOUT:?}"),
            });
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(CameraError::Open {
                name: label,
                reason: "capture thread ended while opening".into(),
            });
        }
    };
    let description = format!("camera {label} {chosen}");
    tracing::info!(camera = %description, "camera streaming");
    Ok(CameraSource { slot, description })
}

/// Lists the formats camera `index` offers; opens the device to ask.
pub(super) fn probe_formats(
    index: &CameraIndex,
) -> Result<Vec<CameraFormatInfo>, nokhwa::NokhwaError> {
    let mut camera = Camera::new(
        index.clone(),
        RequestedFormat::with_formats(RequestedFormatType::None, &ALL_FRAME_FORMATS),
    )?;
    Ok(group_formats(&camera.compatible_camera_formats()?))
}

fn open_device(
    index: &CameraIndex,
    label: &str,
    want_size: (u32, u32),
    want_fps: u32,
) -> Result<(Camera, ChosenFormat), CameraError> {
    let open_err = |e: nokhwa::NokhwaError| CameraError::Open {
        name: label.to_owned(),
        reason: e.to_string(),
    };
    let mut camera = Camera::new(
        index.clone(),
        RequestedFormat::with_formats(RequestedFormatType::None, &ALL_FRAME_FORMATS),
    )
    .map_err(open_err)?;
    let formats = group_formats(&camera.compatible_camera_formats().map_err(open_err)?);
    let chosen = choose_format(&formats, want_size, want_fps).ok_or_else(|| {
        CameraError::NoCaptureFormat {
            name: label.to_owned(),
            offered: formats
                .iter()
                .map(|f| format!("{} {}x{}", f.pixel_format, f.width, f.height))
                .collect::<Vec<_>>()
                .join(", "),
        }
    })?;
    let exact = CameraFormat::new_from(
        chosen.width,
        chosen.height,
        chosen.format.frame_format(),
        chosen.fps,
    );
    camera
        .set_camera_requset(RequestedFormat::with_formats(
            RequestedFormatType::Exact(exact),
            &ALL_FRAME_FORMATS,
        ))
        .map_err(open_err)?;
    camera.open_stream().map_err(open_err)?;
    Ok((camera, chosen))
}

/// Reads, converts and hands over frames until the reader goes or the camera fails.
fn capture_loop(mut camera: Camera, chosen: ChosenFormat, slot: &FrameSlot) {
    let mut bad_frames = 0;
    while !slot.reader_gone() {
        let converted = match camera.frame_raw() {
            Ok(raw) => convert(chosen, &raw),
            Err(e) => {
                tracing::warn!(error = %e, "camera read failed; capture ends");
                slot.end(format!("read failed: {e}"));
                return;
            }
        };
        let captured_at = Instant::now();
        match converted {
            Ok(frame) => {
                bad_frames = 0;
                if !slot.put(CapturedFrame { frame, captured_at }) {
                    return;
                }
            }
            Err(e) => {
                bad_frames += 1;
                tracing::debug!(error = %e, bad_frames, "camera frame skipped");
                if bad_frames >= MAX_BAD_FRAMES {
                    slot.end(format!("{bad_frames} frames in a row did not convert: {e}"));
                    return;
                }
            }
        }
    }
}

fn convert(chosen: ChosenFormat, raw: &[u8]) -> Result<I420Frame, ConvertError> {
    match chosen.format {
        CaptureFormat::Yuyv => yuyv_to_i420(raw, chosen.width, chosen.height),
        CaptureFormat::Mjpeg => mjpeg_to_i420(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(y: u8) -> CapturedFrame {
        CapturedFrame {
            frame: I420Frame::filled(2, 2, (y, 128, 128)).unwrap(),
            captured_at: Instant::now(),
        }
    }

    #[test]
    fn slot_keeps_only_the_newest_frame() {
        let slot = FrameSlot::default();
        assert!(slot.put(frame(1)));
        assert!(slot.put(frame(2)));
        assert!(slot.put(frame(3)));
        let got = slot.take(Duration::from_millis(10)).unwrap();
        assert_eq!(got.frame.y()[0], 3);
        assert_eq!(slot.lock().dropped, 2);
        assert_eq!(
            slot.take(Duration::from_millis(10)).unwrap_err(),
            CaptureError::Stalled(Duration::from_millis(10))
        );
    }

    #[test]
    fn slot_delivers_the_last_frame_then_the_end_reason() {
        let slot = FrameSlot::default();
        slot.put(frame(7));
        slot.end("unplugged".into());
        slot.end("later reason".into());
        assert_eq!(slot.take(Duration::ZERO).unwrap().frame.y()[0], 7);
        assert_eq!(
            slot.take(Duration::ZERO).unwrap_err(),
            CaptureError::Ended("unplugged".into())
        );
    }

    #[test]
    fn slot_refuses_frames_once_the_reader_is_gone() {
        let slot = FrameSlot::default();
        slot.close_reader();
        assert!(slot.reader_gone());
        assert!(!slot.put(frame(1)));
    }

    #[test]
    fn a_reader_waiting_wakes_when_a_thread_ends() {
        let slot = Arc::new(FrameSlot::default());
        let producer = Arc::clone(&slot);
        let t = thread::spawn(move || {
            let _end = EndOnDrop(producer);
            panic!("capture thread dies");
        });
        assert!(t.join().is_err());
        assert_eq!(
            slot.take(Duration::from_secs(5)).unwrap_err(),
            CaptureError::Ended("capture thread ended".into())
        );
    }

    #[test]
    fn conversion_follows_the_chosen_format() {
        let yuyv = ChosenFormat {
            width: 2,
            height: 1,
            fps: 30,
            format: CaptureFormat::Yuyv,
        };
        let f = convert(yuyv, &[50, 100, 60, 150]).unwrap();
        assert_eq!(
            (f.y(), f.u(), f.v()),
            (&[50, 60][..], &[100][..], &[150][..])
        );
        let mjpeg = ChosenFormat {
            format: CaptureFormat::Mjpeg,
            ..yuyv
        };
        assert!(matches!(
            convert(mjpeg, &[50, 100, 60, 150]),
            Err(ConvertError::Jpeg(_))
        ));
    }
}
