//! Graphics through tmux. tmux keeps its own screen and drops graphics commands it does
//! not know (kitty graphics; sixel before tmux 3.4), but with `allow-passthrough on`
//! (tmux 3.3+) it forwards the contents of `ESC P tmux; … ESC \` (every ESC inside
//! doubled) to the terminal it runs in, unchanged and at once
//! (<https://github.com/tmux/tmux/wiki/FAQ>). Forwarded commands see that terminal's
//! screen, not the pane: the absolute cursor moves before each image are shifted by the
//! pane's offset, and each command is wrapped on its own so none exceeds tmux's limit
//! on one escape sequence.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The most bytes wrapped into one passthrough sequence: well under tmux's 1 MiB limit
/// on an escape sequence (`input.c`), so a large sixel image passes whole.
const MAX_WRAPPED: usize = 256 * 1024;

/// Begins and ends a synchronized update (DEC private mode 2026).
const BEGIN_SYNC: &[u8] = b"\x1b[?2026h";
const END_SYNC: &[u8] = b"\x1b[?2026l";

/// How long a `tmux` query may take before it counts as no answer.
const TMUX_TIMEOUT: Duration = Duration::from_secs(1);

/// Graphics passthrough into the terminal around the tmux pane this process runs in.
/// Clones share the pane's offset: [`Passthrough::refresh`] on one (off the drawing
/// thread: it asks tmux) moves the images of all.
#[derive(Debug, Clone)]
pub struct Passthrough {
    /// The pane's top row (high 16 bits) and left column (low 16 bits) in the outer
    /// terminal, 0-based.
    offset: Arc<AtomicU32>,
    /// The outer terminal's `TERM` as tmux saw it (`client_termname`), e.g.
    /// `xterm-kitty`.
    pub outer_term: String,
}

/// The `display -p` format that [`Passthrough::parse`] reads.
const PANE_FORMAT: &str = "#{pane_top} #{pane_left} #{client_termname}";

impl Passthrough {
    /// The passthrough of the tmux pane this process runs in: `None` outside tmux
    /// (`TMUX` unset), when `allow-passthrough` is off, or when tmux does not answer
    /// within a second.
    pub fn detect() -> Option<Self> {
        std::env::var_os("TMUX")?;
        let allowed = tmux(&["show", "-gv", "allow-passthrough"])?;
        if !matches!(allowed.trim(), "on" | "all") {
            tracing::info!(
                allowed = allowed.trim(),
                "tmux without graphics passthrough"
            );
            return None;
        }
        Self::parse(&pane()?)
    }

    /// Reads the answer to `display -p` in [`PANE_FORMAT`].
    fn parse(answer: &str) -> Option<Self> {
        let (top, left, outer_term) = parse_pane(answer)?;
        Some(Self {
            offset: Arc::new(AtomicU32::new(pack(top, left))),
            outer_term: outer_term.to_owned(),
        })
    }

    /// [`Passthrough::parse`] for other modules' tests.
    #[cfg(test)]
    pub(crate) fn parse_for_test(answer: &str) -> Self {
        Self::parse(answer).expect("a valid tmux answer")
    }

    /// Reads the pane's offset again (after a resize, panes may have moved); keeps the
    /// old one when tmux does not answer. Blocks for as long as tmux takes (at most a
    /// second): call it off the drawing thread.
    pub fn refresh(&self) {
        if let Some((top, left, _)) = pane().as_deref().and_then(parse_pane) {
            self.offset.store(pack(top, left), Ordering::Relaxed);
        }
    }

    /// The pane's top row and left column in the outer terminal.
    fn pane_offset(&self) -> (u32, u32) {
        let packed = self.offset.load(Ordering::Relaxed);
        (packed >> 16, packed & 0xffff)
    }

    /// Whether the outer terminal is kitty, which shows kitty graphics.
    pub fn outer_is_kitty(&self) -> bool {
        self.outer_term == "xterm-kitty"
    }

