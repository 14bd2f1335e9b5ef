//! Draws the call screen from a [`Model`] and the latest frames: the remote video
//! (or the listening screen, or the incoming-call prompt) above a notice line, a
//! status bar and a help line, with the self-view, stats panel and help overlay on top.
//!
//! Drawing never changes the model; [`View`] only keeps the renderers' buffers so a
//! frame does not allocate.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use std::sync::Arc;

use super::app::{
    CallView, Model, NoticeLevel, Role, RoomView, Screen, describe_end, format_clock,
};
use super::halfblock::fit;
use super::kitty::Transmission;
use super::passthrough::Passthrough;
use super::sixel::Redraw;
use super::video::{ColorMode, Graphics, RenderMode, VideoRenderer};
use super::{chat, grid, phone};
use crate::call::{CallState, CallStats, MediaState, UserId};
use crate::media::video::I420Frame;

/// The exact text of the incoming-call prompt after the caller's id.
pub const INCOMING_PROMPT: &str = "is calling: [a] accept  [r] refuse";

/// The latest frames a drawn screen shows.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    /// The peer's video in a 1:1 call.
    pub remote: Option<Arc<I420Frame>>,
    /// Each connected room member's video, by id.
    pub members: Vec<(UserId, Option<Arc<I420Frame>>)>,
    /// Our own camera.
    pub local: Option<Arc<I420Frame>>,
}

impl Frames {
    fn member(&self, id: &UserId) -> Option<&Arc<I420Frame>> {
        self.members
            .iter()
            .find(|(m, _)| m == id)
            .and_then(|(_, f)| f.as_ref())
    }
}

/// Border colors of a room's tiles, in tile order: four that tell tiles apart on any
/// terminal palette.
const TILE_COLORS: [Color; 4] = [Color::Cyan, Color::Magenta, Color::Yellow, Color::Green];

/// Kitty image ids and depths: the remote video (or a room tile, `TILE_IMAGES + i`)
/// under the self-view, both under text.
const REMOTE_IMAGE: (u32, i32) = (1, -2);
const SELF_VIEW_IMAGE: (u32, i32) = (2, -1);
const TILE_IMAGES: u32 = 10;

/// The call screen's drawing state: renderers for the remote video (one per room
/// tile) and the self-view, the render mode, the terminal's color mode, and the
/// graphics-protocol output of the frame being drawn.
#[derive(Debug)]
pub struct View {
    remote: VideoRenderer,
    tiles: Vec<VideoRenderer>,
    local: VideoRenderer,
    render: RenderMode,
    colors: ColorMode,
    graphics: Graphics,
    redraw: Redraw,
    /// The remote frame (1:1 call) the last draw put on screen, if it put one.
    remote_shown: Option<Arc<I420Frame>>,
    /// Inside tmux: graphics go through to the terminal around it.
    passthrough: Option<Passthrough>,
    /// How kitty frames reach the terminal (tiles made later take it too).
    kitty: Transmission,
}

impl View {
    /// A view drawing video in `render` mode (`auto` is resolved here, once) and
    /// `colors`; `redraw` asks for another draw when a picture encoded off the drawing
    /// thread (sixel) is ready.
    pub fn new(render: RenderMode, colors: ColorMode, redraw: Redraw) -> Self {
        let render = render.resolve();
        tracing::info!(?render, ?colors, "drawing video");
        let (remote, remote_z) = REMOTE_IMAGE;
        let (local, local_z) = SELF_VIEW_IMAGE;
        let kitty = if render == RenderMode::Kitty {
            Transmission::for_this_terminal(false)
        } else {
            Transmission::Direct
        };
        Self {
            remote: VideoRenderer::new(render, remote, remote_z, kitty, &redraw),
            tiles: Vec::new(),
            local: VideoRenderer::new(render, local, local_z, kitty, &redraw),
            render,
            colors,
            graphics: Graphics::default(),
            redraw,
            remote_shown: None,
            passthrough: None,
            kitty,
        }
    }

    /// Sends kitty frames through shared memory ([`Transmission::SharedMemory`]), for a
    /// terminal that read the probe's object, unless it is reached over SSH (PNGs
    /// then); other modes need nothing of it.
    pub fn use_kitty_shared_memory(&mut self) {
        if self.render == RenderMode::Kitty {
            self.kitty = Transmission::for_this_terminal(true);
            for renderer in [&mut self.remote, &mut self.local]
                .into_iter()
                .chain(self.tiles.iter_mut())
            {
                renderer.set_kitty_transmission(self.kitty);
            }
        }
    }

    /// Sends graphics (kitty, sixel) through tmux to the terminal around it
    /// ([`Passthrough`]; a clone refreshed elsewhere moves them); cell modes need
    /// nothing of it.
    pub fn pass_graphics_through(&mut self, passthrough: Passthrough) {
        if matches!(self.render, RenderMode::Kitty | RenderMode::Sixel) {
            tracing::info!(?passthrough, "graphics through tmux");
            super::terminal::graphics_pass_through_tmux();
            self.passthrough = Some(passthrough);
        }
    }

    /// The peer's frame (1:1 call) whose picture the last draw put on screen, if that
    /// draw put one there.
    pub fn remote_shown(&self) -> Option<&Arc<I420Frame>> {
        self.remote_shown.as_ref()
    }

    /// Notes that the screen was cleared: the next draw writes every image again.
    pub fn screen_cleared(&mut self) {
        self.graphics.screen_cleared();
    }

    /// The graphics-protocol commands of the frame last drawn (images placed, images
    /// whose area went away deleted): to write after its cells.
    pub fn take_graphics(&mut self) -> Vec<u8> {
        let graphics = self.graphics.take();
        match &self.passthrough {
            Some(passthrough) => passthrough.wrap(&graphics),
            None => graphics,
        }
    }

    /// Whether the frame last drawn left sixel pixels where nothing shows now: clear
    /// the screen and draw it again.
    pub fn take_clear_request(&mut self) -> bool {
        self.graphics.take_clear()
    }

