//! Handing freed heap back to the system after a mass disconnect.
//!
//! glibc's malloc keeps freed memory in its per-thread arenas: after 10 000 clients
//! left, the server still held 880 MB. `malloc_trim(0)` returns the free pages of
//! every arena (glibc >= 2.8); calling it once after many connections closed costs a
//! few milliseconds and no new dependency, where a different allocator would be a
//! crate for one effect.

use std::sync::Arc;
use std::time::Duration;

use super::limits::Admission;

/// How often the connection count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Connections that must have closed since the last trim (or the peak) for a trim.
const CLOSED_BEFORE_TRIM: usize = 256;

/// Runs forever: trims the heap whenever the connection count fell by
/// [`CLOSED_BEFORE_TRIM`] or more below its peak since the last trim.
pub(super) async fn trim_after_disconnects(admission: Arc<Admission>) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    let mut peak = 0;
    loop {
        tick.tick().await;
        let now = admission.total();
        peak = peak.max(now);
        if peak - now >= CLOSED_BEFORE_TRIM {
            let _ = tokio::task::spawn_blocking(release_free_heap).await;
            tracing::debug!(from = peak, to = now, "connections closed: heap trimmed");
            peak = now;
        }
    }
}

/// Returns free heap pages to the system, where the allocator can.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; no pointer is passed.
    unsafe {
        libc::malloc_trim(0);
    }
}
