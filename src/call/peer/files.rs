//! File transfer over WebRTC DataChannels: one reliable, ordered channel labelled
//! `file` per transfer, opened by the sender (docs/protocol.md section 11):
//!
//! 1. sender → `{"type":"offer","name":N,"size":BYTES,"sha256":HEX}` (a string message);
//! 2. receiver → `{"type":"accept"}` or `{"type":"refuse","reason":R}`;
//! 3. sender → the file in binary messages (rtc-cli: [`CHUNK_BYTES`]), paced by the
//!    channel's buffered amount (the send buffer limit of the PeerConnection);
//! 4. receiver → `{"type":"done"}` once the SHA-256 matched and the file has its final
//!    name, or `{"type":"failed","reason":R}`.
//!
//! The receiver writes to a hidden temporary file in the download directory and renames
//! it only after the checksum matched: a transfer that breaks leaves no file under the
//! final name. Names from the peer are reduced to one safe file name
//! ([`safe_file_name`]) that cannot leave the download directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::PeerEvent;
use super::handler::Shared;

/// The label of a file transfer's DataChannel.
pub const FILE_LABEL: &str = "file";

/// Largest binary message rtc-cli sends in a transfer: 64 KiB, a quarter of the
/// `a=max-message-size` browsers announce (262 144, RFC 8841 §6); 2.4 times the
/// throughput of 16 KiB messages between two rtc-cli (BENCHMARKS). Any size is received.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// How often progress is reported while bytes flow.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How long a sender waits for the peer to accept, and for its last word.
const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// How long a receiver waits, after its last word, for the sender to close.
const LAST_WORD_WAIT: Duration = Duration::from_secs(10);

/// What a receiver does with offered files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePolicy {
    /// Where accepted files are saved.
    pub download_dir: PathBuf,
    /// Larger offers are refused, bytes.
    pub max_bytes: u64,
    /// Refuse every offer.
    pub refuse_all: bool,
}

impl Default for FilePolicy {
    fn default() -> Self {
        Self {
            download_dir: default_download_dir(),
            max_bytes: DEFAULT_MAX_FILE_BYTES,
            refuse_all: false,
        }
    }
}

/// The default size limit of received files: 2 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 << 30;

