//! The chat on the call screen: the pane of messages (time, sender, text), the input
//! line, and the one rule for putting chat text on a terminal: control characters
//! (escape sequences, carriage returns, bells) are replaced, never written raw.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{ChatLine, Input, InputPurpose, Model};

/// What a control character in chat text is shown as.
pub const REPLACEMENT: char = '\u{FFFD}';

/// `text` safe to draw: line breaks and tabs become spaces, every other control
/// character (C0, DEL, C1: `char::is_control`) becomes [`REPLACEMENT`].
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// `HH:MM` of `line`'s time in UTC (the view has no time zone database).
fn clock(line: &ChatLine) -> String {
    let secs = line
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60)
}

/// `area` split for the chat pane: what is left at the left (the video goes there, so
/// the pane never covers it), and the pane at the right, a third of the width (24 to
/// 48 columns).
pub fn split(area: Rect) -> (Rect, Rect) {
    let width = (area.width / 3).clamp(24, 48).min(area.width);
    let rest = Rect {
        width: area.width - width,
        ..area
    };
    let pane = Rect::new(rest.right(), area.y, width, area.height);
    (rest, pane)
}

/// The chat pane in `rect` (see [`split`]): the latest messages that fit, newest at the
/// bottom.
pub fn draw_pane(frame: &mut Frame, model: &Model, rect: Rect) {
    let lines: Vec<Line> = model
        .chat
        .iter()
        .map(|line| {
            Line::from(vec![
                Span::raw(format!("{} ", clock(line))).dark_gray(),
                Span::raw(format!("{}: ", printable(line.from.as_str()))).fg(Color::Cyan),
                Span::raw(printable(&line.text)),
            ])
        })
        .collect();
    let (inner_width, inner_height) = (
        usize::from(rect.width.saturating_sub(2)).max(1),
        rect.height.saturating_sub(2),
    );
    // Scroll so the newest message is on the last row (rows each line wraps to).
    let total: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(inner_width).max(1))
        .sum();
    let scroll = u16::try_from(total)
        .unwrap_or(u16::MAX)
        .saturating_sub(inner_height);
    let paragraph = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(" chat "));
    frame.render_widget(Clear, rect);
    frame.render_widget(paragraph.scroll((scroll, 0)), rect);
}

/// The input line that replaces the help line while a message or path is typed.
pub fn input_line(input: &Input) -> Line<'static> {
    let prompt = match input.purpose {
        InputPurpose::Chat => " say: ",
        InputPurpose::SendFile => " send file: ",
        InputPurpose::Dial => " call: ",
    };
    Line::from(vec![
        Span::raw(prompt).bold(),
        Span::raw(printable(&input.text)),
        Span::styled("▏", Style::default().fg(Color::Cyan)),
        Span::raw("   Enter send · Esc cancel").dark_gray(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let hostile = "hi\x1b[2J\x1b]0;owned\x07 there\r\nbye\u{9b}31m";
        let shown = printable(hostile);
        assert!(shown.chars().all(|c| !c.is_control()), "{shown:?}");
        assert_eq!(
            shown,
            "hi\u{FFFD}[2J\u{FFFD}]0;owned\u{FFFD} there  bye\u{FFFD}31m"
        );
        assert_eq!(printable("héllo <b>"), "héllo <b>");
    }

    #[test]
    fn the_pane_takes_a_third_at_the_right_and_leaves_the_rest_beside_it() {
        let (rest, pane) = split(Rect::new(0, 1, 120, 30));
        assert_eq!(pane, Rect::new(80, 1, 40, 30));
        assert_eq!(rest, Rect::new(0, 1, 80, 30));
        // Narrow screens keep a readable pane; wide ones cap it.
        assert_eq!(split(Rect::new(0, 0, 60, 5)).1.width, 24);
        assert_eq!(split(Rect::new(0, 0, 300, 5)).1.width, 48);
        // Narrower than the pane: all of it is the pane, nothing is left.
        let (rest, pane) = split(Rect::new(3, 0, 20, 5));
        assert_eq!((rest.width, pane), (0, Rect::new(3, 0, 20, 5)));
    }
}
