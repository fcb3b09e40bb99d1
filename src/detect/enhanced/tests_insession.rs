//! Beacons the session-level view misses: check-ins inside one long connection (TCP C2,
//! HTTP/1.1 keep-alive, a UDP 5-tuple that never changes) and heavily jittered check-ins
//! (sleep uniform in [0.1 P, 1.9 P]); and the benign look-alikes that must stay quiet
//! (human-paced interactive sessions, sporadic requests over one TLS session, Poisson
//! visits, internal polling by default).

use super::testkit::*;
use super::BeaconDetector;
use crate::detect::{Alert, DetectConfig};

const HOST: &str = "192.0.2.15";
const C2: &str = "203.0.113.66";

fn beacon(cfg: &DetectConfig, feed: Feed) -> Vec<Alert> {
    let mut det = BeaconDetector::new(cfg);
    feed.run(&mut det)
}

/// Check-in sizes with a little variation, as C2 messages have.
fn checkin_sizes(n: usize, up: u64, down: u64) -> Vec<(u64, u64)> {
    (0..n as u64).map(|i| (up + i % 5, down + i % 3)).collect()
}

fn one_session(times: &[f64], dport: u16, udp: bool) -> (Feed, u64) {
    let mut f = Feed::new();
    let id = f.long_session(ip(HOST), ip(C2), 40001, dport, udp, times, &checkin_sizes(times.len(), 70, 36), 0.2);
    (f, id)
}

fn assert_in_session(a: &Alert, interval: f64, tol: f64, sessions: &[u64]) {
    assert_eq!((a.src, a.dst), (ip(HOST), Some(ip(C2))), "{}", json(a));
    assert_eq!(a.evidence["InSession"], true, "{}", json(a));
    assert_eq!(a.sessions, sessions, "{}", json(a));
    let got = ev_f64(a, "IntervalSeconds");
    assert!((got - interval).abs() <= tol, "interval {got} vs {interval}: {}", json(a));
    assert!(ev_f64(a, "Score") >= 0.8);
}

#[test]
fn persistent_tcp_c2_checking_in_every_15s_over_one_connection_is_caught() {
    for seed in 0..20 {
        let mut rng = SplitMix64(seed);
        let times = times_from_gaps(100.0, 24, || 15.0 * rng.uniform(0.85, 1.15));
        let (feed, id) = one_session(&times, 4444, false);
        let alerts = beacon(&config(), feed);
        assert_eq!(alerts.len(), 1, "seed {seed}: {alerts:?}");
        let a = &alerts[0];
        assert_in_session(a, 15.0, 2.0, &[id]);
        assert_eq!(a.name, format!("Beaconing every {:.0}s inside one session", ev_f64(a, "IntervalSeconds")));
        assert_eq!((ev_str(a, "Protocol"), a.dport), ("TCP", Some(4444)));
        assert_eq!((ev_f64(a, "Connections"), ev_str(a, "Pattern")), (1.0, "Regular"));
        assert!(ev_f64(a, "Exchanges") >= 8.0);
        // Payload bytes per exchange, not the session's byte counts.
        assert!((70.0..75.0).contains(&ev_f64(a, "MeanSrcBytes")), "{}", json(a));
    }
}

#[test]
fn a_20s_check_in_inside_one_connection_scores_like_20s_connections() {
    let mut rng = SplitMix64(42);
    let times = times_from_gaps(0.0, 40, || 20.0 + rng.uniform(-2.0, 2.0));
    let (inside, _) = one_session(&times, 443, false);
    let mut sessions = Feed::new();
    for (i, t) in times.iter().enumerate() {
        let fate = Fate::Ok { dur: 0.2, src_bytes: 70 + i as u64 % 5, dst_bytes: 36 + i as u64 % 3 };
        sessions.session(*t, ip(HOST), ip(C2), 40000 + i as u16, 443, fate);
    }
    // Both alert; scored on the same 40 check-ins, their timing evidence is identical.
    let (a, b) = (beacon(&config(), inside.clone()), beacon(&config(), sessions.clone()));
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?}\n{b:?}");
    let mut cfg = config();
    cfg.enhanced.beacon_min_connections = 40;
    let (a, b) = (beacon(&cfg, inside), beacon(&cfg, sessions));
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?}\n{b:?}");
    assert_eq!((a[0].evidence["InSession"].clone(), b[0].evidence["InSession"].clone()), (true.into(), false.into()));
    for key in ["IntervalSeconds", "JitterSeconds", "TimingScore", "Skew", "Persistence", "GapCV"] {
        assert_eq!(ev_f64(&a[0], key), ev_f64(&b[0], key), "{key}");
    }
    assert_eq!(ev_str(&a[0], "LastSeen"), ev_str(&b[0], "LastSeen"));
    assert!((ev_f64(&a[0], "Score") - ev_f64(&b[0], "Score")).abs() < 0.05);
}

