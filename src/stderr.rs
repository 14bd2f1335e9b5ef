//! Keeping C libraries' direct writes to stderr (ALSA, libjack, OpenH264) off the
//! terminal that shows the call, around the short calls that make them.

/// Runs `f` with file descriptor 2 pointed at `/dev/null`. Output of other threads to
/// stderr in that window is lost too, so wrap only short setup calls (device
/// enumeration, codec creation), never a stream's or a call's lifetime.
pub fn silenced<T>(f: impl FnOnce() -> T) -> T {
    let _silenced = StderrSilenced::new();
    f()
}

/// Points file descriptor 2 at `/dev/null` while any guard lives, for C libraries that
/// write to stderr directly. Guards nest and may overlap across threads: the first
/// saves and redirects, the last restores. Best effort: if a step fails, stderr is
/// left alone.
struct StderrSilenced;

/// How many [`StderrSilenced`] guards live, and the real stderr they will restore.
#[cfg(unix)]
static SILENCED: std::sync::Mutex<(usize, Option<std::os::fd::OwnedFd>)> =
    std::sync::Mutex::new((0, None));

#[cfg(unix)]
fn silenced_state() -> std::sync::MutexGuard<'static, (usize, Option<std::os::fd::OwnedFd>)> {
    SILENCED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StderrSilenced {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let mut state = silenced_state();
            if state.0 == 0 {
                state.1 = redirect_stderr_to_null();
            }
            state.0 += 1;
        }
        Self
    }
}

/// Redirects fd 2 to `/dev/null`, returning a copy of the previous fd 2.
#[cfg(unix)]
fn redirect_stderr_to_null() -> Option<std::os::fd::OwnedFd> {
    use std::io::Write as _;
    use std::os::fd::{AsFd, AsRawFd};
    let saved = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .ok()?;
    let _ = std::io::stderr().flush();
    // SAFETY: dup2 between descriptors this process owns; fd 2 stays open throughout.
    let rc = unsafe { libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO) };
    (rc >= 0).then_some(saved)
}

impl Drop for StderrSilenced {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let mut state = silenced_state();
            state.0 = state.0.saturating_sub(1);
            if state.0 == 0
                && let Some(saved) = state.1.take()
            {
                // SAFETY: restores the descriptor saved by the first guard.
                unsafe { libc::dup2(saved.as_raw_fd(), libc::STDERR_FILENO) };
            }
        }
    }
}

/// The original stderr while [`capture_to_log`] holds fd 2, else -1.
#[cfg(unix)]
static SAVED_STDERR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Points fd 2 at a pipe whose lines a thread logs (`warn`, target `stderr`), so the
/// warnings C libraries print on their own (OpenH264's `Warning:bEnableFrameSkip = 0`
/// …, ALSA's missing-card lines) reach the log in every view, TUI and headless alike,
/// and never the terminal or the JSON-lines consumer. [`release_to_terminal`] undoes
/// it; a panic undoes it before the panic message prints. Capturing twice is a no-op.
///
/// # Errors
/// A pipe or descriptor could not be made; stderr is left as it was.
#[cfg(unix)]
pub fn capture_to_log() -> std::io::Result<()> {
    use std::io::BufRead as _;
    use std::os::fd::FromRawFd as _;
    use std::sync::atomic::Ordering;
    if SAVED_STDERR.load(Ordering::SeqCst) >= 0 {
        return Ok(());
    }
    install_release_on_panic();
    let mut fds = [0; 2];
    // SAFETY: plain POSIX calls on descriptors this function owns; each result is checked.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let [read_end, write_end] = fds;
        let saved = libc::dup(libc::STDERR_FILENO);
        if saved < 0 || libc::dup2(write_end, libc::STDERR_FILENO) < 0 {
            let error = std::io::Error::last_os_error();
            libc::close(read_end);
            libc::close(write_end);
            if saved >= 0 {
                libc::close(saved);
            }
            return Err(error);
        }
        libc::close(write_end);
        SAVED_STDERR.store(saved, Ordering::SeqCst);
        let reader = std::fs::File::from_raw_fd(read_end);
        std::thread::Builder::new()
            .name("stderr-log".into())
            .spawn(move || {
                for line in std::io::BufReader::new(reader)
                    .lines()
                    .map_while(Result::ok)
                {
                    tracing::warn!(target: "stderr", "{line}");
                }
            })?;
    }
    Ok(())
}

/// Puts the original stderr back after [`capture_to_log`] (closing the pipe's writer,
/// which ends the logging thread). Safe to call at any time and more than once.
#[cfg(unix)]
pub fn release_to_terminal() {
    use std::sync::atomic::Ordering;
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor capture_to_log duplicated and still owns.
        unsafe {
            libc::dup2(saved, libc::STDERR_FILENO);
            libc::close(saved);
        }
    }
}

/// Chains a panic hook that gives stderr back before the previous hook prints.
#[cfg(unix)]
fn install_release_on_panic() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            release_to_terminal();
            previous(info);
        }));
    });
}

/// Holds stderr in the log ([`capture_to_log`]) for a scope; gives it back on drop.
#[derive(Debug)]
pub struct StderrToLog {
    _private: (),
}

impl StderrToLog {
    /// Captures stderr into the log; on failure, logs why and leaves stderr alone.
    pub fn capture() -> Self {
        #[cfg(unix)]
        if let Err(error) = capture_to_log() {
            tracing::warn!(%error, "could not capture stderr; library messages may reach it");
        }
        Self { _private: () }
    }
}

impl Drop for StderrToLog {
    fn drop(&mut self) {
        #[cfg(unix)]
        release_to_terminal();
    }
}
