//! The receiving threads: per peer, H.264 assembly and decode to the display and
//! recording; and the speaker, which runs each peer's audio jitter buffer and Opus
//! decode and mixes them into the one output.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::time::{Instant, SystemTime};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::clock::glass_to_glass;
use super::record::VideoRecorder;
use super::{MediaEvent, ReceiveControls, ReceiveCounters, SendControls};
use crate::call::peer::RtpPacket;
use crate::media::audio::jitter::{Adjustment, Playout};
use crate::media::audio::processing::ReferenceWriter;
use crate::media::audio::{self, AudioFrame, AudioSink, FRAME_SAMPLES};
use crate::media::video::decode::H264Decoder;
use crate::media::video::freeze::FreezeDetector;
use crate::media::video::jitter::{KeyframeRequest, VideoJitterBuffer};
use crate::media::video::pattern::read_counter;
use crate::media::video::{FrameSender, I420Frame};

pub(super) struct VideoReceiver {
    pub(super) packets: mpsc::Receiver<RtpPacket>,
    pub(super) remote_slot: FrameSender,
    pub(super) recorder: Option<VideoRecorder>,
    pub(super) keyframe_requests: mpsc::UnboundedSender<KeyframeRequest>,
    /// Sequence numbers to NACK: the packets before the stream's start.
    pub(super) start_repairs: mpsc::UnboundedSender<Vec<u16>>,
    pub(super) controls: Arc<ReceiveControls>,
    pub(super) counters: Arc<ReceiveCounters>,
    pub(super) events: mpsc::Sender<MediaEvent>,
    pub(super) runtime: Handle,
}

impl VideoReceiver {
    /// Longest sleep between two looks at the flags (stop, decoder restart).
    const IDLE_WAIT: Duration = Duration::from_millis(100);

    pub(super) fn run(mut self) {
        let mut decoder = match H264Decoder::new() {
            Ok(d) => d,
            Err(e) => {
                let _ = self
                    .events
                    .try_send(MediaEvent::Notice(format!("cannot decode video: {e}")));
                return;
            }
        };
        let mut jitter = VideoJitterBuffer::new();
        let mut freezes = FreezeDetector::new();
        while !self.controls.stop.load(Ordering::Relaxed) {
            let wait = jitter
                .next_wakeup()
                .map_or(Self::IDLE_WAIT, |at| {
                    at.saturating_duration_since(Instant::now())
                })
                .min(Self::IDLE_WAIT);
            let next = self
                .runtime
                .block_on(async { tokio::time::timeout(wait, self.packets.recv()).await });
            if self.controls.restart_decoder.swap(false, Ordering::Relaxed) {
                match H264Decoder::new() {
                    Ok(fresh) => decoder = fresh,
                    Err(e) => warn!("cannot restart the video decoder: {e}"),
                }
                info!("video decoder restarted; requesting a keyframe");
                // Nothing decodes until the keyframe: the display blanks instead of freezing.
                self.remote_slot.send_replace(None);
                jitter.request_keyframe();
            }
            match next {
                Err(_) => {}
                Ok(None) => break,
                Ok(Some(first)) => {
                    push_packet(&mut jitter, first);
                    // Take what else is queued, so a burst is ordered before playout.
                    while let Ok(p) = self.packets.try_recv() {
                        push_packet(&mut jitter, p);
                    }
                }
            }
            jitter.set_rtt(Duration::from_micros(
                self.counters.rtt_us.load(Ordering::Relaxed),
            ));
            while let Some(frame) = jitter.pop(Instant::now()) {
                match decoder.decode(&frame.access_unit.annexb) {
                    Ok(Some(decoded)) => {
                        if let Some(freeze) = freezes.frame_displayed(Instant::now()) {
                            debug!(ms = freeze.as_millis() as u64, "video freeze ended");
                        }
                        self.on_decoded(decoded, frame.access_unit.rtp_timestamp);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        debug!("video decode failed: {e}; requesting a keyframe");
                        jitter.request_keyframe();
                    }
                }
            }
            if let Some(request) = jitter.take_keyframe_request() {
                let _ = self.keyframe_requests.send(request);
            }
            if let Some(sequence_numbers) = jitter.take_start_repair(Instant::now()) {
                debug!(
                    before = sequence_numbers.last().map(|s| s.wrapping_add(1)),
                    "video: the first keyframe's start is missing; asking for it"
                );
                let _ = self.start_repairs.send(sequence_numbers);
            }
            self.counters
                .record_video_receive(&jitter.stats(), &freezes);
        }
        if let Some(r) = &mut self.recorder {
            r.finish();
        }
        self.remote_slot.send_replace(None);
    }

