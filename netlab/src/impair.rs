//! The impairment model: what one direction of a link does to each packet (a full cut,
//! a bottleneck with a drop-tail queue, random loss, delay and jitter), decided from
//! the packet's arrival time and size alone, so it is testable without a network.
//!
//! Order of decisions for a packet: a cut drops it; else a full bottleneck queue drops
//! it; else random loss drops it; else it leaves the queue and arrives after the delay
//! plus a jitter drawn per packet. Independent per-packet jitter reorders packets, as
//! jittery real paths do (netem does the same unless told `rate`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A loss probability in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossRate(f64);

impl LossRate {
    /// No loss.
    pub const NONE: Self = Self(0.0);

    /// A loss rate from a percentage in 0..=100.
    ///
    /// # Errors
    /// The percentage is outside 0..=100 or not a number.
    pub fn from_percent(percent: f64) -> anyhow::Result<Self> {
        if !(0.0..=100.0).contains(&percent) {
            bail!("loss must be a percentage in 0..=100, got {percent}");
        }
        Ok(Self(percent / 100.0))
    }

    /// The probability in [0, 1].
    pub fn probability(self) -> f64 {
        self.0
    }
}

/// How each packet's extra delay around the fixed delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// No jitter: every packet gets the fixed delay.
    #[default]
    None,
    /// Uniform in [-spread, +spread].
    Uniform {
        /// Half the width of the range.
        spread: Duration,
    },
    /// Normal with this standard deviation, cut at ±3 sd.
    Normal {
        /// The standard deviation.
        sd: Duration,
    },
}

/// A bottleneck: a link of `rate_kbps` fed by a drop-tail queue that holds at most
/// `queue` worth of sending time (tbf's `latency`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bottleneck {
    /// The link rate, kbit/s (1000 bit/s), > 0.
    pub rate_kbps: u32,
    /// The longest a packet may wait in the queue; one that would wait longer is dropped.
    pub queue: Duration,
}

/// A full cut: every packet is dropped from `start` for `length` (times since the link
/// started).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cut {
    /// When the cut starts, since the link started.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl Cut {
    fn covers(&self, at: Duration) -> bool {
        at >= self.start && at < self.start + self.length
    }
}

/// Everything one direction of a link does to packets. `Default` is a clean link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Random, independent loss.
    pub loss: LossRate,
    /// Fixed one-way delay added to every packet.
    pub delay: Duration,
    /// Per-packet variation around `delay` (the result is never below zero).
    pub jitter: Jitter,
    /// A rate limit with a queue, if any.
    pub bottleneck: Option<Bottleneck>,
    /// A full cut, if any.
    pub cut: Option<Cut>,
    /// Drop every DTLS datagram (a UDP payload whose first byte is 20-63, RFC 7983 §7)
    /// from the start of the link for this long, letting ICE's STUN and everything else
    /// through: a handshake that gives up, for the setup-retry tests.
    pub dtls_blackout: Option<Duration>,
}

/// The named profiles of issue 9's table; `Profile::ALL` lists them in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// No impairment (the forwarder still moves every packet).
    Clean,
    /// 100 ms one-way delay.
    Delay100,
    /// 2 % loss and 80 ms delay.
    Loss2Delay80,
    /// 5 % random loss.
    Loss5,
    /// 10 % random loss.
    Loss10,
    /// 30 ms ± 30 ms uniform jitter (0-60 ms: jitter alone needs a base to vary around).
    Jitter30,
    /// 100 ms ± 30 ms uniform jitter.
    Delay100Jitter30,
    /// A 300 kbit/s bottleneck with a 100 ms drop-tail queue.
    Bw300,
    /// Everything dropped from t = 5 s for 5 s.
    Cut5,
    /// Everything dropped from t = 5 s for 10 s.
    Cut10,
    /// Everything dropped from t = 5 s for 25 s.
    Cut25,
}

impl Profile {
    /// Every profile, in issue 9's table order.
    pub const ALL: [Profile; 11] = [
        Profile::Clean,
        Profile::Delay100,
        Profile::Loss2Delay80,
        Profile::Loss5,
        Profile::Loss10,
        Profile::Jitter30,
        Profile::Delay100Jitter30,
        Profile::Bw300,
        Profile::Cut5,
        Profile::Cut10,
        Profile::Cut25,
    ];