    /// `graphics` (complete escape sequences, as the video renderers write them: cursor
    /// saved, moved, an image drawn, cursor restored) made to pass through tmux:
    /// absolute cursor moves (`CSI row;col H`) shifted by the pane's offset, then the
    /// sequences wrapped, several to a passthrough sequence of up to 256 KiB (tmux
    /// takes at most 1 MiB). tmux may move the cursor between two passthrough
    /// sequences, so each one saves the cursor, moves it back to where the last move
    /// put it, and restores it at its end (the renderers' own saves and restores are
    /// replaced by these). The first one begins a synchronized update (mode 2026) and
    /// the last one ends it, so the terminal does not show an image half replaced
    /// while tmux writes between them. Bytes outside an escape sequence are dropped.
    pub fn wrap(&self, graphics: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(graphics.len() + graphics.len() / 64 + 16);
        let mut block: Vec<u8> = Vec::new();
        let mut position: Option<Vec<u8>> = None;
        for sequence in Sequences(graphics) {
            if matches!(sequence, b"\x1b7" | b"\x1b8") {
                continue;
            }
            if !block.is_empty() && block.len() + sequence.len() > MAX_WRAPPED {
                block.extend_from_slice(b"\x1b8");
                flush(&mut out, &mut block);
            }
            if block.is_empty() {
                if out.is_empty() {
                    block.extend_from_slice(BEGIN_SYNC);
                }
                block.extend_from_slice(b"\x1b7");
                block.extend_from_slice(position.as_deref().unwrap_or_default());
            }
            match self.shift(sequence) {
                Some(moved) => {
                    block.extend_from_slice(&moved);
                    position = Some(moved);
                }
                None => block.extend_from_slice(sequence),
            }
        }
        if !block.is_empty() {
            block.extend_from_slice(b"\x1b8");
            block.extend_from_slice(END_SYNC);
            flush(&mut out, &mut block);
        }
        out
    }

    /// `CSI row;col H` moved by the pane's offset; `None` for any other sequence.
    fn shift(&self, sequence: &[u8]) -> Option<Vec<u8>> {
        let params = sequence.strip_prefix(b"\x1b[")?.strip_suffix(b"H")?;
        let text = std::str::from_utf8(params).ok()?;
        let (row, col) = text.split_once(';')?;
        let row: u32 = row.parse().ok()?;
        let col: u32 = col.parse().ok()?;
        let (top, left) = self.pane_offset();
        Some(format!("\x1b[{};{}H", row + top, col + left).into_bytes())
    }
}

/// This pane's line of `tmux display -p` in [`PANE_FORMAT`], or `None` (no answer).
fn pane() -> Option<String> {
    let mut args = vec!["display", "-p"];
    let pane = std::env::var("TMUX_PANE").ok();
    if let Some(pane) = pane.as_deref() {
        args.extend(["-t", pane]);
    }
    args.push(PANE_FORMAT);
    tmux(&args)
}

/// (top, left, outer `TERM`) from a line in [`PANE_FORMAT`].
fn parse_pane(answer: &str) -> Option<(u16, u16, &str)> {
    let mut fields = answer.split_whitespace();
    let top = fields.next()?.parse().ok()?;
    let left = fields.next()?.parse().ok()?;
    Some((top, left, fields.next().unwrap_or_default()))
}

/// `top` and `left` in one word.
fn pack(top: u16, left: u16) -> u32 {
    (u32::from(top) << 16) | u32::from(left)
}

/// `sequence` (one whole escape sequence with no cursor position in it) wrapped in a
/// passthrough sequence.
pub fn wrap_whole(sequence: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sequence.len() * 2 + 9);
    flush(&mut out, &mut sequence.to_vec());
    out
}

/// Appends `block` to `out` as one passthrough sequence (each ESC doubled) and empties
/// it.
fn flush(out: &mut Vec<u8>, block: &mut Vec<u8>) {
    if block.is_empty() {
        return;
    }
    out.extend_from_slice(b"\x1bPtmux;");
    for &b in block.iter() {
        if b == 0x1b {
            out.push(0x1b);
        }
        out.push(b);
    }
    out.extend_from_slice(b"\x1b\\");
    block.clear();
}

/// The escape sequences of a byte string, one at a time: strings (`ESC P`, `ESC _`,
/// `ESC ]`) up to their `ESC \`, CSI up to its final byte, others two bytes. An
/// unterminated sequence at the end is dropped.
struct Sequences<'a>(&'a [u8]);

impl<'a> Iterator for Sequences<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|&b| b == 0x1b)?;
        let rest = &self.0[start..];
        let len = match rest.get(1)? {
            b'P' | b'_' | b']' => rest.windows(2).position(|w| w == b"\x1b\\")? + 2,
            b'[' => rest[2..].iter().position(|b| (0x40..=0x7e).contains(b))? + 3,
            _ => 2,
        };
        let (sequence, after) = rest.split_at(len);
        self.0 = after;
        Some(sequence)
    }
}