#[test]
fn http_keepalive_polling_every_10s_plus_minus_30_percent_is_caught() {
    let mut rng = SplitMix64(7);
    let times = times_from_gaps(50.0, 34, || 10.0 * rng.uniform(0.7, 1.3));
    let mut f = Feed::new();
    let sizes: Vec<(u64, u64)> = (0..34).map(|i| (300 + 120 + i % 60, 180 + i % 32)).collect();
    let id = f.long_session(ip(HOST), ip(C2), 40002, 80, false, &times, &sizes, 0.05);
    let alerts = beacon(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_in_session(&alerts[0], 10.0, 1.5, &[id]);
}

#[test]
fn udp_beacon_from_one_fixed_source_port_is_caught() {
    let mut rng = SplitMix64(8);
    let times = times_from_gaps(10.0, 28, || 12.0 * rng.uniform(0.95, 1.05));
    let (feed, id) = one_session(&times, 4000, true);
    let alerts = beacon(&config(), feed);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_in_session(&alerts[0], 12.0, 0.7, &[id]);
    assert_eq!(ev_str(&alerts[0], "Protocol"), "UDP");
}

#[test]
fn polling_over_two_keepalive_connections_is_one_series_naming_both() {
    // Caldera Sandcat style: the check-ins alternate between two connections, so their
    // exchanges are reported out of time order (each when its own session pauses again).
    let mut rng = SplitMix64(9);
    let times = times_from_gaps(0.0, 30, || 40.0 + rng.uniform(-3.0, 3.0));
    let (even, odd): (Vec<f64>, Vec<f64>) =
        (times.iter().step_by(2).copied().collect(), times.iter().skip(1).step_by(2).copied().collect());
    let mut f = Feed::new();
    let a = f.long_session(ip(HOST), ip(C2), 40003, 443, false, &even, &checkin_sizes(15, 90, 40), 0.2);
    let b = f.long_session(ip(HOST), ip(C2), 40004, 443, false, &odd, &checkin_sizes(15, 90, 40), 0.2);
    let alerts = beacon(&config(), f);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_in_session(&alerts[0], 40.0, 4.0, &[a, b]);
    let interval = ev_f64(&alerts[0], "IntervalSeconds");
    assert_eq!(alerts[0].name, format!("Beaconing every {interval:.0}s inside 2 sessions"));
    assert_eq!(ev_f64(&alerts[0], "Connections"), 2.0);
}

#[test]
fn human_paced_interactive_session_is_not_flagged() {
    // Think times log-normal (median 5 s, sigma 1), clipped to [0.4, 60] s; output sizes
    // log-normal too. Only pauses of at least exchange_gap make exchanges.
    for seed in 0..30 {
        let mut rng = SplitMix64(500 + seed);
        let normal = |rng: &mut SplitMix64| {
            let (u, v) = (rng.unit().max(1e-12), rng.unit());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let mut times = Vec::new();
        let mut t = 1.0;
        while t < 330.0 {
            let think = (5f64.ln() + normal(&mut rng)).exp().clamp(0.4, 60.0);
            if think >= 5.0 || times.is_empty() {
                times.push(t);
            }
            t += think + 1.0;
        }
        let sizes: Vec<(u64, u64)> = (0..times.len())
            .map(|_| (rng.below(20) + 3, (400f64.ln() + 1.2 * normal(&mut rng)).exp() as u64))
            .collect();
        let mut f = Feed::new();
        f.long_session(ip(HOST), ip(C2), 40005, 23, false, &times, &sizes, 0.8);
        let alerts = beacon(&config(), f);
        assert!(alerts.is_empty(), "seed {seed}: {alerts:?}");
    }
}

#[test]
fn sporadic_requests_over_one_long_tls_session_are_not_flagged() {
    for seed in 0..30 {
        let mut rng = SplitMix64(600 + seed);
        let times = times_from_gaps(3.0, 40, || rng.exp(20.0).clamp(3.0, 80.0));
        let sizes: Vec<(u64, u64)> = (0..40).map(|_| (30 + rng.below(270), 30 + rng.below(270))).collect();
        let mut f = Feed::new();
        f.long_session(ip(HOST), ip(C2), 40006, 443, false, &times, &sizes, 0.1);
        assert!(beacon(&config(), f).is_empty(), "seed {seed}");
    }
}

#[test]
fn in_session_scope_is_home_to_outside_unless_beacon_internal() {
    let times = times_from_gaps(0.0, 30, || 15.0);
    let build = || {
        let mut f = Feed::new();
        f.long_session(ip(HOST), ip("192.0.2.200"), 40007, 8443, false, &times, &checkin_sizes(30, 70, 36), 0.1);
        f
    };
    assert!(beacon(&config(), build()).is_empty(), "internal destination, default scope");
    let mut cfg = config();
    cfg.enhanced.beacon_internal = true;
    assert_eq!(beacon(&cfg, build()).len(), 1);
    // An outside host talking to a home server over one session is not scored either.
    let mut f = Feed::new();
    f.long_session(ip(C2), ip(HOST), 40008, 443, false, &times, &checkin_sizes(30, 70, 36), 0.1);
    assert!(beacon(&config(), f).is_empty());
}

#[test]
fn in_session_scoring_can_be_turned_off() {
    let times = times_from_gaps(0.0, 30, || 15.0);
    let mut cfg = config();
    cfg.enhanced.beacon_in_session = false;
    assert!(beacon(&cfg, one_session(&times, 443, false).0).is_empty());
}

#[test]
fn sessions_and_exchanges_of_one_pair_are_one_finding() {
    // A beacon that opens a connection every 60 s and, inside each, polls twice more
    // 20 s apart: both the session series and the exchange series are regular.
    let mut f = Feed::new();
    for i in 0..40 {
        let t = 60.0 * i as f64;
        f.long_session(ip(HOST), ip(C2), 41000 + i as u16, 443, false, &[t, t + 20.0, t + 40.0], &[(80, 40)], 0.1);
    }
    let alerts = beacon(&config(), f);
    assert_eq!(alerts.len(), 1, "one finding per suppression period: {alerts:?}");
}

// ---------------------------------------------------------------- heavy jitter

/// `n` check-ins (new connection each), sleep uniform in [0.1 P, 1.9 P].
fn jittered(rng: &mut SplitMix64, n: usize, period: f64) -> Vec<f64> {
    times_from_gaps(0.0, n, || period * rng.uniform(0.1, 1.9))
}

fn sessions_at(times: &[f64], sizes: impl Fn(usize) -> (u64, u64)) -> Feed {
    let mut f = Feed::new();
    for (i, t) in times.iter().enumerate() {
        let (up, down) = sizes(i);
        f.session(
            *t,
            ip(HOST),
            ip(C2),
            40000 + (i % 20000) as u16,
            443,
            Fate::Ok { dur: 0.3, src_bytes: up, dst_bytes: down },
        );
    }
    f
}

/// The measured detection rate of ±90 % jittered beacons (README "Beaconing"): 1000
/// seeded series of 40 check-ins (period 10 s, gaps uniform in [1 s, 19 s], request
/// sizes varying by a few bytes), each fed to the detector once with the jittered path
/// and once without. Measured: 962 found by the 20th check-in and 997 by the 40th (816 and
/// 992 before the bounded-sleep cut); 104 without the jittered path (125 before the
/// regular path's CV bound grew with the sample). The 4000-trial rates: tests_jitter.rs.
#[test]
fn heavily_jittered_beacons_are_caught_on_persistence() {
    let mut off = config();
    off.enhanced.beacon_jitter_min_connections = 0;
    let (mut caught, mut by_20, mut without_path) = (0, 0, 0);
    let runs: usize = 1000;
    for seed in 0..runs {
        let mut rng = SplitMix64(1000 + seed as u64);
        let times = jittered(&mut rng, 40, 10.0);
        let feed = sessions_at(&times, |i| (700 + i as u64 % 3, 900));
        without_path += usize::from(!beacon(&off, feed.clone()).is_empty());
        let alerts = beacon(&config(), feed);
        assert!(alerts.len() <= 1);
        if let Some(a) = alerts.first() {
            caught += 1;
            by_20 += usize::from(ev_f64(a, "Connections") <= 20.0);
            if ev_str(a, "Pattern") == "Jittered" {
                assert!((5.0..=15.0).contains(&ev_f64(a, "IntervalSeconds")), "{}", json(a));
                assert!(ev_f64(a, "Persistence") >= 0.9, "{}", json(a));
                assert!(ev_f64(a, "MaxGapRatio") < 2.6 && ev_f64(a, "GapCV") < 0.72, "{}", json(a));
            }
        }
    }
    eprintln!("jittered beacons: {caught}/{runs} caught within 40 check-ins, {by_20} by the 20th, {without_path} without the jittered path");
    assert!(caught * 1000 >= runs * 990, "{caught}/{runs} caught by the 40th check-in");
    assert!(by_20 * 1000 >= runs * 940, "{by_20}/{runs} by the 20th check-in");
    assert!(without_path * 100 <= runs * 15, "{without_path}/{runs} caught without the jittered path");
}

#[test]
fn heavily_jittered_check_ins_inside_one_session_are_caught() {
    let mut rng = SplitMix64(77);
    let times = jittered(&mut rng, 40, 12.0);
    let (feed, id) = one_session(&times, 443, false);
    let alerts = beacon(&config(), feed);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_in_session(&alerts[0], 12.0, 4.0, &[id]);
    assert_eq!(ev_str(&alerts[0], "Pattern"), "Jittered");
}

#[test]
fn heavy_jitter_needs_consistent_sizes_and_enough_check_ins() {
    let mut rng = SplitMix64(78);
    let times = jittered(&mut rng, 40, 10.0);
    // Replies that vary like page loads: timing alone does not make it a beacon.
    let varied = beacon(&config(), sessions_at(&times, |i| (700, 2_000 + (i as u64 * 7919) % 60_000)));
    assert!(varied.is_empty(), "{varied:?}");
    let mut cfg = config();
    cfg.enhanced.beacon_jitter_min_connections = 0;
    assert!(beacon(&cfg, sessions_at(&times, |_| (700, 900))).is_empty(), "path turned off");
    assert_eq!(beacon(&config(), sessions_at(&times, |_| (700, 900))).len(), 1);
    assert!(beacon(&config(), sessions_at(&times[..19], |_| (700, 900))).is_empty(), "19 check-ins");
}

/// Poisson series flagged with the jittered path on and off (4000 series of 60 visits).
fn poisson_flagged(sizes: impl Fn(&mut SplitMix64) -> (u64, u64)) -> (usize, usize) {
    let mut off = config();
    off.enhanced.beacon_jitter_min_connections = 0;
    let (mut with, mut without) = (0, 0);
    for seed in 0..4000 {
        let mut rng = SplitMix64(5000 + seed);
        let times = times_from_gaps(0.0, 60, || rng.exp(30.0) + 1.0);
        let sz: Vec<(u64, u64)> = (0..60).map(|_| sizes(&mut rng)).collect();
        let feed = sessions_at(&times, |i| sz[i]);
        with += usize::from(!beacon(&config(), feed.clone()).is_empty());
        without += usize::from(!beacon(&off, feed).is_empty());
    }
    (with, without)
}

/// The measured false-positive rate on Poisson-timed visits (README "Beaconing").
#[test]
fn poisson_visits_rarely_pass_the_jitter_path_and_never_with_varying_replies() {
    // The worst case: memoryless visits whose request and reply sizes never change, so
    // only timing separates them. Measured (4000 series of 60 visits): 74 flagged, 4 of
    // them by the regular path alone, so the jittered path adds 70 (1.75 %). Before the
    // bounded-sleep cut: 57 flagged, 35 by the regular path (whose CV bound did not yet
    // grow with the sample), the jittered path adding 22.
    let (with, without) = poisson_flagged(|_| (700, 900));
    eprintln!("poisson, constant sizes: {with} of 4000 flagged, {without} without the jittered path");
    assert!(
        with >= without && with - without <= 85,
        "jittered path adds {} of 4000 (regular alone {without})",
        with - without
    );
    assert!(without <= 10, "regular path: {without} of 4000");
    // Replies that vary like web pages: the jittered path adds nothing.
    let (with, without) = poisson_flagged(|rng| (700, 3_000 + rng.below(57_000)));
    eprintln!("poisson, varying replies: {with} of 4000 flagged, {without} without the jittered path");
    assert_eq!(with, without, "the jittered path must not add alerts when replies vary");
}

#[test]
fn bursty_activity_with_constant_sizes_is_not_flagged() {
    for seed in 0..50 {
        let mut rng = SplitMix64(900 + seed);
        let times = bursty_times(&mut rng, 80, 4, 120.0);
        let alerts = beacon(&config(), sessions_at(&times, |_| (700, 900)));
        assert!(alerts.is_empty(), "seed {seed}: {alerts:?}");
    }
}