    /// Draws the whole screen for `model` with the latest `frames`.
    pub fn draw(&mut self, frame: &mut Frame, model: &Model, frames: &Frames) {
        let local = frames.local.as_ref();
        self.remote_shown = None;
        // Sixel pixels would cover text drawn over them: in a call or a room the help
        // and the network panels go beside the video instead; elsewhere (the idle
        // screen's self-view) they hide it.
        let beside = matches!(self.render, RenderMode::Sixel)
            && (model.stats_panel || model.help)
            && matches!(model.screen, Screen::Call(_) | Screen::Room(_));
        self.graphics.covered = (model.help || model.stats_panel) && !beside;
        let notice_height = u16::from(model.notice.is_some());
        let [main, notice, status, help] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(notice_height),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let in_call = model.call().is_some_and(CallView::is_live) || model.room().is_some();
        // The chat pane sits beside the video, never over it.
        let whole = main;
        let (main, chat_pane) = if model.chat_pane && in_call {
            let (rest, pane) = chat::split(main);
            (rest, Some(pane))
        } else {
            (main, None)
        };
        match &model.screen {
            Screen::Idle => {
                draw_idle(frame, model, main);
                if model.self_view && model.phone_idle() {
                    // The camera preview, to check the picture before answering.
                    self.draw_self_view(frame, model, false, main, local);
                }
            }
            Screen::Incoming { from, .. } => {
                centered_text(
                    frame,
                    main,
                    vec![Line::from(format!("{from} {INCOMING_PROMPT}")).bold()],
                );
                if model.self_view {
                    self.draw_self_view(frame, model, false, main, local);
                }
            }
            Screen::Call(call) => {
                let (video, side) = split_beside(main, model, beside);
                self.draw_call(frame, model, call, video, frames.remote.as_ref());
                if model.self_view && call.is_live() {
                    let media_flows =
                        matches!(call.state, CallState::Connected | CallState::Reconnecting);
                    self.draw_self_view(frame, model, media_flows, video, local);
                }
                match side {
                    Some(side) => {
                        let panel = NetworkPanel {
                            title: " network ".to_string(),
                            stats: call.stats.as_deref(),
                        };
                        draw_side_panels(frame, model, &[panel], side);
                    }
                    None if model.stats_panel => {
                        draw_stats_panel(frame, call.stats.as_deref(), " network ", main);
                    }
                    None => {}
                }
            }
            Screen::Room(room) => {
                let (video, side) = split_beside(main, model, beside);
                self.draw_room(frame, model, room, video, frames, side.is_none());
                if model.self_view {
                    let media_flows = room.tiles.iter().any(|t| t.state == CallState::Connected);
                    self.draw_self_view(frame, model, media_flows, video, local);
                }
                if let Some(side) = side {
                    let panels: Vec<NetworkPanel> = room
                        .tiles
                        .iter()
                        .map(|tile| NetworkPanel {
                            title: format!(" network · {} ", tile.peer),
                            stats: tile.stats.as_deref(),
                        })
                        .collect();
                    draw_side_panels(frame, model, &panels, side);
                }
            }
        }
        // The end of a call is said in the main area already; once that gives way
        // to the listening screen the notice line keeps it.
        let repeated = model
            .call()
            .filter(|call| !call.is_live())
            .is_some_and(|call| {
                model
                    .notice
                    .as_ref()
                    .is_some_and(|n| n.text == call_message(call))
            });
        if let Some(pane) = chat_pane {
            chat::draw_pane(frame, model, pane);
        }
        if let Some(n) = model.notice.as_ref().filter(|_| !repeated) {
            let color = match n.level {
                NoticeLevel::Info => Color::Cyan,
                NoticeLevel::Warning => Color::Yellow,
                NoticeLevel::Error => Color::Red,
            };
            frame.render_widget(Paragraph::new(n.text.as_str()).fg(color), notice);
        }
        frame.render_widget(
            Paragraph::new(status_line(model, status.width, self.render)).reversed(),
            status,
        );
        match &model.input {
            Some(input) => frame.render_widget(Paragraph::new(chat::input_line(input)), help),
            None => frame.render_widget(Paragraph::new(help_line(model)).dark_gray(), help),
        }
        if model.help && !beside {
            draw_help_overlay(frame, whole);
        }
    }

    fn draw_call(
        &mut self,
        frame: &mut Frame,
        model: &Model,
        call: &CallView,
        area: Rect,
        remote: Option<&Arc<I420Frame>>,
    ) {
        let showing_video = matches!(
            call.state,
            CallState::Connected | CallState::Reconnecting | CallState::Connecting
        ) && call.peer_media.camera;
        match remote.filter(|_| showing_video) {
            Some(picture) => {
                self.remote_shown = self.remote.draw(
                    frame,
                    picture,
                    area,
                    model.cell_size,
                    self.colors,
                    &mut self.graphics,
                );
            }
            None => {
                centered_text(frame, area, vec![Line::from(call_message(call))]);
            }
        }
    }