/// Runs `tmux args…` and returns its standard output, or `None` when it fails or takes
/// longer than [`TMUX_TIMEOUT`].
fn tmux(args: &[&str]) -> Option<String> {
    let mut child = Command::new("tmux")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + TMUX_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmux_answers_parse_into_the_pane_offset_and_outer_terminal() {
        let p = Passthrough::parse("3 81 xterm-kitty\n").unwrap();
        assert_eq!(p.pane_offset(), (3, 81));
        assert!(p.outer_is_kitty());
        assert!(
            !Passthrough::parse("0 0 xterm-256color")
                .unwrap()
                .outer_is_kitty()
        );
        assert!(Passthrough::parse("garbage").is_none());
        assert!(Passthrough::parse("").is_none());
        // Clones share the offset a refresh moves.
        let shared = p.clone();
        p.offset.store(pack(5, 7), Ordering::Relaxed);
        assert_eq!(shared.pane_offset(), (5, 7));
    }

    #[test]
    fn graphics_are_wrapped_with_escapes_doubled_and_positions_moved_to_the_pane() {
        let p = Passthrough::parse("2 40 xterm-kitty").unwrap();
        let graphics = b"\x1b7\x1b[5;10H\x1b_Ga=T,m=0;QUJD\x1b\\\x1b8";
        let wrapped = p.wrap(graphics);
        assert_eq!(
            wrapped,
            b"\x1bPtmux;\x1b\x1b[?2026h\x1b\x1b7\x1b\x1b[7;50H\x1b\x1b_Ga=T,m=0;QUJD\x1b\x1b\\\x1b\x1b8\x1b\x1b[?2026l\x1b\\"
        );
        // Nothing in, nothing out.
        assert!(p.wrap(b"").is_empty());
    }

    /// The passthrough blocks of `wrapped`, unwrapped (doubled ESCs made single).
    fn unwrap(wrapped: &[u8]) -> Vec<Vec<u8>> {
        let mut blocks = Vec::new();
        let mut rest = wrapped;
        while !rest.is_empty() {
            rest = rest
                .strip_prefix(b"\x1bPtmux;")
                .expect("a passthrough block");
            let mut block = Vec::new();
            loop {
                match rest {
                    [0x1b, 0x1b, after @ ..] => {
                        block.push(0x1b);
                        rest = after;
                    }
                    [0x1b, b'\\', after @ ..] => {
                        rest = after;
                        break;
                    }
                    [b, after @ ..] => {
                        block.push(*b);
                        rest = after;
                    }
                    [] => panic!("an unterminated block"),
                }
            }
            blocks.push(block);
        }
        blocks
    }

    #[test]
    fn large_output_is_split_between_sequences_never_inside_one() {
        let p = Passthrough::parse("0 0 xterm-kitty").unwrap();
        let chunk = format!("\x1b_Gm=1;{}\x1b\\", "A".repeat(4096));
        let graphics = chunk.repeat(200); // ~820 KB: more than one passthrough
        let moved = format!("\x1b7\x1b[3;4H{graphics}\x1b8");
        let blocks = unwrap(&p.wrap(moved.as_bytes()));
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        let mut commands = Vec::new();
        let last = blocks.len() - 1;
        for (i, block) in blocks.iter().enumerate() {
            assert!(block.len() <= MAX_WRAPPED + 32);
            // One synchronized update over all the blocks.
            let block = match i {
                0 => block.strip_prefix(BEGIN_SYNC).expect("the update begun"),
                i if i == last => block.strip_suffix(END_SYNC).expect("the update ended"),
                _ => block,
            };
            // Each block saves the cursor, puts it where the image goes, restores it.
            let block = block
                .strip_prefix(b"\x1b7\x1b[3;4H")
                .expect("cursor put back");
            let block = block.strip_suffix(b"\x1b8").expect("cursor restored");
            assert!(
                block.len() % chunk.len() == 0,
                "whole commands only in block {i}"
            );
            commands.extend_from_slice(block);
        }
        assert_eq!(commands, graphics.as_bytes(), "nothing lost or changed");
    }
}
