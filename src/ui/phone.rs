//! The listening screen of `rtc-cli listen`, a phone's idle screen: who we are, who is
//! online (when the server shares presence), the recent calls with one selected for
//! calling back, and the keys that dial.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{Model, describe_end, format_clock};
use crate::call::history::HistoryEntry;
use crate::call::{Direction, PresenceStatus};

/// Draws the listening screen into `area` (the caller has checked we are logged in).
pub fn draw(frame: &mut Frame, model: &Model, area: Rect) {
    let Some(session) = &model.session else {
        return;
    };
    let [title, hint, _, lists] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(format!("Listening as {} on {}", session.id, session.server))
            .bold()
            .alignment(Alignment::Center),
        title,
    );
    frame.render_widget(
        Paragraph::new("Waiting for calls · [c] call someone · [↑↓] pick · [b]/Enter call back")
            .dark_gray()
            .alignment(Alignment::Center),
        hint,
    );
    let [online, recent] =
        Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(lists);
    draw_online(frame, model, online);
    draw_recent(frame, model, recent);
}

fn draw_online(frame: &mut Frame, model: &Model, area: Rect) {
    let lines: Vec<Line> = match &model.online {
        None => vec![Line::from("the server does not share presence").dark_gray()],
        Some(users) if users.is_empty() => vec![Line::from("nobody else").dark_gray()],
        Some(users) => users
            .iter()
            .map(|p| match p.status {
                PresenceStatus::Busy => Line::from(vec![
                    Span::raw(format!("● {} ", p.id)).yellow(),
                    Span::raw("(busy)").dark_gray(),
                ]),
                _ => Line::from(format!("● {}", p.id)).green(),
            })
            .collect(),
    };
    let count = model.online.as_ref().map_or(0, Vec::len);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Online ({count}) "));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_recent(frame: &mut Frame, model: &Model, area: Rect) {
    let lines: Vec<Line> = if model.recent.is_empty() {
        vec![Line::from("no calls yet").dark_gray()]
    } else {
        model
            .recent
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let line = Line::from(history_line(entry));
                if i == model.selected {
                    line.reversed()
                } else {
                    line
                }
            })
            .collect()
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Recent calls ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// One call of the history as a line: `12-01 09:14 ↗ tom 00:03:10 you hung up`
/// (↗ we called, ↘ we were called; local time is not known here, so UTC).
pub fn history_line(entry: &HistoryEntry) -> String {
    let stamp = humantime::format_rfc3339_seconds(entry.time).to_string();
    // 2026-12-01T09:14:05Z → 12-01 09:14
    let short = stamp
        .get(5..16)
        .map_or(stamp.clone(), |s| s.replacen('T', " ", 1));
    let arrow = match entry.direction {
        Direction::Outgoing => "↗",
        Direction::Incoming => "↘",
    };
    let length = if entry.connected {
        format_clock(entry.duration())
    } else {
        "--:--:--".into()
    };
    format!(
        "{short} {arrow} {} {length} {}",
        entry.peer,
        describe_end(Some(entry.reason), &entry.peer, entry.direction)
    )
}