    /// The room's grid: a tile per member (see [`super::grid`]), each with its name,
    /// mic/camera state and speaking indicator in its border, its video inside, and,
    /// with `panels_inside`, its own network panel over the video when `s` is on.
    fn draw_room(
        &mut self,
        frame: &mut Frame,
        model: &Model,
        room: &RoomView,
        area: Rect,
        frames: &Frames,
        panels_inside: bool,
    ) {
        if room.tiles.is_empty() {
            let lines = vec![
                Line::from(format!("In room {}", room.room)).bold(),
                Line::from("Waiting for others to join").dark_gray(),
            ];
            centered_text(frame, area, lines);
            return;
        }
        let areas = grid::tile_areas(area, room.tiles.len());
        if self.tiles.len() < areas.len() {
            let mode = self.render;
            let (z, first) = (REMOTE_IMAGE.1, self.tiles.len());
            let (redraw, kitty) = (&self.redraw, self.kitty);
            self.tiles.extend((first..areas.len()).map(|i| {
                // i < 4: a room holds four.
                VideoRenderer::new(mode, TILE_IMAGES + i as u32, z, kitty, redraw)
            }));
        }
        for (i, (tile, rect)) in room.tiles.iter().zip(areas).enumerate() {
            let color = TILE_COLORS[i % TILE_COLORS.len()];
            let mut block = Block::bordered()
                .title(grid::tile_title(tile))
                .border_style(Style::default().fg(color));
            if tile.speaking() {
                block = block.border_style(Style::default().fg(color).add_modifier(Modifier::BOLD));
            }
            let inner = block.inner(rect);
            frame.render_widget(block, rect);
            let showing_video =
                matches!(tile.state, CallState::Connected | CallState::Reconnecting)
                    && tile.peer_media.camera;
            match frames.member(&tile.peer).filter(|_| showing_video) {
                Some(picture) => {
                    let _ = self.tiles[i].draw(
                        frame,
                        picture,
                        inner,
                        model.cell_size,
                        self.colors,
                        &mut self.graphics,
                    );
                }
                None => {
                    let text = match tile.state {
                        CallState::Connected | CallState::Reconnecting
                            if !tile.peer_media.camera =>
                        {
                            "camera off".to_string()
                        }
                        CallState::Connected => "waiting for video…".to_string(),
                        state => format!("{state}…"),
                    };
                    centered_text(frame, inner, vec![Line::from(text).fg(color)]);
                }
            }
            if model.stats_panel && panels_inside {
                draw_stats_panel(frame, tile.stats.as_deref(), " network ", inner);
            }
        }
    }

    /// Our camera in the bottom-right corner, a quarter of the width at most, shaped
    /// like the picture (no bars), with a one-cell margin. Our camera starts sending
    /// once media flows, so before that an empty corner is not "no camera".
    fn draw_self_view(
        &mut self,
        frame: &mut Frame,
        model: &Model,
        media_flows: bool,
        area: Rect,
        local: Option<&Arc<I420Frame>>,
    ) {
        let max_cols = (area.width / 4).max(12).min(area.width.saturating_sub(2));
        let max_rows = (area.height / 3).max(4).min(area.height.saturating_sub(2));
        if !model.local_media.camera || local.is_none() {
            let label = match (model.local_media.camera, media_flows) {
                (false, _) => " camera off ",
                (true, true) => " no camera ",
                (true, false) => return,
            };
            let width = (label.chars().count() as u16).min(area.width);
            let rect = Rect::new(
                area.right().saturating_sub(width + 1),
                area.bottom().saturating_sub(2),
                width,
                1,
            );
            frame.render_widget(Paragraph::new(label).reversed(), rect.intersection(area));
            return;
        }
        let Some(picture) = local else { return };
        let Some(placement) = fit(
            picture.width(),
            picture.height(),
            max_cols,
            max_rows,
            model.cell_size,
        ) else {
            return;
        };
        let (cols, rows) = (placement.width, placement.height.div_ceil(2));
        let rect = Rect::new(
            area.right().saturating_sub(cols + 1),
            area.bottom().saturating_sub(rows + 1),
            cols,
            rows,
        )
        .intersection(area);
        let _ = self.local.draw(
            frame,
            picture,
            rect,
            model.cell_size,
            self.colors,
            &mut self.graphics,
        );
    }
}

/// What the main area says about `call` when it shows no video.
fn call_message(call: &CallView) -> String {
    let peer = &call.peer;
    match call.state {
        CallState::Calling => format!("Calling {peer}…"),
        CallState::Ringing => format!("Ringing {peer}…"),
        CallState::Connecting => format!("Connecting to {peer}…"),
        CallState::Connected | CallState::Reconnecting if !call.peer_media.camera => {
            format!("{peer}'s camera is off")
        }
        CallState::Connected => format!("Waiting for video from {peer}…"),
        CallState::Reconnecting => format!("Reconnecting to {peer}…"),
        CallState::Ended => format!(
            "Call ended: {}",
            describe_end(call.reason, peer, call.direction)
        ),
    }
}

fn draw_idle(frame: &mut Frame, model: &Model, area: Rect) {
    if model.phone_idle() {
        return phone::draw(frame, model, area);
    }
    let first = match (&model.session, model.role) {
        (None, _) if model.server_lost => "Reconnecting to the server…".to_string(),
        (None, _) => "Connecting to the server…".to_string(),
        (Some(s), Role::Listen) => format!("Listening as {} on {}", s.id, s.server),
        (Some(s), Role::Call) => format!("Logged in as {} on {}", s.id, s.server),
        (Some(s), Role::Room) => format!("Joining the room as {} on {}", s.id, s.server),
    };
    centered_text(frame, area, vec![Line::from(first).bold()]);
}

/// `lines` centered horizontally and vertically in `area`.
fn centered_text(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>) {
    let height = (lines.len() as u16).min(area.height);
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        middle,
    );
}

/// `mic on · cam on` style summary of a side's media.
fn media_summary(media: MediaState) -> String {
    format!(
        "mic {} · cam {}",
        if media.muted { "muted" } else { "on" },
        if media.camera { "on" } else { "off" }
    )
}