    fn on_decoded(&mut self, frame: I420Frame, rtp_timestamp: u32) {
        let c = &self.counters;
        c.frames_decoded.fetch_add(1, Ordering::Relaxed);
        c.video_size_in.store(
            (u64::from(frame.width()) << 32) | u64::from(frame.height()),
            Ordering::Relaxed,
        );
        if let Some(latency) =
            read_counter(&frame).and_then(|s| glass_to_glass(s, SystemTime::now()))
        {
            c.glass_to_glass_us
                .store((latency.as_micros() as u64).max(1), Ordering::Relaxed);
            debug!(
                latency_ms = latency.as_secs_f64() * 1000.0,
                monotonic_ms = super::clock::monotonic_ms(),
                "glass-to-glass"
            );
        }
        if let Some(r) = &mut self.recorder
            && let Err(e) = r.write(&frame, rtp_timestamp)
        {
            let _ = self.events.try_send(MediaEvent::Notice(format!(
                "video recording stopped: {e:#}"
            )));
        }
        self.remote_slot.send_replace(Some(Arc::new(frame)));
    }
}

fn push_packet(jitter: &mut VideoJitterBuffer, p: RtpPacket) {
    jitter.push(
        p.sequence_number,
        p.timestamp,
        p.marker,
        p.payload,
        p.arrival,
    );
}

/// Decodes what the jitter buffer says to play for the next 20 ms into `frame`:
/// the packet, the next packet's FEC, concealment, or silence.
fn decode_next(
    jitter: &mut audio::jitter::JitterBuffer,
    decoder: &mut audio::opus::OpusDecoder,
    now: Instant,
    frame: &mut AudioFrame,
) {
    let decoded = match jitter.pop(now) {
        Playout::Packet(p) => decoder.decode(&p, frame),
        Playout::Fec(next) => decoder.decode_fec(&next, frame),
        Playout::Conceal => decoder.conceal(frame),
        Playout::Empty => {
            frame.fill(0.0);
            Ok(())
        }
    };
    if let Err(e) = decoded {
        debug!("Opus decode failed: {e}; concealing");
        frame.fill(0.0);
    }
}

/// One peer's audio on its way to the speaker: jitter buffer, Opus decode and time
/// stretching, 20 ms at a time, and its recording. The [`Speaker`] thread owns it.
pub(super) struct PeerAudio {
    pub(super) packets: mpsc::Receiver<RtpPacket>,
    pub(super) recorder: Option<audio::wav::WavWriter>,
    pub(super) controls: Arc<ReceiveControls>,
    pub(super) counters: Arc<ReceiveCounters>,
    pub(super) events: mpsc::Sender<MediaEvent>,
    /// Dropped when the recording is finished, which the peer's `close` waits for.
    pub(super) finished: Option<tokio::sync::oneshot::Sender<()>>,
    pub(super) jitter: audio::jitter::JitterBuffer,
    pub(super) decoder: audio::opus::OpusDecoder,
    /// Decoded audio waiting to be played: time-stretching makes a decoded frame
    /// shorter or longer than the 20 ms played per tick. Never more than a frame plus
    /// two stretched ones, so its capacity is set once.
    pub(super) decoded: VecDeque<f32>,
    /// The first packet arrived: from then on a frame is played every tick.
    pub(super) started: bool,
}

