//! The call screen's event loop: keys, resizes, controller events and signals become
//! [`Msg`]s for [`update`]; a dedicated thread owns the terminal and draws the latest
//! model and frames. A new video frame (or any change) is drawn when it arrives, at
//! most `max_fps` times a second: no fixed tick adds its phase to the latency or
//! aliases a 30 fps stream against a 30 Hz clock.
//!
//! The async side never waits for the terminal: it drops a snapshot in a
//! latest-value slot, replacing any the drawer has not taken yet. A slow terminal
//! therefore skips frames; it never delays networking, audio or key handling.

use std::collections::BTreeMap;
use std::io::{self, BufWriter};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::MissedTickBehavior;

use super::alert::{self, Host};
use super::app::{Model, Msg, update};
use super::halfblock::CellSize;
use super::passthrough::Passthrough;
use super::probe::Probe;
use super::terminal::{TerminalGuard, cell_size, draw_synchronized_with};
use super::video::{ColorMode, RenderMode};
use super::view::{Frames, View};
use super::{TuiOptions, VideoFeeds, ViewLink};
use crate::call::room::RoomVideo;
use crate::call::{AppEvent, UserCommand, UserId};
use crate::media::video::FrameReceiver;

/// How long to wait for the controller to finish after Quit before leaving anyway.
const QUIT_GRACE: Duration = Duration::from_secs(3);

/// Redraw at least this often even when nothing changed (the call clock, notice expiry).
const IDLE_REDRAW: Duration = Duration::from_secs(1);

/// How often the event loop updates the clock and looks for room members who came or
/// went (video frames do not wait for it).
const TICK: Duration = Duration::from_millis(100);

/// Longest wait for the terminal's answers to the capability queries (a terminal that
/// answers device attributes answers at once; over a slow link, the rest is late input).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Bytes buffered per terminal write: a full truecolor frame goes out in a few writes.
const WRITE_BUFFER: usize = 1 << 16;

/// Runs the call screen until the controller closes the events channel (or, after a
/// Quit, at most `QUIT_GRACE` later). Keys become [`UserCommand`]s on
/// `link.commands`; SIGTERM, SIGHUP and SIGINT act like `q`.
///
/// Returns [`Model::farewell`]: the lines (how the call ended, a fatal error) the
/// caller should print now that the terminal is back, since the screen that showed
/// them is gone.
///
/// # Errors
/// The terminal could not be set up or written, or the drawing thread failed. The
/// terminal is restored in every case.
pub async fn run(link: ViewLink, opts: TuiOptions) -> anyhow::Result<Vec<String>> {
    let guard =
        TerminalGuard::enter(&opts.title).context("setting up the terminal for the call screen")?;
    let colors = ColorMode::detect();
    let host = Host::detect();
    // `auto` asks the terminal what it shows, before the input reader starts (its
    // answers would otherwise arrive as keys).
    // `kitty` asks too: whether the terminal reads frames from shared memory.
    let probe = match opts.render {
        RenderMode::Auto | RenderMode::Kitty => match Probe::run(PROBE_TIMEOUT) {
            Ok(probe) => Some(probe),
            Err(e) => {
                tracing::warn!("cannot ask the terminal what it shows: {e}");
                None
            }
        },
        _ => None,
    };
    let passthrough = Passthrough::detect();
    tracing::info!(?probe, ?passthrough, "terminal capabilities");
    let render = opts
        .render
        .resolve_with(probe.as_ref(), passthrough.as_ref());
    let slot = Arc::new(DrawSlot::default());
    let shared_memory = probe.is_some_and(|p| p.kitty_shared_memory);
    let drawer = spawn_drawer(
        Arc::clone(&slot),
        (render, colors, shared_memory),
        passthrough.clone(),
    )?;
    let mut model = Model::new(opts.role, Instant::now());
    let fallback_cell = probe.and_then(|p| p.cell);
    let result = event_loop(
        link,
        &opts,
        &mut model,
        &slot,
        &drawer,
        (host, fallback_cell, passthrough),
    )
    .await;
    slot.close();
    let drawn = drawer
        .join()
        .map_err(|_| anyhow!("the drawing thread panicked"));
    drop(guard);
    result?;
    drawn?.context("drawing the call screen")?;
    Ok(model.farewell())
}