/// The status bar: peer, call state (with the clock), both sides' media, network.
/// Segments that do not fit in `width` columns are dropped from the right (the
/// network figures first; `s` shows them in full).
/// The status bar: who, the call's state, both sides' media, the network figures and
/// (last, the first to go when the bar is narrow) how video is drawn.
fn status_line(model: &Model, width: u16, render: RenderMode) -> Line<'static> {
    let sep = || Span::raw(" │ ");
    let mut spans = vec![];
    match &model.screen {
        Screen::Call(call) => {
            spans.push(Span::raw(format!(" {} ", call.peer)).bold());
            spans.push(sep());
            let state = match (call.state, model.call_duration()) {
                (CallState::Connected, Some(d)) => format!("connected {}", format_clock(d)),
                (CallState::Ended, _) => match call.reason {
                    Some(reason) => format!("ended: {reason}"),
                    None => "ended".into(),
                },
                (state, _) => state.to_string(),
            };
            spans.push(Span::raw(state));
            spans.push(sep());
            spans.push(Span::raw(format!(
                "you: {}",
                media_summary(model.local_media)
            )));
            spans.push(sep());
            spans.push(Span::raw(format!(
                "{}: {}",
                call.peer,
                media_summary(call.peer_media)
            )));
            // Figures of an ended call are frozen: not shown as if live.
            if let Some(stats) = call.stats.as_ref().filter(|_| call.is_live()) {
                spans.push(sep());
                spans.push(Span::raw(network_summary(stats)));
            }
            spans.push(sep());
            spans.push(Span::raw(render.label()));
        }
        Screen::Room(room) => {
            spans.push(Span::raw(format!(" room {} ", room.room)).bold());
            spans.push(sep());
            let connected = room
                .tiles
                .iter()
                .filter(|t| t.state == CallState::Connected)
                .count();
            spans.push(Span::raw(match room.tiles.len() {
                0 => "alone".to_string(),
                n => format!("{connected} of {n} connected"),
            }));
            spans.push(sep());
            spans.push(Span::raw(format!(
                "you: {}",
                media_summary(model.local_media)
            )));
            spans.push(sep());
            spans.push(Span::raw(render.label()));
        }
        Screen::Incoming { from, .. } => {
            spans.push(Span::raw(format!(" {from} ")).bold());
            spans.push(sep());
            spans.push(Span::raw("incoming call"));
            spans.push(sep());
            spans.push(Span::raw(format!(
                "you: {}",
                media_summary(model.local_media)
            )));
        }
        Screen::Idle => {
            let who = model
                .session
                .as_ref()
                .map_or_else(|| "not logged in".to_string(), |s| s.id.to_string());
            spans.push(Span::raw(format!(" {who} ")).bold());
            spans.push(sep());
            spans.push(Span::raw(if model.server_lost {
                "reconnecting"
            } else {
                "idle"
            }));
            spans.push(sep());
            spans.push(Span::raw(format!(
                "you: {}",
                media_summary(model.local_media)
            )));
        }
    }
    if model.unread > 0 && spans.len() >= 3 {
        // Right after the state: the last segment to go when the bar is too narrow.
        spans.insert(3, sep());
        spans.insert(4, Span::raw(format!("{} unread [c]", model.unread)).bold());
    }
    // Keep peer and state; drop trailing (separator, segment) pairs that overflow.
    while spans.len() > 3 && spans.iter().map(Span::width).sum::<usize>() > usize::from(width) {
        spans.truncate(spans.len() - 2);
    }
    Line::from(spans)
}

/// `rtt 23 ms · loss 0 · 15 fps · 712 kbit/s`.
fn network_summary(stats: &CallStats) -> String {
    let rtt = stats.rtt_ms.map_or_else(|| "–".to_string(), format_rtt_ms);
    format!(
        "rtt {rtt} ms · loss {} · {:.0} fps · {:.0} kbit/s",
        stats.packets_lost,
        stats.video_fps_in,
        stats.video_kbps_in + stats.audio_kbps_in
    )
}

/// An RTT in milliseconds: whole from 10 ms up, one decimal below (loopback
/// and LAN calls measure well under a millisecond, which `0` would misstate).
fn format_rtt_ms(ms: f64) -> String {
    if ms < 9.95 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// The keys that do something right now.
fn help_line(model: &Model) -> Line<'static> {
    let mute = if model.local_media.muted {
        "[m] unmute"
    } else {
        "[m] mute"
    };
    let camera = if model.local_media.camera {
        "[v] camera off"
    } else {
        "[v] camera on"
    };
    let in_call = |hang_up| {
        vec![
            hang_up,
            mute,
            camera,
            "[t] chat",
            "[p] self-view",
            "[s] stats",
            "[?] help",
            "[q] quit",
        ]
    };
    let keys: Vec<&str> = match &model.screen {
        Screen::Incoming { .. } => vec![
            "[a] accept",
            "[r] refuse",
            mute,
            camera,
            "[?] help",
            "[q] quit",
        ],
        Screen::Room(_) => in_call("[h] leave"),
        Screen::Call(call) if call.is_live() => in_call("[h] hang up"),
        _ => vec![mute, camera, "[?] help", "[q] quit"],
    };
    Line::from(format!(" {}", keys.join("  ")))
}

/// The echo canceller's figures: `echo         ERLE 31 dB, 64 ms` (the residual echo
/// likelihood too when the canceller gives it), or `–` when none runs.
fn echo_line(s: &CallStats) -> String {
    let Some(erle) = s.echo_erle_db else {
        return "echo         –".into();
    };
    let mut line = format!("echo         ERLE {erle:.0} dB");
    if let Some(delay) = s.echo_delay_ms {
        line.push_str(&format!(", {delay} ms"));
    }
    if let Some(residual) = s.residual_echo_likelihood {
        line.push_str(&format!(", residual {residual:.2}"));
    }
    line
}

/// Width of the network panel in cells: room for "remote       relay
/// 255.255.255.255:65535" and the border.
const STATS_PANEL_WIDTH: u16 = 44;

