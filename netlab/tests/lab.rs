//! The lab on this machine: namespaces, the impaired link carrying real UDP, NAT
//! routers, and clean-up. Needs root; skipped (with the reason printed) without it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rtc_netlab::impair::{Bottleneck, LossRate};
use rtc_netlab::lab::sweep_stale;
use rtc_netlab::{Impairment, Lab, MediaLab, NatLab, NatOptions, Profile};

/// Whether labs can be made here; prints why not.
fn can_make_labs() -> bool {
    match Lab::available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: no network lab on this machine: {why}");
            false
        }
    }
}

/// A UDP socket on `addr` (port 0) inside the lab namespace `ns`.
fn socket_in(ns: &rtc_netlab::Namespace, addr: Ipv4Addr) -> UdpSocket {
    ns.within(|| UdpSocket::bind(SocketAddr::from((addr, 0))))
        .expect("entering the namespace")
        .expect("binding a UDP socket")
}

/// Sends `n` numbered datagrams of `size` bytes from `from` to `to`, one every `gap`,
/// and returns the numbers `to` received within `linger` after the last one, in
/// arrival order.
fn send_and_receive(
    from: &UdpSocket,
    to: &UdpSocket,
    n: u32,
    size: usize,
    gap: Duration,
    linger: Duration,
) -> Vec<u32> {
    let dest = to.local_addr().unwrap();
    to.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut drain = |got: &mut Vec<u32>| {
        while let Ok(len) = to.recv(&mut buf) {
            got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
            assert_eq!(len, size);
        }
    };
    for i in 0..n {
        let mut packet = vec![0u8; size];
        packet[..4].copy_from_slice(&i.to_be_bytes());
        from.send_to(&packet, dest).unwrap();
        std::thread::sleep(gap);
        if i % 20 == 0 {
            drain(&mut got);
        }
    }
    let end = Instant::now() + linger;
    while Instant::now() < end {
        drain(&mut got);
    }
    got
}

#[test]
fn the_impaired_link_carries_udp_between_the_namespaces_and_applies_loss() {
    if !can_make_labs() {
        return;
    }
    let imp = Impairment {
        loss: LossRate::from_percent(20.0).unwrap(),
        ..Impairment::default()
    };
    let lab = MediaLab::new(imp, 3).expect("building the media lab");
    let a = socket_in(&lab.a, MediaLab::A_MEDIA);
    let b = socket_in(&lab.b, MediaLab::B_MEDIA);
    let got = send_and_receive(
        &a,
        &b,
        500,
        200,
        Duration::from_micros(500),
        Duration::from_millis(300),
    );
    let c = lab.a_to_b();
    eprintln!("a→b: {c}; {} of 500 received", got.len());
    // Every datagram crossed the forwarder, and what it did not drop arrived.
    assert!(c.packets_in >= 500, "{c}");
    assert_eq!(c.packets_in, c.packets_out + c.dropped_loss);
    assert_eq!(got.len() as u64, 500 - c.dropped_loss);
    // 20 % of 500: sd ≈ 9; 60..140 is over 4 sd.
    assert!((60..=140).contains(&c.dropped_loss), "{c}");
}

#[test]
fn delay_holds_packets_back_and_jitter_reorders_them() {
    if !can_make_labs() {
        return;
    }
    let lab =
        MediaLab::new(Profile::Delay100Jitter30.impairment(), 1).expect("building the media lab");
    let a = socket_in(&lab.a, MediaLab::A_MEDIA);
    let b = socket_in(&lab.b, MediaLab::B_MEDIA);
    b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let start = Instant::now();
    a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    b.recv(&mut buf).expect("the datagram arrives");
    // At least the delay minus the jitter (an upper bound would flake on a loaded machine).
    assert!(
        start.elapsed() >= Duration::from_millis(70),
        "{:?}",
        start.elapsed()
    );

    let got = send_and_receive(
        &a,
        &b,
        200,
        100,
        Duration::from_millis(1),
        Duration::from_millis(400),
    );
    assert_eq!(got.len(), 200, "no loss configured");
    let overtaken = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(
        overtaken > 10,
        "only {overtaken} of 200 out of order: {got:?}"
    );
}

