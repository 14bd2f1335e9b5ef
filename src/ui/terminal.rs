//! The terminal while the call screen owns it: raw mode, alternate screen, hidden
//! cursor and a captured stderr, all undone on drop, on panic and on the signals the
//! event loop turns into a clean exit (SIGTERM, SIGHUP).
//!
//! Stderr is captured because libraries write to it on their own (ALSA prints
//! `ALSA lib confmisc.c… cannot find card '0'` when a device is missing, FIELD-NOTES):
//! while the view is up, fd 2 is a pipe whose lines go to the log via `tracing`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

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
/// The original stderr while it is captured, else -1.
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);
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
        if let Err(error) = capture_stderr() {
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
    release_stderr();
    // Best effort: there is nobody left to report a failure to.
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

/// Points fd 2 at a pipe whose lines a thread logs; the thread ends when
/// [`release_stderr`] closes the pipe's last writer.
fn capture_stderr() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: plain POSIX calls on descriptors this function owns; each result is checked.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let [read_end, write_end] = fds;
        let saved = libc::dup(libc::STDERR_FILENO);
        if saved < 0 || libc::dup2(write_end, libc::STDERR_FILENO) < 0 {
            let error = io::Error::last_os_error();
            libc::close(read_end);
            libc::close(write_end);
            if saved >= 0 {
                libc::close(saved);
            }
            return Err(error);
        }
        libc::close(write_end);
        SAVED_STDERR.store(saved, Ordering::SeqCst);
        let reader = File::from_raw_fd(read_end);
        std::thread::Builder::new()
            .name("stderr-log".into())
            .spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    tracing::warn!(target: "stderr", "{line}");
                }
            })?;
    }
    Ok(())
}

/// Puts the original stderr back (closing the pipe's writer).
fn release_stderr() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor capture_stderr duplicated and still owns.
        unsafe {
            libc::dup2(saved, libc::STDERR_FILENO);
            libc::close(saved);
        }
    }
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
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(render)?;
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