/// The detailed network panel of one call, titled `title`, in the top-right corner of
/// `area` (clipped to its height: the most looked-at figures come first).
fn draw_stats_panel(frame: &mut Frame, stats: Option<&CallStats>, title: &str, area: Rect) {
    let lines: Vec<Line> = match stats {
        None => vec![Line::from("no figures yet")],
        Some(s) => {
            let size = s
                .video_size_in
                .map_or_else(|| "–".to_string(), |[w, h]| format!("{w}x{h}"));
            let rtt = s
                .rtt_ms
                .map_or_else(|| "–".to_string(), |ms| format!("{} ms", format_rtt_ms(ms)));
            let bandwidth = s
                .available_bandwidth_kbps
                .map_or_else(|| "–".to_string(), |k| format!("{k:.0} kbit/s"));
            let sending = s.video_size_out.map_or_else(
                || "–".to_string(),
                |[w, h]| format!("{w}x{h}@{}", s.video_fps_target),
            );
            vec![
                Line::from(format!("RTT          {rtt}")),
                // Near the top: a short terminal clips the panel's last lines.
                path_line("local", s.path.map(|p| p.local)),
                path_line("remote", s.path.map(|p| p.remote)),
                Line::from(format!("lost         {} packets", s.packets_lost)),
                Line::from(format!("jitter       {:.1} ms", s.jitter_ms)),
                Line::from(format!(
                    "video in     {:.1} fps {:.0} kbit/s",
                    s.video_fps_in, s.video_kbps_in
                )),
                Line::from(format!(
                    "video out    {:.1} fps {:.0} kbit/s",
                    s.video_fps_out, s.video_kbps_out
                )),
                Line::from(format!(
                    "audio in/out {:.0}/{:.0} kbit/s",
                    s.audio_kbps_in, s.audio_kbps_out
                )),
                Line::from(format!(
                    "level in/out {:.0}/{:.0} dBFS",
                    s.audio_level_in_dbfs, s.audio_level_out_dbfs
                )),
                Line::from(echo_line(s)),
                Line::from(format!(
                    "playout      {:.0} ms, {} concealed",
                    s.audio_playout_delay_ms, s.audio_concealed_frames
                )),
                Line::from(format!(
                    "audio repair {} FEC, {} RED; FEC for {} % loss",
                    s.audio_fec_recovered_frames,
                    s.audio_red_recovered_frames,
                    s.audio_fec_planned_percent
                )),
                Line::from(format!("video size   {size}")),
                Line::from(format!("decoded      {} frames", s.frames_decoded)),
                Line::from(format!(
                    "video jb     {:.0} ms, {} skipped",
                    s.video_jitter_buffer_delay_ms, s.video_frames_skipped
                )),
                Line::from(format!(
                    "freezes      {}, {:.1} s",
                    s.freeze_count, s.total_freezes_duration_s
                )),
                Line::from(format!("bandwidth    {bandwidth}")),
                Line::from(format!(
                    "sending      {sending} {:.0} kbit/s",
                    s.video_target_kbps
                )),
                Line::from(format!(
                    "repairs      {} sent, {} in",
                    s.retransmissions_sent, s.video_packets_recovered
                )),
                Line::from(format!("PLI sent     {}", s.pli_sent)),
                Line::from(format!("keyframes    {} sent", s.keyframes_sent)),
            ]
        }
    };
    let width = STATS_PANEL_WIDTH.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let rect = Rect::new(area.right().saturating_sub(width), area.y, width, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        rect,
    );
}

/// One end of the selected ICE candidate pair: its type and address, so a relayed
/// call reads `relay`.
fn path_line(label: &str, end: Option<crate::call::stats::PathEnd>) -> Line<'static> {
    let end = end.map_or_else(|| "–".to_string(), |e| e.to_string());
    Line::from(format!("{label:<13}{end}"))
}

/// Columns beside sixel video for the panels `model` shows: the network panel's, or
/// the help's when it is up (the wider).
fn side_column_width(model: &Model) -> u16 {
    if model.help {
        help_width().max(STATS_PANEL_WIDTH)
    } else {
        STATS_PANEL_WIDTH
    }
}

/// The video area and, when the panels go `beside` it (sixel), the column on its right
/// that holds them ([`side_column_width`] wide).
fn split_beside(main: Rect, model: &Model, beside: bool) -> (Rect, Option<Rect>) {
    if !beside {
        return (main, None);
    }
    let [video, side] = Layout::horizontal([
        Constraint::Min(1),
        Constraint::Length(side_column_width(model).min(main.width)),
    ])
    .areas(main);
    (video, Some(side))
}

/// One network panel of the side column: a call's, or a room member's.
struct NetworkPanel<'a> {
    /// Its title, with a space each side (`" network "`, `" network · bob "`).
    title: String,
    /// The call's latest figures.
    stats: Option<&'a CallStats>,
}

/// The help and the network panels in the column beside sixel video: the help on top
/// when it is up, then the `panels` (a room's members) sharing the rest equally.
fn draw_side_panels(frame: &mut Frame, model: &Model, panels: &[NetworkPanel], side: Rect) {
    let help_height = if model.help { HELP_HEIGHT } else { 0 };
    let [help, rest] =
        Layout::vertical([Constraint::Length(help_height), Constraint::Min(0)]).areas(side);
    if model.help {
        let help = if model.stats_panel { help } else { side };
        draw_help_overlay(frame, help);
    }
    if !model.stats_panel {
        return;
    }
    let rows = Layout::vertical(panels.iter().map(|_| Constraint::Fill(1))).split(rest);
    for (panel, area) in panels.iter().zip(rows.iter()) {
        draw_stats_panel(frame, panel.stats, &panel.title, *area);
    }
}

/// Columns the help overlay takes: the keys right-aligned in 7, two spaces, the longest
/// description, and the border.
fn help_width() -> u16 {
    let longest = HELP_KEYS.iter().map(|(_, what)| what.chars().count()).max();
    (longest.unwrap_or(0) + 7 + 2 + 2) as u16
}

/// Rows the help overlay takes: a key a line, and its border.
const HELP_HEIGHT: u16 = HELP_KEYS.len() as u16 + 2;

/// Every key and what it does.
const HELP_KEYS: [(&str, &str); 13] = [
    ("a", "accept the incoming call"),
    ("r", "refuse the incoming call"),
    ("h", "hang up (or cancel a call)"),
    ("t", "type a chat message (Enter sends)"),
    ("c", "show / hide the chat; listening: call someone"),
    ("f", "send a file (type its path)"),
    ("m", "mute / unmute the microphone"),
    ("v", "camera off / on"),
    ("p", "show / hide the self-view"),
    ("s", "show / hide network details"),
    ("?", "show / hide this help"),
    ("q", "quit (hangs up first)"),
    ("Ctrl-C", "same as q"),
];