    /// The profile's name, as `FromStr` takes it (`loss2-delay80`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Clean => "clean",
            Profile::Delay100 => "delay100",
            Profile::Loss2Delay80 => "loss2-delay80",
            Profile::Loss5 => "loss5",
            Profile::Loss10 => "loss10",
            Profile::Jitter30 => "jitter30",
            Profile::Delay100Jitter30 => "delay100-jitter30",
            Profile::Bw300 => "bw300",
            Profile::Cut5 => "cut5",
            Profile::Cut10 => "cut10",
            Profile::Cut25 => "cut25",
        }
    }

    /// What the profile does to each direction of the link.
    pub fn impairment(self) -> Impairment {
        let ms = Duration::from_millis;
        let jitter = |spread| Jitter::Uniform { spread: ms(spread) };
        let loss = |p| LossRate(p / 100.0);
        let cut = |secs| {
            Some(Cut {
                start: Duration::from_secs(5),
                length: Duration::from_secs(secs),
            })
        };
        let clean = Impairment::default();
        match self {
            Profile::Clean => clean,
            Profile::Delay100 => Impairment {
                delay: ms(100),
                ..clean
            },
            Profile::Loss2Delay80 => Impairment {
                loss: loss(2.0),
                delay: ms(80),
                ..clean
            },
            Profile::Loss5 => Impairment {
                loss: loss(5.0),
                ..clean
            },
            Profile::Loss10 => Impairment {
                loss: loss(10.0),
                ..clean
            },
            Profile::Jitter30 => Impairment {
                delay: ms(30),
                jitter: jitter(30),
                ..clean
            },
            Profile::Delay100Jitter30 => Impairment {
                delay: ms(100),
                jitter: jitter(30),
                ..clean
            },
            Profile::Bw300 => Impairment {
                bottleneck: Some(Bottleneck {
                    rate_kbps: 300,
                    queue: ms(100),
                }),
                ..clean
            },
            Profile::Cut5 => Impairment {
                cut: cut(5),
                ..clean
            },
            Profile::Cut10 => Impairment {
                cut: cut(10),
                ..clean
            },
            Profile::Cut25 => Impairment {
                cut: cut(25),
                ..clean
            },
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .with_context(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                format!("unknown profile {s:?}; known: {}", names.join(", "))
            })
    }
}

/// Whether an IPv4 packet is a UDP datagram whose payload starts with a DTLS content
/// type (first byte 20-63, the DTLS range of RFC 7983 §7).
fn is_dtls(packet: &[u8]) -> bool {
    const UDP: u8 = 17;
    let Some(&version_ihl) = packet.first() else {
        return false;
    };
    let header = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || packet.get(9) != Some(&UDP) {
        return false;
    }
    packet
        .get(header + 8)
        .is_some_and(|first| (20..=63).contains(first))
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Random loss.
    Loss,
    /// The bottleneck's queue was full.
    Queue,
    /// The link was cut (everything, or DTLS only during a `dtls_blackout`).
    Cut,
}

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered at this time since the link started (never before it arrived).
    Deliver(Duration),
    /// Dropped.
    Drop(DropReason),
}

/// One direction of an impaired link: the model and its state (the seeded random
/// source and when the bottleneck is next free).
#[derive(Debug)]
pub struct LinkModel {
    impairment: Impairment,
    rng: StdRng,
    /// When the bottleneck finishes sending what is queued, since the link started.
    busy_until: Duration,
}

impl LinkModel {
    /// A model of `impairment` whose random draws come from `seed`: the same seed and
    /// packets give the same verdicts.
    pub fn new(impairment: Impairment, seed: u64) -> Self {
        Self {
            impairment,
            rng: StdRng::seed_from_u64(seed),
            busy_until: Duration::ZERO,
        }
    }

    /// The verdict on the IPv4 `packet` arriving at `at`: [`LinkModel::decide`], after
    /// the DTLS blackout if one is set.
    pub fn decide_packet(&mut self, at: Duration, packet: &[u8]) -> Verdict {
        if self.impairment.dtls_blackout.is_some_and(|b| at < b) && is_dtls(packet) {
            return Verdict::Drop(DropReason::Cut);
        }
        self.decide(at, packet.len())
    }