async fn event_loop(
    link: ViewLink,
    opts: &TuiOptions,
    model: &mut Model,
    slot: &DrawSlot,
    drawer: &JoinHandle<io::Result<()>>,
    (host, fallback_cell, passthrough): (Host, Option<CellSize>, Option<Passthrough>),
) -> anyhow::Result<()> {
    // The cell size from the window size report, else from the terminal's answer.
    let cell_size = || cell_size().or(fallback_cell);
    let ViewLink {
        mut events,
        commands,
        video,
    } = link;
    let mut feeds = Feeds::new(video);
    let (cols, rows) = crossterm::terminal::size().context("reading the terminal size")?;
    update(
        model,
        Msg::Resize {
            cols,
            rows,
            cell: cell_size(),
        },
    );

    let mut input = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("handling SIGHUP")?;
    let mut sigint = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    // Frames are drawn when they arrive, at most `max_fps` a second; the ticker only
    // keeps the clock, the room's tiles and the idle redraw going.
    let mut budget = DrawBudget::new(opts.max_fps, Instant::now());
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut quit_deadline: Option<Instant> = None;
    loop {
        let mut command = None;
        // The next draw: now, or as soon as the rate cap allows.
        let draw_at = dirty.then(|| budget.ready_at(Instant::now()));
        tokio::select! {
            () = feeds.frame_arrived() => dirty = true,
            () = tokio::time::sleep_until(draw_at.unwrap_or_else(Instant::now).into()), if draw_at.is_some() => {
                slot.publish(Snapshot {
                    model: model.clone(),
                    frames: feeds.latest(),
                });
                dirty = false;
                let now = Instant::now();
                budget.spend(now);
                last_draw = Some(now);
            }
            event = events.recv() => match event {
                Some(timed) => {
                    if let AppEvent::Incoming { from, .. } = &timed.event {
                        slot.alert(&alert::incoming_call(from, host));
                    }
                    update(model, Msg::TimedEvent(timed));
                    dirty = true;
                }
                None => return Ok(()),
            },
            input_event = input.next() => match input_event {
                Some(Ok(Event::Key(key))) => {
                    command = update(model, Msg::Key(key));
                    dirty = true;
                }
                Some(Ok(Event::Resize(cols, rows))) => {
                    update(model, Msg::Resize { cols, rows, cell: cell_size() });
                    if let Some(passthrough) = passthrough.clone() {
                        // A resized pane may have moved in the terminal around tmux.
                        tokio::task::spawn_blocking(move || passthrough.refresh());
                    }
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("reading terminal input"),
                // The terminal is gone: nothing more can be shown or typed.
                None => command = Some(UserCommand::Quit),
            },
            _ = sigterm.recv() => command = Some(UserCommand::Quit),
            _ = sighup.recv() => command = Some(UserCommand::Quit),
            _ = sigint.recv() => command = Some(UserCommand::Quit),
            _ = ticker.tick() => {
                let now = Instant::now();
                update(model, Msg::Tick(now));
                if drawer.is_finished() {
                    return Ok(()); // run() reports the drawer's error from join.
                }
                if quit_deadline.is_some_and(|at| now >= at) {
                    tracing::warn!("the call controller did not finish after quit; leaving anyway");
                    return Ok(());
                }
                // The clock moved; the room's tiles may have come or gone.
                let stale = last_draw.is_none_or(|at| now.duration_since(at) >= IDLE_REDRAW);
                dirty |= feeds.changed() || stale;
            }
        }
        if let Some(command) = command {
            if command == UserCommand::Quit {
                model.quitting = true;
                quit_deadline.get_or_insert(Instant::now() + QUIT_GRACE);
            }
            match commands.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Full(command)) => {
                    tracing::warn!(
                        ?command,
                        "the call controller is not keeping up; key dropped"
                    );
                }
                // The controller is gone: nothing will answer or close the events.
                Err(TrySendError::Closed(UserCommand::Quit)) => return Ok(()),
                Err(TrySendError::Closed(command)) => {
                    tracing::warn!(?command, "the call controller has stopped; key ignored");
                }
            }
        }
    }
}

/// The `--max-draw-fps` cap as a token bucket: `max_fps` draws a second on average,
/// with room for one more at once, so a frame that arrives a little early (network or
/// decode jitter) is drawn at once instead of waiting out a whole frame interval.
#[derive(Debug)]
struct DrawBudget {
    /// Draws available now (at most [`DrawBudget::BURST`]).
    tokens: f64,
    /// When `tokens` was counted.
    at: Instant,
    /// Draws per second.
    rate: f64,
}

impl DrawBudget {
    /// Draws the bucket holds.
    const BURST: f64 = 2.0;

