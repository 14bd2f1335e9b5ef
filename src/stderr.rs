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
            if state.0 == 0 {
                if let Some(saved) = state.1.take() {
                    // SAFETY: restores the descriptor saved by the first guard.
                    unsafe { libc::dup2(saved.as_raw_fd(), libc::STDERR_FILENO) };
                }
            }
        }
    }
}