#[test]
fn a_bottleneck_drops_what_its_queue_cannot_hold() {
    if !can_make_labs() {
        return;
    }
    let imp = Impairment {
        bottleneck: Some(Bottleneck {
            rate_kbps: 100,
            queue: Duration::from_millis(100),
        }),
        ..Impairment::default()
    };
    let lab = MediaLab::new(imp, 1).expect("building the media lab");
    let a = socket_in(&lab.a, MediaLab::A_MEDIA);
    let b = socket_in(&lab.b, MediaLab::B_MEDIA);
    // 100 datagrams of ~1 kB at once: the queue holds 100 ms of 100 kbit/s, about two.
    let got = send_and_receive(
        &a,
        &b,
        100,
        1000,
        Duration::ZERO,
        Duration::from_millis(500),
    );
    let c = lab.a_to_b();
    assert!(c.dropped_queue >= 80, "{c}");
    assert_eq!(got.len() as u64, 100 - c.dropped_queue, "{c}");
}

#[test]
fn a_cut_drops_everything_while_it_lasts_and_the_link_returns() {
    if !can_make_labs() {
        return;
    }
    let lab = MediaLab::new(Impairment::default(), 1).expect("building the media lab");
    let a = socket_in(&lab.a, MediaLab::A_MEDIA);
    let b = socket_in(&lab.b, MediaLab::B_MEDIA);
    lab.cut_for(Duration::from_secs(2));
    let during = send_and_receive(&a, &b, 10, 100, Duration::ZERO, Duration::from_millis(50));
    assert!(during.is_empty(), "{during:?}");
    std::thread::sleep(Duration::from_millis(2200));
    let after = send_and_receive(&a, &b, 10, 100, Duration::ZERO, Duration::from_millis(300));
    assert_eq!(after.len(), 10);
    assert_eq!(lab.a_to_b().dropped_cut, 10);
}

#[test]
fn the_lab_removes_its_namespaces_and_sweeps_those_of_dead_processes() {
    if !can_make_labs() {
        return;
    }
    let lab = MediaLab::new(Impairment::default(), 1).expect("building the media lab");
    let names: Vec<String> = lab
        .lab
        .namespaces()
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    let exists = |n: &str| std::path::Path::new("/run/netns").join(n).exists();
    assert!(names.iter().all(|n| exists(n)), "{names:?}");
    drop(lab);
    assert!(names.iter().all(|n| !exists(n)), "{names:?} left behind");

    // A namespace named for a pid that does not run (above the kernel's pid limit).
    let stale = "rtcl4194999x0-z";
    let made = std::process::Command::new("ip")
        .args(["netns", "add", stale])
        .status()
        .unwrap();
    assert!(made.success());
    // (A lab built by a test running alongside may sweep it first: the same function.)
    let removed = sweep_stale();
    assert!(!exists(stale), "{stale} not swept; removed {removed:?}");
}

#[test]
fn a_home_reaches_the_public_server_through_its_nat_under_the_nat_address() {
    if !can_make_labs() {
        return;
    }
    let lab = NatLab::new(NatOptions::default()).expect("building the NAT lab");
    let server = socket_in(&lab.public, NatLab::SERVER);
    let home = socket_in(&lab.home1, NatLab::HOME1);
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    home.send_to(b"hello", server.local_addr().unwrap())
        .unwrap();
    let mut buf = [0u8; 16];
    let (_, seen_from) = server
        .recv_from(&mut buf)
        .expect("the datagram reaches the server");
    assert_eq!(
        seen_from.ip(),
        std::net::IpAddr::V4(NatLab::NAT1_PUBLIC),
        "masqueraded"
    );
    // The reply finds its way back through the NAT.
    home.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    server.send_to(b"hi", seen_from).unwrap();
    home.recv(&mut buf)
        .expect("the reply comes back through the NAT");
}