    /// The verdict on a packet of `size_bytes` arriving at `at` (since the link started;
    /// calls come in arrival order).
    pub fn decide(&mut self, at: Duration, size_bytes: usize) -> Verdict {
        let imp = self.impairment;
        if imp.cut.is_some_and(|c| c.covers(at)) {
            return Verdict::Drop(DropReason::Cut);
        }
        let mut leaves = at;
        if let Some(b) = imp.bottleneck {
            let start = self.busy_until.max(at);
            if start - at > b.queue {
                return Verdict::Drop(DropReason::Queue);
            }
            let bits = size_bytes as f64 * 8.0;
            self.busy_until =
                start + Duration::from_secs_f64(bits / (f64::from(b.rate_kbps) * 1000.0));
            leaves = self.busy_until;
        }
        if imp.loss.0 > 0.0 && self.rng.random_bool(imp.loss.0) {
            return Verdict::Drop(DropReason::Loss);
        }
        Verdict::Deliver(leaves + self.delay())
    }

    /// The fixed delay plus this packet's jitter, never below zero.
    fn delay(&mut self) -> Duration {
        let base = self.impairment.delay.as_secs_f64();
        let offset = match self.impairment.jitter {
            Jitter::None => 0.0,
            Jitter::Uniform { spread } => {
                let s = spread.as_secs_f64();
                if s > 0.0 {
                    self.rng.random_range(-s..=s)
                } else {
                    0.0
                }
            }
            Jitter::Normal { sd } => (self.standard_normal().clamp(-3.0, 3.0)) * sd.as_secs_f64(),
        };
        Duration::from_secs_f64((base + offset).max(0.0))
    }

    /// A standard normal draw (Box-Muller).
    fn standard_normal(&mut self) -> f64 {
        let u1: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]: ln stays finite
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Verdicts on `n` packets of `size` bytes arriving every `every`.
    fn run(model: &mut LinkModel, n: u64, every: Duration, size: usize) -> Vec<Verdict> {
        (0..n)
            .map(|i| model.decide(every * i as u32, size))
            .collect()
    }

    #[test]
    fn loss_drops_about_its_share_and_the_seed_repeats_it() {
        let imp = Profile::Loss5.impairment();
        let verdicts = run(&mut LinkModel::new(imp, 7), 10_000, MS(1), 1200);
        let lost = verdicts
            .iter()
            .filter(|v| **v == Verdict::Drop(DropReason::Loss))
            .count();
        // 5 % of 10 000: sd = sqrt(10000 * 0.05 * 0.95) ≈ 22; ±100 is over 4 sd.
        assert!((400..=600).contains(&lost), "lost {lost} of 10000");
        assert_eq!(
            verdicts,
            run(&mut LinkModel::new(imp, 7), 10_000, MS(1), 1200)
        );
        assert_ne!(
            verdicts,
            run(&mut LinkModel::new(imp, 8), 10_000, MS(1), 1200)
        );
    }

    #[test]
    fn a_fixed_delay_keeps_order_and_jitter_reorders_within_its_range() {
        let delayed = run(
            &mut LinkModel::new(Profile::Delay100.impairment(), 1),
            100,
            MS(5),
            100,
        );
        for (i, v) in delayed.iter().enumerate() {
            assert_eq!(*v, Verdict::Deliver(MS(5) * i as u32 + MS(100)));
        }
        let imp = Profile::Delay100Jitter30.impairment();
        let jittered = run(&mut LinkModel::new(imp, 1), 1000, MS(5), 100);
        let arrivals: Vec<Duration> = jittered
            .iter()
            .map(|v| match v {
                Verdict::Deliver(at) => *at,
                Verdict::Drop(r) => panic!("dropped: {r:?}"),
            })
            .collect();
        for (i, at) in arrivals.iter().enumerate() {
            let sent = MS(5) * i as u32;
            assert!(
                *at >= sent + MS(70) && *at <= sent + MS(130),
                "packet {i} at {at:?}"
            );
        }
        let reordered = arrivals.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(
            reordered > 100,
            "only {reordered} of 1000 packets overtaken"
        );
    }

    #[test]
    fn normal_jitter_stays_within_three_sd_and_never_before_sending() {
        let imp = Impairment {
            delay: MS(10),
            jitter: Jitter::Normal { sd: MS(10) },
            ..Impairment::default()
        };
        for (i, v) in run(&mut LinkModel::new(imp, 3), 1000, MS(1), 100)
            .iter()
            .enumerate()
        {
            let sent = MS(1) * i as u32;
            assert!(matches!(v, Verdict::Deliver(at) if *at >= sent && *at <= sent + MS(40)));
        }
    }

