//! `rtc-netlab`: the lab from the command line, for benchmark scripts.
//!
//! `rtc-netlab media --profile loss5` builds the two-namespace media lab, prints one
//! JSON line with its namespaces and addresses, then a counters line every second, and
//! tears everything down when its stdin closes, on SIGINT/SIGTERM, or after
//! `--max-duration`; its last line holds the final counters. `rtc-netlab nat` does the
//! same for the NAT topology (no counters).

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use rtc_netlab::impair::{Bottleneck, Cut, Jitter, LossRate};
use rtc_netlab::{Impairment, MediaLab, NatLab, NatMapping, NatOptions, Profile};

/// Network labs for rtc-cli tests: namespaces and an impaired TUN link (needs root).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the impairment profiles.
    Profiles,
    /// Remove lab namespaces left by dead processes.
    Sweep,
    /// Build the media lab (namespaces a and b, impaired tun0 link, clean sig0 veth) and
    /// forward until stdin closes, a signal, or --max-duration.
    Media(MediaArgs),
    /// Build the NAT lab (public, nat1, nat2, home1, home2) and keep it until stdin
    /// closes, a signal, or --max-duration.
    Nat(NatArgs),
}

#[derive(clap::Args)]
struct NatArgs {
    /// Drop UDP between the two NATs (only a relay in the public namespace connects).
    #[arg(long)]
    block_direct_udp: bool,
    /// NATs with a fresh random port per destination ("symmetric") instead of
    /// endpoint-independent mapping.
    #[arg(long)]
    symmetric: bool,
    /// Tear down after this many seconds whatever happens.
    #[arg(long, default_value_t = 600)]
    max_duration: u64,
}

#[derive(clap::Args)]
struct MediaArgs {
    /// Named profile (see `rtc-netlab profiles`); the flags below override its parts.
    #[arg(long, default_value = "clean")]
    profile: Profile,
    /// Seed of the loss and jitter draws (reproducible runs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random loss, percent.
    #[arg(long)]
    loss: Option<f64>,
    /// Fixed one-way delay, ms.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Uniform jitter around the delay, ± ms.
    #[arg(long)]
    jitter_ms: Option<u64>,
    /// Bottleneck rate, kbit/s (with --queue-ms).
    #[arg(long, requires = "queue_ms")]
    rate_kbps: Option<u32>,
    /// Bottleneck queue, ms of sending time.
    #[arg(long, requires = "rate_kbps")]
    queue_ms: Option<u64>,
    /// Cut start, seconds after the lab is up (with --cut-for).
    #[arg(long, requires = "cut_for")]
    cut_at: Option<f64>,
    /// Cut length, seconds.
    #[arg(long, requires = "cut_at")]
    cut_for: Option<f64>,
    /// Tear down after this many seconds whatever happens.
    #[arg(long, default_value_t = 600)]
    max_duration: u64,
    /// Print counters every this many ms (0: only at the end).
    #[arg(long, default_value_t = 1000)]
    counters_every_ms: u64,
}

impl MediaArgs {
    fn impairment(&self) -> anyhow::Result<Impairment> {
        let mut imp = self.profile.impairment();
        if let Some(p) = self.loss {
            imp.loss = LossRate::from_percent(p)?;
        }
        if let Some(ms) = self.delay_ms {
            imp.delay = Duration::from_millis(ms);
        }
        if let Some(ms) = self.jitter_ms {
            imp.jitter = Jitter::Uniform {
                spread: Duration::from_millis(ms),
            };
        }
        if let (Some(rate_kbps), Some(ms)) = (self.rate_kbps, self.queue_ms) {
            anyhow::ensure!(rate_kbps > 0, "--rate-kbps must be above 0");
            imp.bottleneck = Some(Bottleneck {
                rate_kbps,
                queue: Duration::from_millis(ms),
            });
        }
        if let (Some(at), Some(len)) = (self.cut_at, self.cut_for) {
            let secs = |s: f64, what| {
                Duration::try_from_secs_f64(s)
                    .with_context(|| format!("{what} must be seconds >= 0, got {s}"))
            };
            imp.cut = Some(Cut {
                start: secs(at, "--cut-at")?,
                length: secs(len, "--cut-for")?,
            });
        }
        Ok(imp)
    }
}

