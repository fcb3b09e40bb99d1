//! Heavily jittered beacons: check-ins whose sleep is drawn uniformly from a wide
//! range, e.g. [0.1 P, 1.9 P] (Empire's and Cobalt Strike's jitter settings near 90 %).
//! Their gaps are too irregular for the gap-regularity score (MAD/median ≈ 0.45), so
//! this scorer looks at what such a beacon still cannot hide, after RITA's histogram
//! and duration scores:
//!
//! - **persistence**: cut the series' span into bins two mean gaps wide: a beacon whose
//!   sleep never exceeds twice its mean has a check-in in (nearly) every bin, while
//!   Poisson-timed visits leave about one bin in seven empty and bursty browsing most;
//! - **bounded gap range**: uniform jitter is bounded, so the longest gap stays near 1.8
//!   mean gaps and within ~19 shortest gaps, where 19 exponential gaps reach 3–5 mean
//!   gaps and their shortest is a small fraction of the mean;
//! - **dispersion**: the gaps' coefficient of variation is ~0.52 for uniform ±90 %
//!   jitter and ~1 for Poisson, more for human or bursty activity;
//! - **size consistency** both ways: the same check-in and the same (empty) tasking
//!   reply every time. This path needs it (within ~12 %; ~5 % for the looser
//!   bounded-sleep cut, see [`score`]); regular timing alone does not.
//!
//! It needs more check-ins than the regular path (`beacon_jitter_min_connections`, 20)
//! because telling a bounded uniform sleep from a memoryless one takes about that many
//! gaps. Measured on 4000 seeded simulated series each (tests_jitter.rs): a ±90 %
//! jittered beacon (P 10–600 s) is found by its 20th check-in in 95.2 % of trials, by its
//! 25th in 98.3 %, its 30th in 99.2 %, its 40th in 99.8 % (81.0 / 91.6 / 95.8 / 99.0 %
//! before the bounded-sleep cut); Poisson-timed visits with web-like sizes alert in 1 of
//! 4000 series (regular path) and bursty browsing never. Poisson visits whose request
//! *and* reply sizes never change are the residual: 52 of 4000 series (1.3 %) alert.
//! There only timing separates the two, and 19 gaps carry too little evidence for much
//! better: the most powerful scale-free test for exactly [0.1 P, 1.9 P] against
//! exponential gaps (likelihood ratio with the scale integrated out) passes 0.66 % of
//! exponential series at 95 % detection with 19 gaps.

use super::config::EnhancedConfig;
use super::robust::summarize;

/// Timing and size evidence of the jittered-beacon path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jittered {
    /// Overall score (0..1), comparable with the regular path's.
    pub score: f64,
    /// Timing sub-score (persistence × bounded range × dispersion).
    pub timing: f64,
    /// Size consistency of the worse direction (0..1).
    pub sizes: f64,
}

/// Shape of a series' gaps, computed for every scored series (also reported).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GapShape {
    /// Mean gap (span / gaps).
    pub mean: f64,
    /// Coefficient of variation of the gaps.
    pub cv: f64,
    /// Longest gap over the mean gap.
    pub max_ratio: f64,
    /// Range of the gaps (longest minus shortest) over the mean gap.
    pub range_ratio: f64,
    /// Longest gap over the shortest (infinite when the shortest is 0).
    pub spread: f64,
    /// Share of the bins (two mean gaps wide) across the span that hold a check-in.
    pub persistence: f64,
}

/// Gap shape of sorted start `times` (at least two).
pub fn gap_shape(times: &[f64], gaps: &[f64]) -> GapShape {
    let span = times[times.len() - 1] - times[0];
    let mean = (span / gaps.len() as f64).max(f64::MIN_POSITIVE);
    let var = gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / gaps.len() as f64;
    let max = gaps.iter().copied().fold(0.0, f64::max);
    let min = gaps.iter().copied().fold(f64::INFINITY, f64::min).min(max);
    let width = 2.0 * mean;
    let bins = ((span / width).ceil() as usize).max(1);
    let (mut occupied, mut last_bin) = (0usize, usize::MAX);
    for t in times {
        let bin = (((t - times[0]) / width) as usize).min(bins - 1);
        if bin != last_bin {
            occupied += 1;
            last_bin = bin;
        }
    }
    GapShape {
        mean,
        cv: var.sqrt() / mean,
        max_ratio: max / mean,
        range_ratio: (max - min) / mean,
        spread: if min > 0.0 { max / min } else { f64::INFINITY },
        persistence: occupied as f64 / bins as f64,
    }
}

/// 1 at or below `good`, 0 at or above `bad`, linear between.
fn falling(x: f64, good: f64, bad: f64) -> f64 {
    ((bad - x) / (bad - good)).clamp(0.0, 1.0)
}

/// 0 at or below `bad`, 1 at or above `good`, linear between.
fn rising(x: f64, bad: f64, good: f64) -> f64 {
    ((x - bad) / (good - bad)).clamp(0.0, 1.0)
}