    #[test]
    fn a_bottleneck_queues_at_its_rate_and_drops_when_the_queue_is_full() {
        // 300 kbit/s: a 1250-byte packet (10 000 bits) takes 33.3 ms to send.
        let mut m = LinkModel::new(Profile::Bw300.impairment(), 1);
        let burst: Vec<Verdict> = (0..10).map(|_| m.decide(Duration::ZERO, 1250)).collect();
        // Waits of 0, 33, 67, 100 ms fit the 100 ms queue; the fifth would wait 133 ms.
        let delivered: Vec<Duration> = burst
            .iter()
            .filter_map(|v| {
                if let Verdict::Deliver(at) = v {
                    Some(*at)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(delivered.len(), 4, "{burst:?}");
        assert!(
            (delivered[3].as_secs_f64() - 4.0 / 30.0).abs() < 1e-6,
            "{delivered:?}"
        );
        assert!(
            burst[4..]
                .iter()
                .all(|v| *v == Verdict::Drop(DropReason::Queue))
        );
        // Once drained, the link is free again.
        assert_eq!(
            m.decide(Duration::from_secs(1), 1250),
            Verdict::Deliver(Duration::from_secs(1) + Duration::from_secs_f64(1.0 / 30.0))
        );
        // Sent at 600 kbit/s for 10 s, about half gets through.
        let mut m = LinkModel::new(Profile::Bw300.impairment(), 1);
        let v = run(&mut m, 6000, Duration::from_micros(16_667), 1250);
        let through = v
            .iter()
            .filter(|v| matches!(v, Verdict::Deliver(_)))
            .count();
        assert!(
            (2900..=3100).contains(&through),
            "{through} of 6000 through"
        );
    }

    /// An IPv4/UDP packet (20-byte header, no options) with `payload`.
    fn udp_packet(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = 17;
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn a_dtls_blackout_drops_dtls_only_and_only_while_it_lasts() {
        let mut m = LinkModel::new(
            Impairment {
                dtls_blackout: Some(Duration::from_secs(2)),
                ..Impairment::default()
            },
            1,
        );
        let (stun, dtls) = (udp_packet(&[0, 1, 0, 0]), udp_packet(&[22, 0xfe, 0xfd]));
        let at = Duration::from_secs;
        assert!(matches!(m.decide_packet(at(0), &stun), Verdict::Deliver(_)));
        assert_eq!(
            m.decide_packet(at(0), &dtls),
            Verdict::Drop(DropReason::Cut)
        );
        assert!(matches!(m.decide_packet(at(1), &stun), Verdict::Deliver(_)));
        assert_eq!(
            m.decide_packet(at(1), &dtls),
            Verdict::Drop(DropReason::Cut)
        );
        assert!(matches!(m.decide_packet(at(2), &dtls), Verdict::Deliver(_)));
        // Not UDP (TCP, protocol 6) with the same first payload byte: untouched.
        let mut tcp = udp_packet(&[22]);
        tcp[9] = 6;
        let mut fresh = LinkModel::new(m.impairment, 1);
        assert!(matches!(
            fresh.decide_packet(at(0), &tcp),
            Verdict::Deliver(_)
        ));
    }

    #[test]
    fn a_cut_drops_everything_inside_its_window_only() {
        let mut m = LinkModel::new(Profile::Cut5.impairment(), 1);
        let v = run(&mut m, 200, MS(100), 100); // 0 .. 20 s
        for (i, verdict) in v.iter().enumerate() {
            let cut = (50..100).contains(&i);
            assert_eq!(
                *verdict == Verdict::Drop(DropReason::Cut),
                cut,
                "packet {i}: {verdict:?}"
            );
        }
    }

    #[test]
    fn profiles_parse_by_name_and_unknown_names_are_errors() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        let err = "loss3".parse::<Profile>().unwrap_err().to_string();
        assert!(err.contains("loss3") && err.contains("loss5"), "{err}");
        assert!(LossRate::from_percent(101.0).is_err());
        assert!(LossRate::from_percent(f64::NAN).is_err());
    }
}
