//! POSIX shared-memory objects (`shm_open(3)`) that carry kitty graphics frames to a
//! terminal on the same machine (`t=s`): the terminal reads the object named in the
//! command and unlinks it, so the pixels never cross the pty as base64.
//!
//! A terminal that stops reading must not fill `/dev/shm`: [`FrameObjects`] unlinks
//! every object it made that is still there after [`READ_GRACE`], and all of them when
//! it goes. Unlinking an object the terminal already removed is harmless (`ENOENT`).

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an object may wait for the terminal to read it (kitty reads within a
/// frame) before it is unlinked anyway: at 30 fps, at most 30 objects (27 MB at
/// 640x480) linger per video area of a terminal that stopped reading.
pub const READ_GRACE: Duration = Duration::from_secs(1);

/// Numbers the objects of this process, so that no two names repeat.
static NEXT_OBJECT: AtomicU64 = AtomicU64::new(0);

/// A fresh object name: `/rtc-cli-<pid>-<n>` (shm_open(3) wants one leading slash).
pub fn fresh_name() -> String {
    let n = NEXT_OBJECT.fetch_add(1, Ordering::Relaxed);
    format!("/rtc-cli-{}-{n}", std::process::id())
}

/// Creates the object `name` (readable and writable by this user only; an existing
/// one is an error) holding `bytes`.
///
/// # Errors
/// `shm_open`, `ftruncate` or `write` failed (no `/dev/shm`, out of memory, a name
/// taken); nothing is left behind then.
pub fn create(name: &str, bytes: &[u8]) -> io::Result<()> {
    let c_name = c_name(name)?;
    // SAFETY: a NUL-terminated name, flags and mode as shm_open(3) documents them.
    let fd = unsafe {
        libc::shm_open(
            c_name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened here and nothing else owns it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    let written = file
        .set_len(bytes.len() as u64)
        .and_then(|()| file.write_all(bytes));
    if let Err(e) = written {
        unlink(name);
        return Err(e);
    }
    Ok(())
}

/// Removes the object `name` if it is still there.
pub fn unlink(name: &str) {
    if let Ok(c_name) = c_name(name) {
        // SAFETY: a NUL-terminated name; a missing object only sets errno.
        unsafe { libc::shm_unlink(c_name.as_ptr()) };
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

/// The objects one stream of frames made, newest last: each is unlinked once it is
/// [`READ_GRACE`] old, and the rest when this goes.
#[derive(Debug, Default)]
pub struct FrameObjects {
    made: VecDeque<(Instant, String)>,
}

impl FrameObjects {
    /// Writes `bytes` to a new object at `now` and returns its name; unlinks the
    /// objects older than [`READ_GRACE`] first.
    ///
    /// # Errors
    /// As [`create`].
    pub fn put(&mut self, bytes: &[u8], now: Instant) -> io::Result<&str> {
        while self
            .made
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > READ_GRACE)
        {
            if let Some((_, name)) = self.made.pop_front() {
                unlink(&name);
            }
        }
        let name = fresh_name();
        create(&name, bytes)?;
        self.made.push_back((now, name));
        Ok(self.made.back().map_or("", |(_, name)| name.as_str()))
    }

    /// Objects made and not yet unlinked by this (the terminal may have).
    pub fn tracked(&self) -> usize {
        self.made.len()
    }
}

impl Drop for FrameObjects {
    fn drop(&mut self) {
        for (_, name) in self.made.drain(..) {
            unlink(name.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Where Linux shows the object `name`.
    fn path(name: &str) -> std::path::PathBuf {
        Path::new("/dev/shm").join(name.trim_start_matches('/'))
    }

    #[test]
    fn an_object_holds_the_bytes_until_unlinked() {
        let name = fresh_name();
        create(&name, b"rgbrgb").expect("/dev/shm is writable");
        assert_eq!(std::fs::read(path(&name)).unwrap(), b"rgbrgb");
        assert!(create(&name, b"x").is_err(), "a name is never reused");
        unlink(&name);
        assert!(!path(&name).exists());
        unlink(&name); // Gone already: harmless.
    }

    #[test]
    fn objects_the_terminal_leaves_are_unlinked_after_the_grace_and_on_drop() {
        let t0 = Instant::now();
        let mut objects = FrameObjects::default();
        let first = objects.put(b"one", t0).unwrap().to_owned();
        let second = objects.put(b"two", t0 + READ_GRACE / 2).unwrap().to_owned();
        assert!(path(&first).exists() && path(&second).exists());
        // The terminal read and removed the second, but never the first.
        unlink(&second);
        let third = objects
            .put(b"three", t0 + READ_GRACE + Duration::from_millis(1))
            .unwrap()
            .to_owned();
        assert!(!path(&first).exists(), "past its grace");
        assert_eq!(objects.tracked(), 2);
        drop(objects);
        assert!(!path(&third).exists(), "unlinked on drop");
    }
}
