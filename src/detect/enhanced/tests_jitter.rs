//! Measured rates of the heavy-jitter path (README "Heavy jitter", issue #11): seeded
//! 4000-trial harnesses feeding simulated series through the beacon detector.
//!
//! - ±90 % jittered beacons (sleep uniform in [0.1 P, 1.9 P], P from 10 s to 600 s, sizes
//!   with a little variation): how many are found by their 20th, 25th, 30th, 40th check-in;
//! - Poisson-timed visits to one site with web-like (variable) sizes, and bursty browsing:
//!   must essentially never alert;
//! - Poisson-timed visits whose sizes never change (a stress case: only timing separates
//!   them), reported against the best any timing-only test can do: the scale-free
//!   likelihood ratio of a [0.1 P, 1.9 P] uniform sleep against exponential gaps.
//!
//! About 5 s in release, one thread (`cargo test --release --lib tests_jitter -- --nocapture`).

use super::testkit::*;
use super::{score_series, BeaconDetector, EnhancedConfig, Pattern};
use crate::detect::{Alert, DetectConfig};

const HOST: &str = "192.0.2.15";
const C2: &str = "203.0.113.66";
const TRIALS: u64 = 4000;

fn beacon(cfg: &DetectConfig, feed: Feed) -> Vec<Alert> {
    let mut det = BeaconDetector::new(cfg);
    feed.run(&mut det)
}

/// One connection per check-in at `times`, with `sizes[i]` IP bytes each way.
fn sessions_at(times: &[f64], sizes: &[(u64, u64)]) -> Feed {
    let mut f = Feed::new();
    for (i, (t, (up, down))) in times.iter().zip(sizes).enumerate() {
        let fate = Fate::Ok { dur: 0.3, src_bytes: *up, dst_bytes: *down };
        f.session(*t, ip(HOST), ip(C2), 40000 + (i % 20000) as u16, 443, fate);
    }
    f
}

/// The check-in (the `Connections` evidence) at which a series first alerted.
fn first_alert_at(alerts: &[Alert]) -> Option<u64> {
    alerts.first().map(|a| ev_f64(a, "Connections") as u64)
}

#[test]
fn heavily_jittered_beacons_are_found_by_their_20th_check_in() {
    let checkpoints = [20u64, 25, 30, 40];
    let mut found = [0u64; 4];
    let mut jittered_kind = 0u64;
    for seed in 0..TRIALS {
        let mut rng = SplitMix64(10_000 + seed);
        let period = rng.uniform(10.0, 600.0);
        let times = times_from_gaps(0.0, 40, || period * rng.uniform(0.1, 1.9));
        // A check-in and an empty tasking reply: the same few hundred bytes each time,
        // give or take a few (headers, TCP options, retransmissions): 0–3 % above a base.
        let (up, down) = (200 + rng.below(1800), 150 + rng.below(1300));
        let sizes: Vec<(u64, u64)> =
            (0..40).map(|_| (up + rng.below(up / 33 + 1), down + rng.below(down / 33 + 1))).collect();
        let alerts = beacon(&config(), sessions_at(&times, &sizes));
        if let Some(a) = alerts.first() {
            if ev_str(a, "Pattern") == "Jittered" {
                // The mean gap of 19+ gaps: within ±0.4 P (3.5 standard errors).
                jittered_kind += 1;
                let interval = ev_f64(a, "IntervalSeconds");
                assert!((0.6 * period..=1.4 * period).contains(&interval), "seed {seed}: {}", json(a));
            }
        }
        if let Some(at) = first_alert_at(&alerts) {
            for (k, n) in checkpoints.iter().enumerate() {
                found[k] += u64::from(at <= *n);
            }
        }
    }
    let pct = |x: u64| 100.0 * x as f64 / TRIALS as f64;
    eprintln!(
        "±90 % jittered beacons ({TRIALS}): found by 20th {:.1} %, 25th {:.1} %, 30th {:.1} %, 40th {:.1} % ({jittered_kind} as Jittered)",
        pct(found[0]),
        pct(found[1]),
        pct(found[2]),
        pct(found[3])
    );
    assert!(pct(found[0]) >= 94.0, "by the 20th: {:.1} %", pct(found[0]));
    assert!(pct(found[1]) >= 96.5, "by the 25th: {:.1} %", pct(found[1]));
    assert!(pct(found[3]) >= 99.0, "by the 40th: {:.1} %", pct(found[3]));
}

/// Poisson-timed visits: 60 visits, mean gap 10–600 s; flagged series and how many of
/// them by the regular path.
fn poisson_flagged(seed0: u64, sizes: impl Fn(&mut SplitMix64) -> (u64, u64)) -> (u64, u64) {
    let (mut flagged, mut regular) = (0, 0);
    for seed in 0..TRIALS {
        let mut rng = SplitMix64(seed0 + seed);
        let mean = rng.uniform(10.0, 600.0);
        let times = times_from_gaps(0.0, 60, || rng.exp(mean) + 1.0);
        let sz: Vec<(u64, u64)> = (0..60).map(|_| sizes(&mut rng)).collect();
        let alerts = beacon(&config(), sessions_at(&times, &sz));
        if let Some(a) = alerts.first() {
            flagged += 1;
            regular += u64::from(ev_str(a, "Pattern") == "Regular");
        }
    }
    (flagged, regular)
}

