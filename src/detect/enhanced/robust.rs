//! Robust statistics for beacon scoring: quantiles, median, MAD and Bowley's quartile
//! skewness. Robust because a C2 beacon's gaps contain outliers (missed check-ins,
//! sleeps changed by the operator) that must not hide the regular majority.

/// Quantile `q` (0..=1) of already sorted data, linear interpolation (R type 7).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Summary of a sample used by the scorers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    /// Median absolute deviation from the median.
    pub mad: f64,
    /// Bowley skewness (Q1 + Q3 − 2·median) / (Q3 − Q1), 0 when Q3 == Q1.
    pub bowley: f64,
    pub mean: f64,
}

pub fn summarize(values: &[f64]) -> Summary {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let q1 = quantile_sorted(&v, 0.25);
    let median = quantile_sorted(&v, 0.5);
    let q3 = quantile_sorted(&v, 0.75);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = quantile_sorted(&dev, 0.5);
    let iqr = q3 - q1;
    let bowley = if iqr > f64::EPSILON * median.abs().max(1.0) {
        ((q1 + q3 - 2.0 * median) / iqr).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let mean = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    Summary { q1, median, q3, mad, bowley, mean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_mad_and_skew() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!(s.median, 3.0);
        assert_eq!(s.q1, 2.0);
        assert_eq!(s.q3, 4.0);
        assert_eq!(s.mad, 1.0);
        assert_eq!(s.bowley, 0.0);
        let right = summarize(&[1.0, 1.0, 1.0, 2.0, 10.0, 20.0, 30.0]);
        assert!(right.bowley > 0.5, "{right:?}");
        let flat = summarize(&[60.0; 9]);
        assert_eq!((flat.mad, flat.bowley), (0.0, 0.0));
    }
}
