//! Logging to a file with tracing, never to the terminal that shows the call.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// The default log file: `$XDG_STATE_HOME/rtc-cli/rtc-cli.log`, else the cache dir.
pub fn default_log_path() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "rtc-cli")?;
    let dir = dirs.state_dir().unwrap_or(dirs.cache_dir());
    Some(dir.join("rtc-cli.log"))
}

/// Holds the log writer open; logs are flushed when it drops.
pub struct LogGuard {
    _guard: tracing_appender::non_blocking::WorkerGuard,
    /// Where the log goes.
    pub path: PathBuf,
}

/// Sends tracing output to `path` (appending), at `info` (`verbose` 0), `debug` (1)
/// or `trace` (2+) for this crate and `warn` for dependencies; `RUST_LOG` overrides.
///
/// # Errors
/// The log directory or file cannot be created.
pub fn init(path: &Path, verbose: u8) -> anyhow::Result<LogGuard> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,rtc_cli={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(LogGuard {
        _guard: guard,
        path: path.to_owned(),
    })
}
