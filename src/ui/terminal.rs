//! The terminal while the call screen owns it: raw mode, alternate screen, hidden
//! cursor and a captured stderr, all undone on drop, on panic and on the signals the
//! event loop turns into a clean exit (SIGTERM, SIGHUP).
//!
//! Stderr is captured because libraries write to it on their own (ALSA prints
//! `ALSA lib confmisc.c… cannot find card '0'` when a device is missing, FIELD-NOTES):
//! while the view is up, fd 2 is a pipe whose lines go to the log
//! ([`crate::stderr::capture_to_log`]).

use std::io::{self, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    SetTitle, disable_raw_mode, enable_raw_mode,
};
use crossterm::{execute, queue};
use ratatui::backend::CrosstermBackend;
use ratatui::{Frame, Terminal};

use super::halfblock::CellSize;

/// Whether the terminal is in call-screen mode (so restoring twice is harmless).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether kitty graphics were shown, so restoring deletes them.
static KITTY_IMAGES: AtomicBool = AtomicBool::new(false);
/// Whether graphics go through tmux ([`super::passthrough`]), so the deletion must too.
static THROUGH_TMUX: AtomicBool = AtomicBool::new(false);

/// Notes that graphics go through tmux to the terminal around it: the deletion on
/// restore is wrapped the same way.
pub fn graphics_pass_through_tmux() {
    THROUGH_TMUX.store(true, Ordering::SeqCst);
}

/// Notes that kitty graphics are on screen: every path that restores the terminal
/// then deletes them ([`super::kitty::DELETE_ALL`]).
pub fn kitty_images_shown() {
    KITTY_IMAGES.store(true, Ordering::SeqCst);
}
static PANIC_HOOK: Once = Once::new();

/// Puts the terminal in call-screen mode; [`Drop`] puts it back.
///
/// Only one guard should exist at a time; restoring is idempotent, so the panic hook
/// and the drop can both run.
#[derive(Debug)]
pub struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, hides the cursor, sets the window
    /// title, captures stderr and installs the restoring panic hook.
    ///
    /// # Errors
    /// The terminal refused a mode change (e.g. stdout is not a terminal); whatever
    /// was already changed is restored before returning.
    pub fn enter(title: &str) -> io::Result<Self> {
        install_panic_hook();
        ACTIVE.store(true, Ordering::SeqCst);
        let guard = Self { _private: () };
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, Hide, SetTitle(title))?;
        if let Err(error) = crate::stderr::capture_to_log() {
            tracing::warn!(%error, "could not capture stderr; library messages may tear the view");
        }
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Restores the terminal (and stderr) if the call screen had it; safe to call at any
/// time and more than once.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    crate::stderr::release_to_terminal();
    // Best effort: there is nobody left to report a failure to.
    if KITTY_IMAGES.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let delete = if THROUGH_TMUX.load(Ordering::SeqCst) {
            super::passthrough::wrap_whole(super::kitty::DELETE_ALL)
        } else {
            super::kitty::DELETE_ALL.to_vec()
        };
        let _ = out.write_all(&delete);
    }
    let _ = execute!(
        io::stdout(),
        EndSynchronizedUpdate,
        LeaveAlternateScreen,
        Show
    );
    let _ = disable_raw_mode();
}

/// Chains a hook that restores the terminal before the previous hook prints the
/// panic, so the message lands on a usable screen.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// The terminal's cell size in pixels, when it reports its pixel size.
pub fn cell_size() -> Option<CellSize> {
    let size = crossterm::terminal::window_size().ok()?;
    CellSize::from_window(size.columns, size.rows, size.width, size.height)
}

/// Draws one frame wrapped in synchronized output (DEC private mode 2026): the
/// terminal shows the frame at once instead of painting it as the bytes arrive.
/// Terminals without the mode ignore it.
///
/// # Errors
/// Writing to the terminal failed.
pub fn draw_synchronized<W: Write>(
    terminal: &mut Terminal<CrosstermBackend<W>>,
    render: impl FnOnce(&mut Frame),
) -> io::Result<()> {
    draw_synchronized_with(terminal, |frame| {
        render(frame);
        Vec::new()
    })
}

/// [`draw_synchronized`] for a `render` that also returns graphics-protocol commands
/// (which ratatui's buffer cannot hold): they are written after the frame's cells,
/// inside the same synchronized update.
///
/// # Errors
/// Writing to the terminal failed.
pub fn draw_synchronized_with<W: Write>(
    terminal: &mut Terminal<CrosstermBackend<W>>,
    render: impl FnOnce(&mut Frame) -> Vec<u8>,
) -> io::Result<()> {
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    let mut graphics = Vec::new();
    terminal.draw(|frame| graphics = render(frame))?;
    terminal.backend_mut().write_all(&graphics)?;
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::widgets::Paragraph;

    /// A writer the test can read after the backend took it.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn synchronized_draw_wraps_the_frame_in_mode_2026() {
        let written = Shared::default();
        let backend = CrosstermBackend::new(written.clone());
        let mut terminal = Terminal::with_options(
            backend,
            ratatui::TerminalOptions {
                viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 10, 1)),
            },
        )
        .unwrap();
        draw_synchronized(&mut terminal, |f| {
            f.render_widget(Paragraph::new("hello"), f.area())
        })
        .unwrap();
        let out = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let begin = out.find("\x1b[?2026h").expect("begin");
        let text = out.find("hello").expect("frame");
        let end = out.rfind("\x1b[?2026l").expect("end");
        assert!(begin < text && text < end, "{out:?}");
    }

    #[test]
    fn restore_without_a_guard_does_nothing() {
        // Must not touch a terminal that was never set up (and must not panic).
        restore();
        assert!(!ACTIVE.load(Ordering::SeqCst));
    }
}