/// How much a list of sizes varies: median absolute deviation over the median.
pub fn size_dispersion(sizes: &[f64]) -> f64 {
    let s = summarize(sizes);
    if s.median > 0.0 {
        s.mad / s.median
    } else {
        0.0
    }
}

/// How consistent a list of sizes is: 1 when the median absolute deviation is 0, 0 when
/// it reaches half the median.
pub fn size_consistency(sizes: &[f64]) -> f64 {
    (1.0 - size_dispersion(sizes) / 0.5).clamp(0.0, 1.0)
}

/// Where the timing sub-score starts to fall (1 below) and how far it falls to 0.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    /// Range of the gaps over their mean.
    range: f64,
    /// Longest gap over the mean.
    max: f64,
    /// Coefficient of variation of the gaps.
    cv: f64,
    /// Widening of `range` and `max` per gap beyond 19 (at most 40 gaps' worth).
    widen: f64,
}

/// The bounds used by [`score`] (see its documentation and tests_insession.rs for the
/// rates they give).
const BOUNDS: Bounds = Bounds { range: 1.8, max: 2.0, cv: 0.62, widen: 0.015 };

/// Where the bounded-sleep cuts lie: each criterion scores 1 at `good` and 0.8 (the
/// default alert threshold) at `cut`, linearly on either side.
#[derive(Clone, Copy, Debug)]
struct Cut {
    good: f64,
    cut: f64,
}

impl Cut {
    fn at(self, x: f64) -> f64 {
        (1.0 - 0.2 * (x - self.good) / (self.cut - self.good)).clamp(0.0, 1.0)
    }
}

/// The bounded-sleep cuts: longest gap within 2.25 mean gaps and 18 shortest gaps, CV
/// within 0.75, a check-in in at least 80 % of the bins, sizes within ~5 % both ways.
const MAX_GAP: Cut = Cut { good: 1.9, cut: 2.25 };
const SPREAD: Cut = Cut { good: 10.0, cut: 18.0 };
const CV: Cut = Cut { good: 0.55, cut: 0.75 };
const EMPTY_BINS: Cut = Cut { good: 0.0, cut: 0.2 };
const SIZES_BOUNDED: Cut = Cut { good: 0.0, cut: 0.05 };
/// The general path's size cut: sizes within ~12 % both ways.
const SIZES_GENERAL: Cut = Cut { good: 0.0, cut: 0.12 };