#[test]
fn poisson_visits_with_web_like_sizes_essentially_never_alert() {
    // Requests of 400–800 bytes (URLs, cookies), replies of 1.5–60 kB.
    let (flagged, regular) = poisson_flagged(50_000, |rng| (400 + rng.below(400), 1_500 + rng.below(58_500)));
    eprintln!("poisson, web-like sizes: {flagged} of {TRIALS} flagged ({regular} by the regular path)");
    assert_eq!(flagged, regular, "the jittered path must not flag varying sizes");
    assert!(flagged * 1000 <= TRIALS * 2, "{flagged} of {TRIALS}");
}

#[test]
fn poisson_visits_with_constant_sizes_pass_about_as_often_as_timing_alone_allows() {
    // The stress case: request and reply sizes never change, so only timing separates
    // these visits from a beacon. The bound below is what the most powerful scale-free
    // timing test achieves (see `likelihood_ratio_bound_on_timing_alone`).
    let (flagged, regular) = poisson_flagged(90_000, |_| (700, 900));
    eprintln!("poisson, constant sizes: {flagged} of {TRIALS} flagged ({regular} by the regular path)");
    assert!(flagged * 1000 <= TRIALS * 25, "{flagged} of {TRIALS}");
    assert!(regular * 1000 <= TRIALS * 10, "regular path: {regular} of {TRIALS}");
}

#[test]
fn bursty_browsing_never_alerts() {
    let mut flagged = 0;
    for seed in 0..TRIALS / 4 {
        let mut rng = SplitMix64(70_000 + seed);
        let constant = seed % 2 == 0;
        // Page visits: a few connections seconds apart, then reading for a while.
        let times = bursty_times(&mut rng, 80, 5, 150.0);
        let sz: Vec<(u64, u64)> = (0..times.len())
            .map(|_| if constant { (700, 900) } else { (400 + rng.below(400), 1_500 + rng.below(58_500)) })
            .collect();
        flagged += usize::from(!beacon(&config(), sessions_at(&times, &sz)).is_empty());
    }
    eprintln!("bursty browsing: {flagged} of {} flagged", TRIALS / 4);
    assert_eq!(flagged, 0);
}

/// Log of the scale-free likelihood ratio of gaps `g` between a sleep uniform in
/// [0.1 s, 1.9 s] and exponential gaps of mean s, the unknown scale s integrated out with
/// the invariant prior ds/s (the most powerful scale-invariant test):
/// uniform: 1.8^-n ∫ s^-n-1 ds over [max/1.9, 10·min] = 1.8^-n ((max/1.9)^-n − (10 min)^-n) / n;
/// exponential: ∫ s^-n-1 e^(-Σg/s) ds = Γ(n) / (Σg)^n.
fn log_lr(g: &[f64]) -> f64 {
    let n = g.len() as f64;
    let (max, min) = g.iter().fold((0.0f64, f64::INFINITY), |(hi, lo), x| (hi.max(*x), lo.min(*x)));
    let (lo, hi) = (max / 1.9, 10.0 * min);
    if lo >= hi {
        return f64::NEG_INFINITY;
    }
    let ln_gamma_n: f64 = (1..g.len()).map(|k| (k as f64).ln()).sum();
    let sum: f64 = g.iter().sum();
    let uniform = -n * 1.8f64.ln() - n * lo.ln() + (1.0 - (lo / hi).powf(n)).ln() - n.ln();
    uniform - (ln_gamma_n - n * sum.ln())
}

#[test]
fn likelihood_ratio_bound_on_timing_alone() {
    // 19 gaps (the 20th check-in): the LR threshold that keeps 95 % of uniform series,
    // and the share of exponential series above it.
    let trials = 200_000;
    let mut rng = SplitMix64(3);
    let mut beacons: Vec<f64> =
        (0..trials).map(|_| log_lr(&(0..19).map(|_| rng.uniform(0.1, 1.9)).collect::<Vec<_>>())).collect();
    beacons.sort_by(f64::total_cmp);
    let cut = beacons[trials / 20];
    let passed = (0..trials).filter(|_| log_lr(&(0..19).map(|_| rng.exp(1.0)).collect::<Vec<_>>()) >= cut).count();
    let rate = 100.0 * passed as f64 / trials as f64;
    eprintln!("scale-free LR test, 19 gaps, 95 % detection: {rate:.2} % of exponential series pass");
    assert!((0.3..1.5).contains(&rate), "{rate}");
}

#[test]
fn the_regular_cv_bound_grows_with_the_sample() {
    let b = super::beacon::regular_cv_bound;
    assert!((b(7) - 0.233).abs() < 0.001 && (b(19) - 0.456).abs() < 0.001, "{} {}", b(7), b(19));
    assert_eq!((b(57), b(63)), (0.6, 0.6));
}

#[test]
fn a_jittered_finding_reports_the_mean_gap_as_its_interval() {
    let cfg = EnhancedConfig::default();
    let sizes = vec![(700, 900); 30];
    let jittered = (0..50u64)
        .filter_map(|seed| {
            let mut rng = SplitMix64(seed);
            let times = times_from_gaps(0.0, 30, || 10.0 * rng.uniform(0.1, 1.9));
            let sc = score_series(&times, &sizes, &cfg)?;
            (sc.pattern == Pattern::Jittered).then_some((times, sc))
        })
        .collect::<Vec<_>>();
    assert!(jittered.len() >= 25, "{} of 50 scored as Jittered", jittered.len());
    for (times, sc) in jittered {
        assert_eq!(sc.interval, (times[29] - times[0]) / 29.0, "{sc:?}");
    }
}
