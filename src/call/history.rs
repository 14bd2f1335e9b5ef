//! Call history: one JSON line per finished call in `$XDG_STATE_HOME/rtc-cli/history.jsonl`,
//! appended by the process that had the call, read by the idle screen and `rtc-cli history`.
//!
//! The file is bounded: once it passes [`MAX_BYTES`] the next append rewrites it with
//! its newest [`KEEP_ENTRIES`] entries (through a temporary file and a rename, so a
//! crash never leaves half a history). Lines that do not parse are skipped, not fatal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{CallId, Direction, EndReason, UserId};

/// Size past which the history file is cut back to [`KEEP_ENTRIES`].
pub const MAX_BYTES: u64 = 256 * 1024;

/// Entries kept when the file is cut back (a line is ~150 bytes, so ~75 KiB).
pub const KEEP_ENTRIES: usize = 500;

/// One finished call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the call began (placed, or rung), RFC 3339 UTC to the second.
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// The other party.
    pub peer: UserId,
    /// Whether we called or were called.
    pub direction: Direction,
    /// Connected time, whole seconds; 0 for a call that never connected.
    pub duration_secs: u64,
    /// Whether media ever flowed.
    pub connected: bool,
    /// Why it ended.
    pub reason: EndReason,
    /// The call's id, for finding it in logs.
    pub call_id: CallId,
}

impl HistoryEntry {
    /// The connected time.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs)
    }
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// The history file of this user account: `$XDG_STATE_HOME/rtc-cli/history.jsonl`
/// (`~/.local/state/rtc-cli/history.jsonl`), else in the cache dir.
pub fn default_path() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "rtc-cli")?;
    let dir = dirs.state_dir().unwrap_or(dirs.cache_dir());
    Some(dir.join("history.jsonl"))
}

/// A history file.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
}

impl History {
    /// The history kept at `path` (created on the first append).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry`, cutting the file back first when it has grown past [`MAX_BYTES`].
    ///
    /// # Errors
    /// The directory or file cannot be created or written.
    pub fn append(&self, entry: &HistoryEntry) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > MAX_BYTES) {
            self.cut_back()?;
        }
        let mut line = serde_json::to_string(entry).context("encoding a history entry")?;
        line.push('\n');
        // One write of one short line with O_APPEND: lines of two processes never mix.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Every readable entry, oldest first; an absent file is an empty history.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn read(&self) -> anyhow::Result<Vec<HistoryEntry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The newest `n` entries, newest first.
    ///
    /// # Errors
    /// As [`History::read`].
    pub fn recent(&self, n: usize) -> anyhow::Result<Vec<HistoryEntry>> {
        let mut all = self.read()?;
        all.reverse();
        all.truncate(n);
        Ok(all)
    }

    /// Rewrites the file with its newest [`KEEP_ENTRIES`] entries.
    fn cut_back(&self) -> anyhow::Result<()> {
        let all = self.read()?;
        let keep = &all[all.len().saturating_sub(KEEP_ENTRIES)..];
        let mut text = String::new();
        for entry in keep {
            text.push_str(&serde_json::to_string(entry).context("encoding a history entry")?);
            text.push('\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(peer: &str, secs: u64, reason: EndReason) -> HistoryEntry {
        HistoryEntry {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs),
            peer: UserId::parse(peer).unwrap(),
            direction: Direction::Outgoing,
            duration_secs: secs,
            connected: secs > 0,
            reason,
            call_id: CallId::random(),
        }
    }

    #[test]
    fn entries_round_trip_newest_first_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::at(dir.path().join("sub/history.jsonl"));
        assert!(history.read().unwrap().is_empty());
        let a = entry("tom", 5, EndReason::Hangup);
        let b = entry("spike", 0, EndReason::Busy);
        history.append(&a).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(history.path())
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        history.append(&b).unwrap();
        assert_eq!(history.recent(10).unwrap(), [b.clone(), a]);
        assert_eq!(history.recent(1).unwrap(), [b]);
        let text = std::fs::read_to_string(history.path()).unwrap();
        assert!(text.contains(r#""time":"2026-09-21T"#), "{text}");
        assert!(text.contains(r#""reason":"busy""#), "{text}");
    }

    #[test]
    fn the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::at(dir.path().join("history.jsonl"));
        for i in 0..3_000 {
            history
                .append(&entry("tom", i, EndReason::RemoteHangup))
                .unwrap();
        }
        let size = std::fs::metadata(history.path()).unwrap().len();
        assert!(size <= MAX_BYTES + 1024, "{size} bytes");
        let all = history.read().unwrap();
        assert!(
            all.len() >= KEEP_ENTRIES && all.len() < 3_000,
            "{}",
            all.len()
        );
        assert_eq!(
            all.last().unwrap().duration_secs,
            2_999,
            "the newest is kept"
        );
    }
}