    fn new(max_fps: u32, now: Instant) -> Self {
        Self {
            tokens: Self::BURST,
            at: now,
            rate: f64::from(max_fps.max(1)),
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(Self::BURST);
        self.at = now;
    }

    /// When a draw is allowed: `now`, or when the next token comes in.
    fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = (1.0 - self.tokens).max(0.0);
        now + Duration::from_secs_f64(missing / self.rate)
    }

    /// Takes a draw's token.
    fn spend(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

/// Whether a latest-frame slot holds a frame not yet drawn (a closed slot has none).
fn changed(frames: &FrameReceiver) -> bool {
    frames.has_changed().unwrap_or(false)
}

/// The video slots the loop watches: a call's two, or a room's self-view and a slot per
/// member, followed as members come and go.
enum Feeds {
    Call {
        remote: FrameReceiver,
        local: FrameReceiver,
    },
    Room {
        source: RoomVideo,
        members: BTreeMap<UserId, FrameReceiver>,
        local: FrameReceiver,
    },
}

impl Feeds {
    fn new(video: VideoFeeds) -> Self {
        match video {
            VideoFeeds::Call { remote, local } => Self::Call { remote, local },
            VideoFeeds::Room(source) => Self::Room {
                local: source.local.subscribe(),
                source,
                members: BTreeMap::new(),
            },
        }
    }

    /// Whether something new is to be drawn: a frame not drawn yet, or a member who
    /// came or went.
    fn changed(&mut self) -> bool {
        match self {
            Self::Call { remote, local } => changed(remote) || changed(local),
            Self::Room {
                source,
                members,
                local,
            } => {
                let now: BTreeMap<UserId, FrameReceiver> = source.members().into_iter().collect();
                let reshaped = now.keys().ne(members.keys());
                if reshaped {
                    members.retain(|id, _| now.contains_key(id));
                    for (id, rx) in now {
                        members.entry(id).or_insert(rx);
                    }
                }
                reshaped || changed(local) || members.values().any(changed)
            }
        }
    }

    /// Resolves when a new frame is in any slot (marking it seen); never for a slot
    /// whose sender is gone.
    async fn frame_arrived(&mut self) {
        use futures_util::future::{FutureExt, select_all};
        let slots: Vec<&mut FrameReceiver> = match self {
            Self::Call { remote, local } => vec![remote, local],
            Self::Room { members, local, .. } => {
                std::iter::once(local).chain(members.values_mut()).collect()
            }
        };
        let waits = slots.into_iter().map(|rx| {
            async move {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            .boxed()
        });
        select_all(waits).await;
    }

    /// The latest frames, marked as drawn.
    fn latest(&mut self) -> Frames {
        match self {
            Self::Call { remote, local } => Frames {
                remote: remote.borrow_and_update().clone(),
                local: local.borrow_and_update().clone(),
                members: Vec::new(),
            },
            Self::Room { members, local, .. } => Frames {
                remote: None,
                local: local.borrow_and_update().clone(),
                members: members
                    .iter_mut()
                    .map(|(id, rx)| (id.clone(), rx.borrow_and_update().clone()))
                    .collect(),
            },
        }
    }
}

/// What one drawn frame shows.
struct Snapshot {
    model: Model,
    frames: Frames,
}

/// A latest-value slot between the event loop and the drawing thread: publishing
/// replaces an undrawn snapshot (that frame is dropped), taking waits for one.
#[derive(Default)]
struct DrawSlot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

#[derive(Default)]
struct SlotState {
    pending: Option<Snapshot>,
    /// Bytes to write before the next frame (the incoming-call alert); kept, not
    /// replaced, when a snapshot is.
    alert: String,
    /// Draw the last snapshot again (a picture encoded off this thread is ready).
    redraw: bool,
    closed: bool,
}

impl DrawSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, snapshot: Snapshot) {
        self.lock().pending = Some(snapshot);
        self.ready.notify_one();
    }

    /// Queues `bytes` for the terminal, written before the next frame is drawn.
    fn alert(&self, bytes: &str) {
        self.lock().alert.push_str(bytes);
    }

    /// Asks for the last snapshot to be drawn again, unless a newer one is waiting.
    fn redraw(&self) {
        self.lock().redraw = true;
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// What to draw next with the alert bytes to write first: a new snapshot, or
    /// `None` inside for the last one again (a redraw); `None` once closed.
    fn take(&self) -> Option<(Option<Snapshot>, String)> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let redraw = std::mem::take(&mut state.redraw);
            if let Some(snapshot) = state.pending.take() {
                return Some((Some(snapshot), std::mem::take(&mut state.alert)));
            }
            if redraw {
                return Some((None, std::mem::take(&mut state.alert)));
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The drawing thread: `look` is the render mode, the color mode and whether kitty
/// frames may go through shared memory (the terminal read the probe's object).
fn spawn_drawer(
    slot: Arc<DrawSlot>,
    look: (RenderMode, ColorMode, bool),
    passthrough: Option<Passthrough>,
) -> anyhow::Result<JoinHandle<io::Result<()>>> {
    let (render, colors, shared_memory) = look;
    std::thread::Builder::new()
        .name("tui-draw".into())
        .spawn(move || {
            let writer = BufWriter::with_capacity(WRITE_BUFFER, io::stdout());
            let mut terminal = Terminal::new(CrosstermBackend::new(writer))?;
            terminal.clear()?;
            let redraw = {
                let slot = Arc::clone(&slot);
                crate::ui::sixel::Redraw::new(move || slot.redraw())
            };
            let mut view = View::new(render, colors, redraw);
            if shared_memory {
                view.use_kitty_shared_memory();
            }
            if let Some(passthrough) = passthrough {
                view.pass_graphics_through(passthrough);
            }
            let mut latency = GlassToTerminal::default();
            let mut rate = DrawnRate::new(std::time::Instant::now());
            let mut last: Option<Snapshot> = None;
            while let Some((new, alert)) = slot.take() {
                if let Some(snap) = new {
                    last = Some(snap);
                }
                let Some(snap) = last.as_ref() else {
                    continue;
                };
                if !alert.is_empty() {
                    use std::io::Write;
                    let out = terminal.backend_mut();
                    out.write_all(alert.as_bytes())?;
                    out.flush()?;
                }
                let draw = |terminal: &mut Terminal<_>, view: &mut View| {
                    draw_synchronized_with(terminal, |frame| {
                        view.draw(frame, &snap.model, &snap.frames);
                        view.take_graphics()
                    })
                };
                draw(&mut terminal, &mut view)?;
                let mut shown = view.remote_shown().cloned();
                if view.take_clear_request() {
                    // Sixel pixels of an image that moved or went: start the screen over.
                    terminal.clear()?;
                    view.screen_cleared();
                    draw(&mut terminal, &mut view)?;
                    shown = shown.or_else(|| view.remote_shown().cloned());
                }
                latency.drawn(shown.as_deref());
                rate.drawn(shown.as_ref(), std::time::Instant::now());
            }
            latency.log();
            Ok(())
        })
        .context("starting the drawing thread")
}

/// How many new remote video frames reach the terminal per second: the drawing thread
/// writes them as fast as the terminal reads (a slow terminal blocks the write and the
/// frames in between are skipped), so this is the frame rate the terminal shows.
/// Logged every [`DrawnRate::PERIOD`].
#[derive(Debug)]
struct DrawnRate {
    /// The last frame drawn, held so a new one is never mistaken for it.
    last: Option<Arc<crate::media::video::I420Frame>>,
    frames: u32,
    since: std::time::Instant,
}

impl DrawnRate {
    const PERIOD: Duration = Duration::from_secs(5);

    fn new(now: std::time::Instant) -> Self {
        Self {
            last: None,
            frames: 0,
            since: now,
        }
    }

    fn drawn(
        &mut self,
        frame: Option<&Arc<crate::media::video::I420Frame>>,
        now: std::time::Instant,
    ) {
        if let Some(frame) = frame
            && !self
                .last
                .as_ref()
                .is_some_and(|last| Arc::ptr_eq(last, frame))
        {
            self.last = Some(Arc::clone(frame));
            self.frames += 1;
        }
        let span = now.duration_since(self.since);
        if span >= Self::PERIOD {
            if self.frames > 0 {
                let fps = f64::from(self.frames) / span.as_secs_f64();
                let fps = (fps * 10.0).round() / 10.0;
                tracing::info!(frames = self.frames, fps, "video frames drawn");
            }
            self.frames = 0;
            self.since = now;
        }
    }
}

/// Glass-to-terminal latency of a test-pattern peer: from its capture (the clock stamp
/// in its counter strip; both ends on one machine) to its frame written to the terminal.
/// Logged when the screen closes, for the latency benchmark.
#[derive(Debug, Default)]
struct GlassToTerminal {
    last_stamp: Option<u32>,
    samples_ms: Vec<u32>,
}

impl GlassToTerminal {
    /// Most samples kept (a 30 fps call of over an hour).
    const MAX_SAMPLES: usize = 120_000;

    /// Notes a drawn remote `frame` (each stamped frame once).
    fn drawn(&mut self, frame: Option<&crate::media::video::I420Frame>) {
        let Some(stamp) = frame.and_then(crate::media::video::pattern::read_counter) else {
            return;
        };
        if self.last_stamp == Some(stamp) || self.samples_ms.len() >= Self::MAX_SAMPLES {
            return;
        }
        self.last_stamp = Some(stamp);
        let now = std::time::SystemTime::now();
        if let Some(d) = crate::call::media::clock::glass_to_glass(stamp, now) {
            self.samples_ms
                .push(u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
        }
    }

    fn log(mut self) {
        if self.samples_ms.is_empty() {
            return;
        }
        self.samples_ms.sort_unstable();
        let at = |q: f64| self.samples_ms[((self.samples_ms.len() - 1) as f64 * q) as usize];
        tracing::info!(
            frames = self.samples_ms.len(),
            p50_ms = at(0.5),
            p95_ms = at(0.95),
            "glass-to-terminal latency"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::app::Role;

    fn snapshot(now: Instant) -> Snapshot {
        Snapshot {
            model: Model::new(Role::Listen, now),
            frames: Frames::default(),
        }
    }

    #[test]
    fn the_draw_budget_holds_the_rate_and_absorbs_jitter() {
        let t0 = Instant::now();
        let mut budget = DrawBudget::new(30, t0);
        // A 30 fps stream with 5 ms of jitter: never made to wait.
        let mut at = t0;
        for i in 0..300u32 {
            let jitter = if i % 2 == 0 { 5_000 } else { 0 };
            at = t0 + Duration::from_micros(u64::from(i) * 33_334 + jitter);
            assert_eq!(budget.ready_at(at), at, "frame {i}");
            budget.spend(at);
        }
        // A flood: no more than 30 a second plus the burst.
        let mut drawn = 0;
        let mut now = at + Duration::from_secs(1);
        let end = now + Duration::from_secs(10);
        while now < end {
            now = budget.ready_at(now).max(now);
            budget.spend(now);
            drawn += 1;
            now += Duration::from_millis(1);
        }
        assert!(
            (299..=303).contains(&drawn),
            "{drawn} draws in 10 s at 30 fps"
        );
    }

    #[test]
    fn slot_keeps_only_the_latest_snapshot() {
        let slot = DrawSlot::default();
        let t0 = Instant::now();
        slot.publish(snapshot(t0));
        slot.publish(snapshot(t0 + Duration::from_secs(1)));
        assert_eq!(
            slot.take().and_then(|(s, _)| s).map(|s| s.model.now),
            Some(t0 + Duration::from_secs(1))
        );
        slot.close();
        assert!(slot.take().is_none(), "closed slot ends the drawer");
    }

    #[test]
    fn an_alert_is_written_once_even_when_its_snapshot_is_replaced() {
        let slot = DrawSlot::default();
        let t0 = Instant::now();
        slot.publish(snapshot(t0));
        slot.alert("\x07");
        slot.publish(snapshot(t0 + Duration::from_secs(1)));
        assert_eq!(slot.take().map(|(_, alert)| alert).as_deref(), Some("\x07"));
        slot.publish(snapshot(t0));
        assert_eq!(slot.take().map(|(_, alert)| alert).as_deref(), Some(""));
    }

    #[test]
    fn a_redraw_request_draws_the_last_snapshot_unless_a_newer_one_waits() {
        let slot = Arc::new(DrawSlot::default());
        let t0 = Instant::now();
        slot.publish(snapshot(t0));
        assert!(matches!(slot.take(), Some((Some(_), _))));
        // Requested from another thread while the drawer waits: it wakes to redraw.
        let requester = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || slot.redraw())
        };
        assert!(matches!(slot.take(), Some((None, _))), "a redraw");
        requester.join().unwrap();
        // A newer snapshot covers a pending redraw: one draw, of the new snapshot.
        slot.redraw();
        slot.publish(snapshot(t0 + Duration::from_secs(1)));
        assert!(matches!(slot.take(), Some((Some(_), _))));
        assert!(
            !slot.state.lock().unwrap().redraw,
            "the redraw was folded in"
        );
    }

    #[test]
    fn closing_wakes_a_waiting_drawer() {
        let slot = Arc::new(DrawSlot::default());
        let waiter = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || slot.take().is_none())
        };
        slot.close();
        assert!(waiter.join().unwrap());
    }
}