/// The XDG download dir (`$XDG_DOWNLOAD_DIR`, e.g. `~/Downloads`), else `~/Downloads`,
/// else the current directory.
pub fn default_download_dir() -> PathBuf {
    directories::UserDirs::new()
        .and_then(|u| {
            u.download_dir()
                .map(Path::to_path_buf)
                .or_else(|| Some(u.home_dir().join("Downloads")))
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The messages of a transfer, as JSON strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    Offer {
        name: String,
        size: u64,
        sha256: String,
    },
    Accept,
    Refuse {
        reason: String,
    },
    Done,
    Failed {
        reason: String,
    },
}

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    /// We send.
    Out,
    /// We receive.
    In,
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// `bytes` of `size` moved so far.
    Progress {
        /// Bytes sent or received.
        bytes: u64,
    },
    /// Complete, SHA-256 checked; `path` is where a received file was saved.
    Done {
        /// The file's SHA-256, hex.
        sha256: String,
        /// The saved file (received files only).
        path: Option<PathBuf>,
    },
    /// Stopped: refused, broken or corrupt.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A transfer's news, as [`PeerEvent::File`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferUpdate {
    /// The transfer's number in this process.
    pub id: u64,
    /// The file name (as offered; a received file is saved under a safe version).
    pub name: String,
    /// Its direction.
    pub direction: TransferDirection,
    /// Its size, bytes.
    pub size: u64,
    /// Where it is.
    pub state: TransferState,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `name` reduced to one safe file name: the part after the last `/` or `\`, control
/// characters removed, leading dots dropped (no hidden files, no `..`), at most 200 bytes
/// (on a character boundary); `download` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "download".into()
    } else {
        out
    }
}

/// A path in `dir` for `name` that does not exist yet: `name`, then `name (1)`, … (the
/// number before the extension).
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (0..)
        .map(|n| match n {
            0 => dir.join(name),
            n => dir.join(format!("{stem} ({n}){ext}")),
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(name))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, hex.
async fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(hex(ctx.finish().as_ref()));
        }
        ctx.update(&buf[..n]);
    }
}

/// Reports a transfer's updates as [`PeerEvent::File`], progress at most every
/// [`PROGRESS_EVERY`].
struct Reporter {
    shared: Arc<Shared>,
    id: u64,
    name: String,
    direction: TransferDirection,
    size: u64,
    last: Option<Instant>,
}

impl Reporter {
    fn send(&self, state: TransferState) {
        self.shared.emit(PeerEvent::File(TransferUpdate {
            id: self.id,
            name: self.name.clone(),
            direction: self.direction,
            size: self.size,
            state,
        }));
    }

    fn progress(&mut self, bytes: u64) {
        let due = self.last.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if due || bytes == self.size {
            self.last = Some(Instant::now());
            self.send(TransferState::Progress { bytes });
        }
    }
}

/// The next control message on `channel` (binary messages are a protocol error here).
async fn next_control(channel: &Arc<dyn DataChannel>) -> anyhow::Result<Control> {
    loop {
        match channel.poll().await {
            Some(DataChannelEvent::OnMessage(m)) if m.is_string => {
                return serde_json::from_slice(&m.data).context("a malformed transfer message");
            }
            Some(DataChannelEvent::OnMessage(_)) => bail!("unexpected binary data"),
            Some(DataChannelEvent::OnClose) | None => bail!("the peer closed the transfer"),
            Some(_) => {}
        }
    }
}

async fn send_control(channel: &Arc<dyn DataChannel>, message: &Control) -> anyhow::Result<()> {
    let text = serde_json::to_string(message)?;
    channel.send_text(&text).await.map_err(|e| anyhow!("{e}"))
}

/// Sends the file at `path` on `channel` (a fresh `file` DataChannel), reporting
/// progress; the outcome is the last update.
pub(crate) async fn send(channel: Arc<dyn DataChannel>, path: PathBuf, shared: Arc<Shared>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
    let mut reporter = Reporter {
        shared,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        name,
        direction: TransferDirection::Out,
        size,
        last: None,
    };
    let outcome = send_steps(&channel, &path, &mut reporter).await;
    let state = match outcome {
        Ok(sha256) => TransferState::Done { sha256, path: None },
        Err(e) => TransferState::Failed {
            reason: format!("{e:#}"),
        },
    };
    reporter.send(state);
    let _ = channel.close().await;
}

async fn send_steps(
    channel: &Arc<dyn DataChannel>,
    path: &Path,
    reporter: &mut Reporter,
) -> anyhow::Result<String> {
    let sha256 = file_sha256(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    wait_open(channel).await?;
    let offer = Control::Offer {
        name: reporter.name.clone(),
        size: reporter.size,
        sha256: sha256.clone(),
    };
    send_control(channel, &offer).await?;
    match tokio::time::timeout(ANSWER_WAIT, next_control(channel)).await {
        Ok(Ok(Control::Accept)) => {}
        Ok(Ok(Control::Refuse { reason })) => bail!("refused: {reason}"),
        Ok(Ok(other)) => bail!("unexpected answer {other:?}"),
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("no answer within {ANSWER_WAIT:?}"),
    }
    let mut file = tokio::fs::File::open(path).await?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut sent = 0u64;
    reporter.progress(0);
    while sent < reporter.size {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            bail!("{} shrank while being sent", path.display());
        }
        // With the PeerConnection's send buffer limit, this waits while the channel's
        // buffered amount is over it: the flow control.
        channel
            .send(BytesMut::from(&buf[..n]))
            .await
            .map_err(|e| anyhow!("sending: {e}"))?;
        sent += n as u64;
        reporter.progress(sent);
    }
    match tokio::time::timeout(ANSWER_WAIT, next_control(channel)).await {
        Ok(Ok(Control::Done)) => Ok(sha256),
        Ok(Ok(Control::Failed { reason })) => bail!("the peer says: {reason}"),
        Ok(Ok(other)) => bail!("unexpected answer {other:?}"),
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("no confirmation within {ANSWER_WAIT:?}"),
    }
}

async fn wait_open(channel: &Arc<dyn DataChannel>) -> anyhow::Result<()> {
    let open = |s| s == rtc::data_channel::RTCDataChannelState::Open;
    if channel.ready_state().await.is_ok_and(open) {
        return Ok(());
    }
    let opened = tokio::time::timeout(ANSWER_WAIT, async {
        loop {
            match channel.poll().await {
                Some(DataChannelEvent::OnOpen) => return Ok(()),
                Some(DataChannelEvent::OnClose) | None => bail!("the channel closed"),
                Some(_) => {}
            }
        }
    });
    opened
        .await
        .map_err(|_| anyhow!("the channel did not open"))?
}

/// Receives the transfer the peer opened on `channel`, under `policy`.
pub(crate) async fn receive(
    channel: Arc<dyn DataChannel>,
    policy: FilePolicy,
    shared: Arc<Shared>,
) {
    let mut reporter = Reporter {
        shared,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        name: String::new(),
        direction: TransferDirection::In,
        size: 0,
        last: None,
    };
    let outcome = receive_steps(&channel, &policy, &mut reporter).await;
    let state = match outcome {
        Ok((sha256, path)) => TransferState::Done {
            sha256,
            path: Some(path),
        },
        Err(e) => {
            let reason = format!("{e:#}");
            let _ = send_control(
                &channel,
                &Control::Failed {
                    reason: reason.clone(),
                },
            )
            .await;
            TransferState::Failed { reason }
        }
    };
    if !reporter.name.is_empty() {
        reporter.send(state);
    }
    // The sender closes once it has read our last word: closing first could reset the
    // stream before that word left (webrtc drops what is queued on close).
    let _ = tokio::time::timeout(LAST_WORD_WAIT, async {
        while let Some(event) = channel.poll().await {
            if matches!(event, DataChannelEvent::OnClose) {
                break;
            }
        }
    })
    .await;
    let _ = channel.close().await;
}

async fn receive_steps(
    channel: &Arc<dyn DataChannel>,
    policy: &FilePolicy,
    reporter: &mut Reporter,
) -> anyhow::Result<(String, PathBuf)> {
    let Control::Offer { name, size, sha256 } = next_control(channel).await? else {
        bail!("a transfer that did not start with an offer");
    };
    reporter.name = name.clone();
    reporter.size = size;
    let refusal = if policy.refuse_all {
        Some("this client takes no files".to_owned())
    } else if size > policy.max_bytes {
        Some(format!(
            "{size} bytes is over the limit of {} bytes",
            policy.max_bytes
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        send_control(
            channel,
            &Control::Refuse {
                reason: reason.clone(),
            },
        )
        .await?;
        bail!("refused: {reason}");
    }
    tokio::fs::create_dir_all(&policy.download_dir)
        .await
        .with_context(|| format!("cannot create {}", policy.download_dir.display()))?;
    let temp = policy
        .download_dir
        .join(format!(".rtc-cli-{}.part", uuid::Uuid::new_v4()));
    let written = receive_into(channel, &temp, size, reporter).await;
    let got = match written {
        Ok(got) => got,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
    };
    if got != sha256.to_ascii_lowercase() {
        let _ = tokio::fs::remove_file(&temp).await;
        bail!("SHA-256 mismatch: offered {sha256}, received {got}");
    }
    let path = free_path(&policy.download_dir, &safe_file_name(&name));
    tokio::fs::rename(&temp, &path)
        .await
        .with_context(|| format!("cannot save {}", path.display()))?;
    send_control(channel, &Control::Done).await?;
    Ok((got, path))
}

/// Accepts, writes `size` bytes to `temp`, and returns their SHA-256.
async fn receive_into(
    channel: &Arc<dyn DataChannel>,
    temp: &Path,
    size: u64,
    reporter: &mut Reporter,
) -> anyhow::Result<String> {
    let mut file = tokio::fs::File::create(temp)
        .await
        .with_context(|| format!("cannot create {}", temp.display()))?;
    send_control(channel, &Control::Accept).await?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut got = 0u64;
    reporter.progress(0);
    while got < size {
        match channel.poll().await {
            Some(DataChannelEvent::OnMessage(m)) if !m.is_string => {
                got += m.data.len() as u64;
                if got > size {
                    bail!("more bytes than offered");
                }
                ctx.update(&m.data);
                file.write_all(&m.data).await?;
                reporter.progress(got);
            }
            Some(DataChannelEvent::OnMessage(_)) => bail!("unexpected text during the data"),
            Some(DataChannelEvent::OnClose) | None => {
                bail!("the transfer broke off after {got} of {size} bytes")
            }
            Some(_) => {}
        }
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(hex(ctx.finish().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_one_safe_name_inside_the_directory() {
        for (given, safe) in [
            ("../../etc/passwd", "passwd"),
            ("..\\..\\boot.ini", "boot.ini"),
            ("/abs/path/report.pdf", "report.pdf"),
            ("..", "download"),
            ("", "download"),
            (".bashrc", "bashrc"),
            ("a\x1b[2Jb\n.txt", "a[2Jb.txt"),
            ("dir/", "download"),
        ] {
            assert_eq!(safe_file_name(given), safe, "{given:?}");
        }
        let long = "é".repeat(300);
        assert!(safe_file_name(&long).len() <= 200);
    }

    #[test]
    fn an_existing_name_gets_a_number_before_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a (1).txt"));
        std::fs::write(dir.path().join("a (1).txt"), "x").unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a (2).txt"));
        assert_eq!(free_path(dir.path(), "README"), dir.path().join("README"));
    }

    #[test]
    fn control_messages_are_the_documented_json() {
        let offer = Control::Offer {
            name: "a.bin".into(),
            size: 5,
            sha256: "ab".into(),
        };
        assert_eq!(
            serde_json::to_string(&offer).unwrap(),
            r#"{"type":"offer","name":"a.bin","size":5,"sha256":"ab"}"#
        );
        assert_eq!(
            serde_json::to_string(&Control::Accept).unwrap(),
            r#"{"type":"accept"}"#
        );
        let refuse: Control = serde_json::from_str(r#"{"type":"refuse","reason":"no"}"#).unwrap();
        assert_eq!(
            refuse,
            Control::Refuse {
                reason: "no".into()
            }
        );
    }
}