/// Set by SIGINT/SIGTERM or stdin's end.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Profiles => {
            for p in Profile::ALL {
                println!("{:<18} {:?}", p.name(), p.impairment());
            }
            Ok(())
        }
        Cmd::Sweep => {
            for name in rtc_netlab::lab::sweep_stale() {
                println!("removed {name}");
            }
            Ok(())
        }
        Cmd::Media(args) => media(&args),
        Cmd::Nat(args) => nat(&args),
    }
}

fn nat(args: &NatArgs) -> anyhow::Result<()> {
    let mapping = if args.symmetric {
        NatMapping::EndpointDependent
    } else {
        NatMapping::EndpointIndependent
    };
    let options = NatOptions {
        mapping,
        block_direct_udp: args.block_direct_udp,
    };
    watch_stop_requests();
    let lab = NatLab::new(options).context("building the NAT lab")?;
    println!(
        "{{\"event\":\"ready\",\"public\":\"{}\",\"nat1\":\"{}\",\"nat2\":\"{}\",\"home1\":\"{}\",\"home2\":\"{}\",\"server\":\"{}\",\"home1_addr\":\"{}\",\"home2_addr\":\"{}\",\"nat1_public\":\"{}\",\"nat2_public\":\"{}\"}}",
        lab.public.name(),
        lab.nat1.name(),
        lab.nat2.name(),
        lab.home1.name(),
        lab.home2.name(),
        NatLab::SERVER,
        NatLab::HOME1,
        NatLab::HOME2,
        NatLab::NAT1_PUBLIC,
        NatLab::NAT2_PUBLIC
    );
    let started = Instant::now();
    let limit = Duration::from_secs(args.max_duration);
    while !STOP.load(Ordering::Relaxed) && started.elapsed() < limit {
        thread::sleep(Duration::from_millis(20));
    }
    drop(lab);
    Ok(())
}

/// Sets [`STOP`] on SIGINT, SIGTERM or the end of stdin.
fn watch_stop_requests() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        STOP.store(true, Ordering::Relaxed);
    });
}

fn media(args: &MediaArgs) -> anyhow::Result<()> {
    let impairment = args.impairment()?;
    watch_stop_requests();
    let lab = MediaLab::new(impairment, args.seed).context("building the media lab")?;
    let started = Instant::now();
    println!(
        "{{\"event\":\"ready\",\"profile\":\"{}\",\"a\":\"{}\",\"b\":\"{}\",\"a_media\":\"{}\",\"b_media\":\"{}\",\"a_signal\":\"{}\",\"b_signal\":\"{}\"}}",
        args.profile,
        lab.a.name(),
        lab.b.name(),
        MediaLab::A_MEDIA,
        MediaLab::B_MEDIA,
        MediaLab::A_SIGNAL,
        MediaLab::B_SIGNAL
    );
    let every = Duration::from_millis(args.counters_every_ms);
    let limit = Duration::from_secs(args.max_duration);
    let mut next = every;
    while !STOP.load(Ordering::Relaxed) && started.elapsed() < limit {
        thread::sleep(Duration::from_millis(20));
        if !every.is_zero() && started.elapsed() >= next {
            print_counters("counters", &lab, started);
            next += every;
        }
    }
    print_counters("final", &lab, started);
    drop(lab);
    Ok(())
}

fn print_counters(event: &str, lab: &MediaLab, started: Instant) {
    println!(
        "{{\"event\":\"{event}\",\"t\":{:.3},\"a_to_b\":{},\"b_to_a\":{}}}",
        started.elapsed().as_secs_f64(),
        lab.a_to_b().to_json(),
        lab.b_to_a().to_json()
    );
}