/// Scores a series on the jittered path; `None` when it is not eligible (too few
/// check-ins, or fewer than three with sizes). The score is the better of two cuts, both
/// of which need consistent sizes in *both* directions (median absolute deviation over
/// the median), so replies that vary like web content never pass:
///
/// - **general**: between bounded (uniform) and memoryless (exponential) gaps with
///   unknown scale the likelihood ratio is `(e · mean / (max − min))^n` for the
///   best-fitting uniform range: the evidence is the gaps' *range over their mean*, small
///   for a bounded sleep (uniform ±90 % jitter: 1.8 × (n−1)/(n+1), ≈ 1.6 at 19 gaps) and
///   growing like ln n for Poisson timing (≈ 3.5 at 19 gaps). The timing score is 1
///   while the range stays within 1.8 mean gaps, the longest gap within 2.0 and the
///   coefficient of variation within 0.62, and falls to 0 over the next 0.25 (range,
///   longest gap) and 0.1 (CV); it also needs the series present in at least 95 % of its
///   bins (persistence, RITA's histogram idea). The range and longest-gap bounds widen
///   by 0.015 per gap beyond 19 (at most 40). Capped by sizes: 0.8 at 12 % dispersion.
/// - **bounded sleep**, for sizes within ~5 %: the longest gap within 2.25 mean gaps and
///   18 shortest gaps, CV within 0.75, persistence at least 0.8. Each criterion (and the
///   size dispersion) scores 1 at a comfortable value and 0.8 at its cut; the score is
///   the lowest. Looser on timing than the general cut (a sample of 19 uniform gaps
///   often has a mean off by 10–20 %, which moves the range and longest gap over it),
///   so it asks more of the sizes.
pub fn score(shape: &GapShape, gaps: usize, bytes: &[(u64, u64)], cfg: &EnhancedConfig) -> Option<Jittered> {
    let b = BOUNDS;
    let min = cfg.beacon_jitter_min_connections;
    if min == 0 || gaps + 1 < min || bytes.len() < 3 {
        return None;
    }
    let up: Vec<f64> = bytes.iter().map(|b| b.0 as f64).collect();
    let down: Vec<f64> = bytes.iter().map(|b| b.1 as f64).collect();
    let sizes = size_consistency(&up).min(size_consistency(&down));
    let dispersion = size_dispersion(&up).max(size_dispersion(&down));
    let extra = b.widen * gaps.saturating_sub(19).min(40) as f64;
    let (range_ok, max_ok) = (b.range + extra, b.max + extra);
    let timing = rising(shape.persistence, 0.75, 0.95)
        * falling(shape.range_ratio, range_ok, range_ok + 0.25)
        * falling(shape.max_ratio, max_ok, max_ok + 0.25)
        * falling(shape.cv, b.cv, b.cv + 0.1);
    let general = Jittered { score: timing.min(SIZES_GENERAL.at(dispersion)), timing, sizes };
    let bounded_timing = MAX_GAP
        .at(shape.max_ratio)
        .min(SPREAD.at(shape.spread))
        .min(CV.at(shape.cv))
        .min(EMPTY_BINS.at(1.0 - shape.persistence));
    let bounded = Jittered { score: bounded_timing.min(SIZES_BOUNDED.at(dispersion)), timing: bounded_timing, sizes };
    Some(if bounded.score > general.score { bounded } else { general })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(times: &[f64]) -> GapShape {
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        gap_shape(times, &gaps)
    }

    #[test]
    fn persistence_counts_bins_two_mean_gaps_wide() {
        let steady: Vec<f64> = (0..21).map(|i| i as f64 * 10.0).collect();
        let s = shape_of(&steady);
        assert_eq!((s.mean, s.cv, s.max_ratio, s.range_ratio, s.persistence), (10.0, 0.0, 1.0, 0.0, 1.0));
        assert_eq!(s.spread, 1.0);
        // Two bursts at both ends of the span: the bins in between are empty.
        let mut bursts: Vec<f64> = (0..10).map(|i| i as f64).collect();
        bursts.extend((0..10).map(|i| 190.0 + i as f64));
        let b = shape_of(&bursts);
        assert!(b.persistence < 0.25 && b.max_ratio > 10.0, "{b:?}");
    }

    #[test]
    fn needs_enough_check_ins_and_sizes() {
        let cfg = EnhancedConfig::default();
        let shape = shape_of(&(0..30).map(|i| i as f64 * 10.0).collect::<Vec<_>>());
        let sizes = vec![(300, 40); 30];
        assert!(score(&shape, 18, &sizes, &cfg).is_none(), "19 check-ins");
        assert!(score(&shape, 29, &sizes[..2], &cfg).is_none(), "two sizes");
        let j = score(&shape, 29, &sizes, &cfg).unwrap();
        assert_eq!((j.timing, j.sizes, j.score), (1.0, 1.0, 1.0));
        let off = EnhancedConfig { beacon_jitter_min_connections: 0, ..EnhancedConfig::default() };
        assert!(score(&shape, 29, &sizes, &off).is_none());
        // Replies that vary wildly: the sizes fail the path even with perfect timing.
        let varied: Vec<(u64, u64)> = (0..30).map(|i| (300, 500 + (i * 7919 % 60_000))).collect();
        assert!(score(&shape, 29, &varied, &cfg).unwrap().score < 0.8);
    }

    #[test]
    fn bounded_sleep_cut_needs_every_criterion_and_sizes_within_5_percent() {
        let cfg = EnhancedConfig::default();
        // A sample of uniform ±90 % gaps whose mean came out low: longest gap 2.15 mean
        // gaps, out of the general cut's reach, inside the bounded-sleep cut.
        let shape =
            GapShape { mean: 10.0, cv: 0.65, max_ratio: 2.15, range_ratio: 2.0, spread: 14.3, persistence: 0.9 };
        let constant = vec![(300, 40); 20];
        let j = score(&shape, 19, &constant, &cfg).unwrap();
        assert!((j.score - 0.857).abs() < 0.001 && j.timing == j.score, "{j:?}");
        // Sizes 8 % apart: too loose for this cut, and the general cut fails on timing.
        let loose: Vec<(u64, u64)> = (0..20).map(|i| (if i % 2 == 0 { 276 } else { 324 }, 40)).collect();
        assert!(score(&shape, 19, &loose, &cfg).unwrap().score < 0.8);
        // Each criterion past its cut fails the series.
        for worse in [
            GapShape { max_ratio: 2.3, ..shape },
            GapShape { spread: 19.0, ..shape },
            GapShape { cv: 0.78, ..shape },
            GapShape { persistence: 0.75, ..shape },
        ] {
            assert!(score(&worse, 19, &constant, &cfg).unwrap().score < 0.8, "{worse:?}");
        }
        // Just inside every cut: passes.
        let edge = GapShape { max_ratio: 2.24, spread: 17.9, cv: 0.74, persistence: 0.81, ..shape };
        assert!(score(&edge, 19, &constant, &cfg).unwrap().score >= 0.8);
    }

    #[test]
    fn general_cut_needs_sizes_within_12_percent() {
        let cfg = EnhancedConfig::default();
        let shape = shape_of(&(0..30).map(|i| i as f64 * 10.0).collect::<Vec<_>>());
        let spread = |d: u64| -> Vec<(u64, u64)> {
            (0..30).map(|i| (300, if i % 2 == 0 { 1000 - d } else { 1000 + d })).collect()
        };
        assert!(score(&shape, 29, &spread(110), &cfg).unwrap().score >= 0.8, "11 %");
        assert!(score(&shape, 29, &spread(130), &cfg).unwrap().score < 0.8, "13 %");
    }
}