impl PeerAudio {
    /// Takes the packets that arrived and writes the next 20 ms into `out`. `None`
    /// before the first packet (nothing to play yet), or once the peer is gone.
    fn next_frame(&mut self, now: Instant, out: &mut AudioFrame) -> Option<()> {
        loop {
            match self.packets.try_recv() {
                Ok(p) => {
                    self.started = true;
                    self.jitter
                        .push(p.sequence_number, p.timestamp, p.payload, p.arrival);
                    for block in p.redundant {
                        self.jitter.push_redundant(
                            p.sequence_number,
                            block.timestamp_offset,
                            block.data,
                        );
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        if !self.started {
            return None;
        }
        // Two decodes at most: an accelerated frame is at least half a frame long.
        for _ in 0..3 {
            if self.decoded.len() >= FRAME_SAMPLES {
                break;
            }
            decode_next(&mut self.jitter, &mut self.decoder, now, out);
            match self.jitter.take_adjustment() {
                Adjustment::None => self.decoded.extend(out.iter()),
                Adjustment::Expand => {
                    audio::stretch::expand(out, &mut self.decoded);
                }
                Adjustment::Accelerate => {
                    audio::stretch::accelerate(out, &mut self.decoded);
                }
            }
        }
        let take = self.decoded.len().min(FRAME_SAMPLES);
        out.fill(0.0);
        for (o, sample) in out.iter_mut().zip(self.decoded.drain(..take)) {
            *o = sample;
        }
        self.counters
            .record_playout(&self.jitter.stats(), self.jitter.target_delay());
        self.counters
            .level_in
            .store(audio::level_dbfs(out).to_bits(), Ordering::Relaxed);
        if let Some(r) = &mut self.recorder
            && let Err(e) = r.write(out)
        {
            let _ = self.events.try_send(MediaEvent::Notice(format!(
                "audio recording stopped: {e:#}"
            )));
            self.recorder = None;
        }
        Some(())
    }

    fn is_closed(&self) -> bool {
        self.controls.stop.load(Ordering::Relaxed)
    }

    fn finish(&mut self) {
        if let Some(r) = self.recorder.take()
            && let Err(e) = r.finish()
        {
            warn!("audio recording: {e:#}");
        }
        self.finished.take();
    }
}

/// The speaker: every 20 ms, the next frame of each peer's audio, mixed
/// ([`audio::mix::Mixer`]) into the one output. Peers join through `joins` and leave
/// when their media closes.
pub(super) struct Speaker {
    pub(super) sink: Box<dyn AudioSink>,
    /// Where what is played goes as the echo canceller's far-end reference, when one runs.
    pub(super) reference: Option<ReferenceWriter>,
    pub(super) joins: std::sync::mpsc::Receiver<PeerAudio>,
    pub(super) controls: Arc<SendControls>,
    pub(super) events: mpsc::Sender<MediaEvent>,
}

impl Speaker {
    pub(super) fn run(mut self) {
        let mut inputs: Vec<PeerAudio> = Vec::new();
        let mut frames: Vec<AudioFrame> = Vec::new();
        let mut live: Vec<bool> = Vec::new();
        let mut mixer = audio::mix::Mixer::new();
        let mut pacer = crate::media::pacer::Pacer::new(Duration::from_millis(20));
        let mut mixed: AudioFrame = [0.0; FRAME_SAMPLES];
        let mut started = false;
        while !self.controls.stop.load(Ordering::Relaxed) {
            pacer.wait();
            inputs.extend(self.joins.try_iter());
            inputs.retain_mut(|input| {
                let gone =
                    input.is_closed() || input.packets.is_closed() && input.packets.is_empty();
                if gone {
                    input.finish();
                }
                !gone
            });
            // Resized only when peers come or go: no allocation on a normal tick.
            frames.resize(inputs.len(), [0.0; FRAME_SAMPLES]);
            live.resize(inputs.len(), false);
            let now = Instant::now();
            for ((input, frame), live) in inputs.iter_mut().zip(&mut frames).zip(&mut live) {
                *live = input.next_frame(now, frame).is_some();
            }
            started |= live.contains(&true);
            if !started {
                continue;
            }
            let playing = frames
                .iter()
                .zip(&live)
                .filter(|(_, l)| **l)
                .map(|(f, _)| f);
            mixer.mix(playing, &mut mixed);
            self.play(&mixed);
        }
        for mut input in inputs {
            input.finish();
        }
    }

    fn play(&mut self, frame: &AudioFrame) {
        if let Some(reference) = self.reference.as_mut() {
            reference.push(frame, self.sink.output_latency());
        }
        if let Err(e) = self.sink.write_frame(frame) {
            let _ = self.events.try_send(MediaEvent::Notice(format!(
                "audio output failed ({}: {e:#}); playing to none",
                self.sink.describe()
            )));
            self.sink = Box::new(audio::sink::NullSink);
        }
    }
}