/// Every key and what it does ([`HELP_KEYS`]), centered over `area`.
fn draw_help_overlay(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = HELP_KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{key:>7}  "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let width = help_width().min(area.width);
    let height = HELP_HEIGHT.min(area.height);
    let rect = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::call::{AppEvent, CallId, Direction, EndReason, RoomId, UserId};
    use crate::ui::app::{Msg, Tile, update};
    use crate::ui::video::UPPER_HALF_BLOCK;

    const COLS: u16 = 120;
    const ROWS: u16 = 24;

    /// Draws `model` on a 120x24 test terminal; returns its rows as text and the buffer.
    fn screen(
        model: &Model,
        remote: Option<&I420Frame>,
        local: Option<&I420Frame>,
    ) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS)).unwrap();
        let mut view = View::new(RenderMode::Halfblock, ColorMode::TrueColor, Redraw::none());
        let frames = Frames {
            remote: remote.cloned().map(Arc::new),
            local: local.cloned().map(Arc::new),
            members: Vec::new(),
        };
        terminal.draw(|f| view.draw(f, model, &frames)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let rows = (0..ROWS)
            .map(|y| {
                (0..COLS)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect();
        (rows, buffer)
    }

    fn contains(rows: &[String], text: &str) -> bool {
        rows.iter().any(|r| r.contains(text))
    }

    fn logged_in(role: Role) -> Model {
        let mut model = Model::new(role, Instant::now());
        update(
            &mut model,
            Msg::Event(AppEvent::LoggedIn {
                id: UserId::parse("jerry").unwrap(),
                server: "ws://127.0.0.1:8080".into(),
            }),
        );
        model
    }

    fn set_state(model: &mut Model, state: CallState, reason: Option<EndReason>) {
        update(
            model,
            Msg::Event(AppEvent::State {
                call_id: CallId::parse("c1").unwrap(),
                peer: UserId::parse("tom").unwrap(),
                direction: Direction::Outgoing,
                state,
                reason,
            }),
        );
    }

    #[test]
    fn listening_screen_says_who_and_where() {
        let (rows, _) = screen(&logged_in(Role::Listen), None, None);
        assert!(
            contains(&rows, "Listening as jerry on ws://127.0.0.1:8080"),
            "{rows:#?}"
        );
        assert!(contains(&rows[ROWS as usize - 1..], "[q] quit"));
        assert!(!contains(&rows, "[a] accept"));
    }

    #[test]
    fn listening_screen_lists_who_is_online_and_the_recent_calls() {
        use crate::call::history::HistoryEntry;
        use crate::call::{Presence, PresenceStatus};
        let mut model = logged_in(Role::Listen);
        let (rows, _) = screen(&model, None, None);
        assert!(contains(&rows, "does not share presence"), "{rows:#?}");
        assert!(contains(&rows, "no calls yet"));
        let presence = |id: &str, status| Presence {
            id: UserId::parse(id).unwrap(),
            status,
        };
        update(
            &mut model,
            Msg::Event(AppEvent::Presence {
                users: vec![
                    presence("spike", PresenceStatus::Busy),
                    presence("tom", PresenceStatus::Available),
                ],
            }),
        );
        let entry = HistoryEntry {
            time: std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_123_640),
            peer: UserId::parse("tyke").unwrap(),
            direction: Direction::Outgoing,
            duration_secs: 190,
            connected: true,
            reason: EndReason::Hangup,
            call_id: CallId::parse("c9").unwrap(),
        };
        update(
            &mut model,
            Msg::Event(AppEvent::History { calls: vec![entry] }),
        );
        let (rows, _) = screen(&model, None, None);
        assert!(contains(&rows, "Online (2)"), "{rows:#?}");
        assert!(contains(&rows, "● spike (busy)") && contains(&rows, "● tom"));
        assert!(
            contains(&rows, "12-01 11:14 ↗ tyke 00:03:10 you hung up"),
            "{rows:#?}"
        );
    }

    #[test]
    fn incoming_call_prompt_offers_accept_and_refuse() {
        let mut model = logged_in(Role::Listen);
        update(
            &mut model,
            Msg::Event(AppEvent::Incoming {
                call_id: CallId::parse("c1").unwrap(),
                from: UserId::parse("tom").unwrap(),
            }),
        );
        let (rows, _) = screen(&model, None, None);
        assert!(
            contains(&rows, "tom is calling: [a] accept  [r] refuse"),
            "{rows:#?}"
        );
        assert!(!contains(&rows, "Listening as"));
    }

    #[test]
    fn calling_screen_shows_the_peer_and_state() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Calling, None);
        let (rows, _) = screen(&model, None, None);
        assert!(contains(&rows, "Calling tom…"), "{rows:#?}");
        let status = &rows[ROWS as usize - 2];
        assert!(
            status.contains("tom") && status.contains("calling"),
            "{status}"
        );
        assert!(contains(&rows, "[h] hang up"));
    }

    #[test]
    fn connected_call_shows_video_clock_and_network() {
        let t0 = Instant::now();
        let mut model = logged_in(Role::Call);
        update(&mut model, Msg::Tick(t0));
        set_state(&mut model, CallState::Connected, None);
        update(&mut model, Msg::Tick(t0 + Duration::from_secs(65)));
        update(
            &mut model,
            Msg::Event(AppEvent::Stats {
                call_id: CallId::parse("c1").unwrap(),
                peer: UserId::parse("jerry").unwrap(),
                stats: Box::new(CallStats {
                    rtt_ms: Some(23.4),
                    video_fps_in: 15.0,
                    video_kbps_in: 600.0,
                    audio_kbps_in: 32.0,
                    packets_lost: 3,
                    ..CallStats::default()
                }),
            }),
        );
        // A red 4:3 picture: pillarboxed in the 120x22 video area (120x44 half-cells).
        let red = I420Frame::filled(640, 480, (81, 90, 240)).unwrap();
        let green = I420Frame::filled(320, 240, (145, 54, 34)).unwrap();
        let (rows, buffer) = screen(&model, Some(&red), Some(&green));
        let status = &rows[ROWS as usize - 2];
        assert!(status.contains("connected 00:01:05"), "{status}");
        assert!(
            status.contains("rtt 23 ms · loss 3 · 15 fps · 632 kbit/s"),
            "{status}"
        );
        let center = &buffer[(COLS / 2, 5)];
        assert_eq!(center.symbol(), UPPER_HALF_BLOCK);
        assert!(
            matches!(center.fg, Color::Rgb(r, g, b) if r > 250 && g < 5 && b < 5),
            "{center:?}"
        );
        // Bars left and right of the 59-column picture are black.
        assert_eq!(buffer[(30, 5)].symbol(), UPPER_HALF_BLOCK);
        assert_eq!(buffer[(0, 5)].fg, Color::Rgb(0, 0, 0));
        // The self-view sits in the bottom-right corner of the video area, in green.
        let corner = &buffer[(COLS - 3, 22 - 2)];
        assert!(
            matches!(corner.bg, Color::Rgb(r, g, _) if g > 250 && r < 5),
            "{corner:?}"
        );
    }

    #[test]
    fn muted_peer_is_shown_in_the_status_bar() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connected, None);
        update(
            &mut model,
            Msg::Event(AppEvent::PeerMedia {
                call_id: CallId::parse("c1").unwrap(),
                peer: UserId::parse("jerry").unwrap(),
                state: MediaState {
                    muted: true,
                    camera: false,
                },
            }),
        );
        let red = I420Frame::filled(640, 480, (81, 90, 240)).unwrap();
        let (rows, _) = screen(&model, Some(&red), None);
        let status = &rows[ROWS as usize - 2];
        assert!(status.contains("tom: mic muted · cam off"), "{status}");
        assert!(status.contains("you: mic on · cam on"), "{status}");
        // The last frame is not frozen on screen: the camera is off.
        assert!(contains(&rows, "tom's camera is off"), "{rows:#?}");
    }

    #[test]
    fn ended_call_shows_its_reason() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Calling, None);
        set_state(&mut model, CallState::Ended, Some(EndReason::NoAnswer));
        let (rows, _) = screen(&model, None, None);
        assert!(
            contains(&rows, "Call ended: tom did not answer"),
            "{rows:#?}"
        );
        assert!(
            rows[ROWS as usize - 2].contains("ended: no-answer"),
            "{}",
            rows[ROWS as usize - 2]
        );
        assert!(!contains(&rows, "[h] hang up"));
    }

    #[test]
    fn self_view_corner_is_empty_until_media_flows() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connecting, None);
        let (rows, _) = screen(&model, None, None);
        assert!(!contains(&rows, "no camera"), "{rows:#?}");
        set_state(&mut model, CallState::Connected, None);
        let (rows, _) = screen(&model, None, None);
        assert!(contains(&rows, " no camera "), "{rows:#?}");
        set_state(&mut model, CallState::Ended, Some(EndReason::Hangup));
        let (rows, _) = screen(&model, None, None);
        assert!(!contains(&rows, "no camera"), "{rows:#?}");
    }

    #[test]
    fn ended_call_says_its_reason_once_without_frozen_figures() {
        let mut model = logged_in(Role::Listen);
        set_state(&mut model, CallState::Connected, None);
        update(
            &mut model,
            Msg::Event(AppEvent::Stats {
                call_id: CallId::parse("c1").unwrap(),
                peer: UserId::parse("jerry").unwrap(),
                stats: Box::new(CallStats {
                    rtt_ms: Some(0.4),
                    ..CallStats::default()
                }),
            }),
        );
        let (rows, _) = screen(&model, None, None);
        assert!(rows[ROWS as usize - 2].contains("rtt 0.4 ms"), "{rows:#?}");
        set_state(&mut model, CallState::Ended, Some(EndReason::RemoteHangup));
        let (rows, _) = screen(&model, None, None);
        let said = rows
            .iter()
            .filter(|r| r.contains("Call ended: tom hung up"))
            .count();
        assert_eq!(said, 1, "{rows:#?}");
        assert!(!rows[ROWS as usize - 2].contains("rtt"), "{rows:#?}");
    }

    #[test]
    fn help_overlay_and_stats_panel_draw_over_the_call() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connected, None);
        model.help = true;
        model.stats_panel = true;
        let (rows, _) = screen(&model, None, None);
        assert!(contains(&rows, "mute / unmute the microphone"), "{rows:#?}");
        assert!(contains(&rows, " network "));
        assert!(contains(&rows, "no figures yet"));
    }

    /// Draws a connected call in sixel mode with `panels` set on the model until the
    /// image is written (see [`sixel_screen`]) and returns the screen's rows.
    fn sixel_call_with(panels: impl FnOnce(&mut Model)) -> Vec<String> {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connected, None);
        model.self_view = false;
        panels(&mut model);
        let picture = I420Frame::filled(320, 240, (120, 100, 160)).unwrap();
        let frames = Frames {
            remote: Some(Arc::new(picture)),
            local: None,
            members: Vec::new(),
        };
        sixel_screen(&model, &frames, 1)
    }

    /// Draws `model` in sixel mode until `images` sixel images have been written (their
    /// encoder threads: <= 5 s); asserts each ends left of the side column
    /// ([`side_column_width`]) and returns the screen's rows.
    fn sixel_screen(model: &Model, frames: &Frames, images: usize) -> Vec<String> {
        let (tx, redraws) = std::sync::mpsc::channel();
        let redraw = Redraw::new(move || {
            let _ = tx.send(());
        });
        let mut view = View::new(RenderMode::Sixel, ColorMode::TrueColor, redraw);
        let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS)).unwrap();
        let mut graphics = String::new();
        for _ in 0..50 {
            terminal.draw(|f| view.draw(f, model, frames)).unwrap();
            graphics.push_str(&String::from_utf8_lossy(&view.take_graphics()));
            if graphics.matches("\x1bP").count() >= images {
                break;
            }
            let _ = redraws.recv_timeout(std::time::Duration::from_millis(100));
        }
        let pieces: Vec<&str> = graphics.split("H\x1bP").collect();
        assert!(
            pieces.len() > images,
            "{images} sixel images while the panels are open"
        );
        for (before, image) in pieces.iter().zip(&pieces[1..]) {
            let column: u16 = before.rsplit(';').next().unwrap().parse().unwrap();
            let width_px: u16 = image
                .split("\"1;1;")
                .nth(1)
                .and_then(|raster| raster.split(';').next())
                .and_then(|w| w.parse().ok())
                .expect("the image's raster attributes");
            let width_cells = width_px.div_ceil(model.cell_size.width_px());
            // 1-based column: the image ends left of the side column.
            assert!(
                column - 1 + width_cells <= COLS - side_column_width(model),
                "image at column {column}, {width_cells} cells wide"
            );
        }
        let buffer = terminal.backend().buffer();
        (0..ROWS)
            .map(|y| (0..COLS).map(|x| buffer[(x, y)].symbol()).collect())
            .collect()
    }

    #[test]
    fn in_sixel_mode_a_rooms_network_panels_go_beside_its_videos() {
        let mut model = logged_in(Role::Room);
        model.self_view = false;
        model.stats_panel = true;
        model.help = true;
        let members = ["spike", "tyke"];
        let tiles = members
            .iter()
            .enumerate()
            .map(|(i, id)| Tile {
                call_id: CallId::parse(&format!("c{i}")).unwrap(),
                peer: UserId::parse(id).unwrap(),
                state: CallState::Connected,
                peer_media: MediaState::default(),
                stats: None,
            })
            .collect();
        model.screen = Screen::Room(RoomView {
            room: RoomId::parse("kitchen").unwrap(),
            tiles,
        });
        let picture = Arc::new(I420Frame::filled(320, 240, (120, 100, 160)).unwrap());
        let frames = Frames {
            remote: None,
            local: None,
            members: members
                .iter()
                .map(|id| (UserId::parse(id).unwrap(), Some(picture.clone())))
                .collect(),
        };
        let rows = sixel_screen(&model, &frames, members.len());
        let row_of = |title: &str| rows.iter().position(|r| r.contains(title));
        let keys = row_of("┌ keys ");
        let (spike, tyke) = (row_of("┌ network · spike "), row_of("┌ network · tyke "));
        assert_eq!(keys, Some(0), "{rows:#?}");
        assert_eq!(spike, Some(usize::from(HELP_HEIGHT)), "{rows:#?}");
        assert!(tyke > spike, "{rows:#?}");
    }

    #[test]
    fn in_sixel_mode_the_network_panel_goes_beside_the_video_which_stays() {
        let rows = sixel_call_with(|m| m.stats_panel = true);
        assert!(rows[0].contains(" network "), "{}", rows[0]);
    }

    #[test]
    fn in_sixel_mode_the_help_goes_beside_the_video_and_above_the_network_panel() {
        let rows = sixel_call_with(|m| m.help = true);
        assert!(rows.iter().any(|r| r.contains(" keys ")), "{rows:#?}");
        let rows = sixel_call_with(|m| {
            m.help = true;
            m.stats_panel = true;
        });
        let row_of = |title: &str| rows.iter().position(|r| r.contains(title));
        let (keys, network) = (row_of("┌ keys "), row_of("┌ network "));
        assert_eq!(keys, Some(0), "{rows:#?}");
        assert_eq!(network, Some(usize::from(HELP_HEIGHT)), "{rows:#?}");
    }

    #[test]
    fn stats_panel_shows_the_selected_candidate_pair() {
        use crate::call::stats::{CandidateKind, CandidatePath, PathEnd};
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connected, None);
        model.stats_panel = true;
        let path = CandidatePath {
            local: PathEnd {
                kind: CandidateKind::Relay,
                address: Some("203.0.113.7:49160".parse().unwrap()),
            },
            remote: PathEnd {
                kind: CandidateKind::Srflx,
                address: Some("198.51.100.2:40001".parse().unwrap()),
            },
        };
        update(
            &mut model,
            Msg::Event(AppEvent::Stats {
                call_id: CallId::parse("c1").unwrap(),
                peer: UserId::parse("jerry").unwrap(),
                stats: Box::new(CallStats {
                    path: Some(path),
                    ..CallStats::default()
                }),
            }),
        );
        let (rows, _) = screen(&model, None, None);
        assert!(
            contains(&rows, "local        relay 203.0.113.7:49160"),
            "{rows:#?}"
        );
        assert!(
            contains(&rows, "remote       srflx 198.51.100.2:40001"),
            "{rows:#?}"
        );
    }

    #[test]
    fn narrow_status_bar_drops_network_figures_first() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connected, None);
        update(
            &mut model,
            Msg::Event(AppEvent::Stats {
                call_id: CallId::parse("c1").unwrap(),
                peer: UserId::parse("jerry").unwrap(),
                stats: Box::default(),
            }),
        );
        let wide = status_line(&model, 200, RenderMode::Octant).to_string();
        let narrow = status_line(&model, 60, RenderMode::Octant).to_string();
        assert!(
            wide.contains("rtt") && !narrow.contains("rtt"),
            "{wide} / {narrow}"
        );
        assert!(
            wide.ends_with("octants") && !narrow.contains("octants"),
            "the render mode shows, and goes first: {wide} / {narrow}"
        );
        assert!(narrow.contains("connected 00:00:00"), "{narrow}");
        assert!(narrow.chars().count() <= 60, "{narrow}");
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let mut model = logged_in(Role::Call);
        set_state(&mut model, CallState::Connected, None);
        model.help = true;
        model.stats_panel = true;
        let red = I420Frame::filled(640, 480, (81, 90, 240)).unwrap();
        for (w, h) in [(1, 1), (3, 2), (10, 4), (200, 3)] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            let mut view = View::new(RenderMode::Halfblock, ColorMode::Ansi256, Redraw::none());
            let red = Some(Arc::new(red.clone()));
            let frames = Frames {
                remote: red.clone(),
                local: red,
                members: Vec::new(),
            };
            terminal.draw(|f| view.draw(f, &model, &frames)).unwrap();
        }
    }
}
