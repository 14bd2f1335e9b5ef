//! Asking the terminal what it can show, for `--render auto` (and `kitty`): the kitty
//! graphics query (`ESC _G i=31,s=1,v=1,a=q,t=d,f=24;AAAA ESC \`: a kitty-capable
//! terminal answers `ESC _G i=31;OK ESC \`), the same query with a one-pixel POSIX
//! shared-memory object (`i=32,t=s`: a terminal on this machine that can read it
//! answers OK, and unlinks it), the cell size in pixels (`CSI 16 t` → `CSI 6;H;W t`, for
//! terminals whose window size report has no pixels) and Primary Device Attributes
//! (`CSI c` → `CSI ? 62;…;4;… c`: attribute 4 is sixel). Every terminal answers DA1,
//! and answers in order, so its reply ends the wait; a terminal that answers nothing
//! costs the timeout. Runs in raw mode, before the input reader starts.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use base64::Engine;

use super::halfblock::CellSize;
use super::shm;

/// The kitty graphics query (direct data), first of the queries.
const KITTY_QUERY: &[u8] = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\";

/// The cell size and DA1 queries, last: every terminal answers DA1, in order.
const SIZE_AND_DA1: &[u8] = b"\x1b[16t\x1b[c";

/// The queries, in the order their answers come back; the shared-memory query names
/// `object` (a 1x1 RGB object) when there is one.
fn queries(object: Option<&str>) -> Vec<u8> {
    let mut out = KITTY_QUERY.to_vec();
    if let Some(name) = object {
        let name = base64::engine::general_purpose::STANDARD.encode(name);
        out.extend_from_slice(
            format!("\x1b_Gi=32,s=1,v=1,a=q,t=s,f=24,S=3;{name}\x1b\\").as_bytes(),
        );
    }
    out.extend_from_slice(SIZE_AND_DA1);
    out
}

/// What the terminal said it can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// It answered the kitty graphics query with OK.
    pub kitty: bool,
    /// It read the shared-memory query's object and answered OK.
    pub kitty_shared_memory: bool,
    /// Its device attributes include sixel (4).
    pub sixel: bool,
    /// Its cell size in pixels, when it answered `CSI 16 t`.
    pub cell: Option<CellSize>,
    /// It answered at all (DA1).
    pub answered: bool,
}

impl Probe {
    /// Sends the queries to stdout and reads stdin (fd 0, in raw mode) until the DA1
    /// answer or `timeout`.
    ///
    /// # Errors
    /// Writing the queries or polling stdin failed.
    pub fn run(timeout: Duration) -> io::Result<Self> {
        let object = shm::fresh_name();
        let made = match shm::create(&object, &[0; 3]) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("no shared-memory object for the kitty query: {e}");
                false
            }
        };
        let asked = Self::ask(timeout, made.then_some(object.as_str()));
        // A terminal that read it unlinked it; one that did not leaves it to us.
        shm::unlink(&object);
        asked
    }

    fn ask(timeout: Duration, object: Option<&str>) -> io::Result<Self> {
        let mut out = io::stdout();
        out.write_all(&queries(object))?;
        out.flush()?;
        let deadline = Instant::now() + timeout;
        let mut reply = Vec::new();
        let mut stdin = io::stdin();
        while !da1_seen(&reply) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !readable(left)? {
                break;
            }
            let mut buf = [0u8; 256];
            let n = stdin.read(&mut buf)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok(Self::parse(&reply))
    }

    /// Reads the answers out of `reply` (what the terminal sent back, in any order,
    /// possibly with other input mixed in).
    pub fn parse(reply: &[u8]) -> Self {
        let text = String::from_utf8_lossy(reply);
        let kitty = text.contains("\x1b_Gi=31;OK");
        let kitty_shared_memory = text.contains("\x1b_Gi=32;OK");
        let da1 = text.find("\x1b[?").and_then(|start| {
            let rest = &text[start + 3..];
            rest.find('c').map(|end| &rest[..end])
        });
        let sixel = da1.is_some_and(|attrs| attrs.split(';').skip(1).any(|a| a == "4"));
        let cell = text.find("\x1b[6;").and_then(|start| {
            let rest = &text[start + 4..];
            let (h, rest) = rest.split_once(';')?;
            let (w, _) = rest.split_once('t')?;
            CellSize::new(w.parse().ok()?, h.parse().ok()?)
        });
        Self {
            kitty,
            kitty_shared_memory,
            sixel,
            cell,
            answered: da1.is_some(),
        }
    }
}

fn da1_seen(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    text.find("\x1b[?")
        .is_some_and(|start| text[start..].contains('c'))
}

/// Whether stdin has bytes within `timeout`.
fn readable(timeout: Duration) -> io::Result<bool> {
    let mut fd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd, and its count.
    let n = unsafe { libc::poll(&mut fd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitty_answers_ok_and_its_cell_size() {
        let p = Probe::parse(b"\x1b_Gi=31;OK\x1b\\\x1b[6;18;9t\x1b[?62;c");
        assert_eq!(
            p,
            Probe {
                kitty: true,
                kitty_shared_memory: false,
                sixel: false,
                cell: CellSize::new(9, 18),
                answered: true
            }
        );
    }

    #[test]
    fn a_vt340_xterm_lists_sixel_in_its_attributes() {
        let p = Probe::parse(b"\x1b[6;13;6t\x1b[?63;1;2;4;6;9;15;16;22;28c");
        assert!(p.sixel && !p.kitty && p.answered);
        assert_eq!(p.cell, CellSize::new(6, 13));
        // VT100-class "1;2" has no sixel; 4 must be an attribute, not the class.
        assert!(!Probe::parse(b"\x1b[?4;1;2c").sixel);
    }

    #[test]
    fn kitty_on_this_machine_reads_the_shared_memory_object() {
        let local = Probe::parse(b"\x1b_Gi=31;OK\x1b\\\x1b_Gi=32;OK\x1b\\\x1b[?62;c");
        assert!(local.kitty && local.kitty_shared_memory);
        // Over SSH the object is not there to read: kitty answers with an error.
        let remote =
            Probe::parse(b"\x1b_Gi=31;OK\x1b\\\x1b_Gi=32;ENOENT:no such file\x1b\\\x1b[?62;c");
        assert!(remote.kitty && !remote.kitty_shared_memory);
        // The query names the object, base64, between the two others.
        let q = String::from_utf8(queries(Some("/rtc-cli-1-0"))).unwrap();
        let shm_query = "\x1b_Gi=32,s=1,v=1,a=q,t=s,f=24,S=3;L3J0Yy1jbGktMS0w\x1b\\";
        assert!(
            q.starts_with("\x1b_Gi=31,") && q.contains(shm_query) && q.ends_with("\x1b[c"),
            "{q:?}"
        );
        assert!(!String::from_utf8(queries(None)).unwrap().contains("i=32"));
    }

    #[test]
    fn silence_or_garbage_claims_nothing() {
        assert_eq!(Probe::parse(b""), Probe::default());
        assert_eq!(
            Probe::parse(b"\x1b[6;x;yt\x1b_Gi=31;ENOENT\x1b\\").cell,
            None
        );
    }
}
