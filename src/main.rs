//! The `rtc-cli` binary: parse the command line, set up logging, dispatch.

use clap::Parser;

use rtc_cli::cli::Cli;

/// Async worker threads of every command but `serve` (which takes tokio's default, one
/// per core). A client's runtime only moves packets and control messages: codecs, audio
/// and drawing have threads of their own. With a second worker the two woke each other
/// to share that work, 611 thread wake-ups a second against 269 in a loopback call, and
/// a wake-up costs about 43 µs of CPU on the 2-core VM the benchmarks run on: about one
/// point of a core per process (BENCHMARKS, "CPU on clean loopback").
const CLIENT_WORKERS: usize = 1;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log_path = cli
        .global
        .log_file
        .clone()
        .or_else(rtc_cli::logging::default_log_path);
    // Logging is best effort: a call is worth more than its log.
    let _log = log_path.and_then(|p| match rtc_cli::logging::init(&p, cli.global.verbose) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!("rtc-cli: warning: {e:#}; continuing without a log");
            None
        }
    });
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if !matches!(cli.command, Some(rtc_cli::cli::Command::Serve(_))) {
        builder.worker_threads(CLIENT_WORKERS);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtc-cli: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(rtc_cli::commands::run(cli));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rtc-cli: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
