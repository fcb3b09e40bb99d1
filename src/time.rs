//! Capture time. Every clock in flowsentry is packet time: a [`Timestamp`] taken from
//! the capture, never from the wall clock, so replays are deterministic.

use std::fmt;

/// Nanoseconds since the Unix epoch (UTC), as read from a packet header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(NANOS_PER_SEC))
    }
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs * NANOS_PER_SEC as f64).round() as i64)
    }
    pub fn from_sec_nsec(sec: i64, nsec: i64) -> Self {
        Timestamp(sec.saturating_mul(NANOS_PER_SEC).saturating_add(nsec))
    }
    pub fn from_sec_usec(sec: i64, usec: i64) -> Self {
        Self::from_sec_nsec(sec, usec.saturating_mul(1000))
    }
    /// Whole seconds, floored (so -0.5 s is second -1), as Kusto's bin() and datetime_diff do.
    pub fn floor_secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// Start of the `width`-wide bin holding this instant (floor-aligned to the epoch, UTC).
    pub fn bin_start(self, width: Duration) -> Timestamp {
        let w = width.0.max(1);
        Timestamp(self.0.div_euclid(w) * w)
    }
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }
    /// `self - earlier`, never negative.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0).max(0))
    }
    /// RFC 3339 UTC with microsecond precision, e.g. `2024-05-01T12:00:00.123456Z`.
    pub fn rfc3339(self) -> String {
        let mut s = String::with_capacity(27);
        self.write_rfc3339(&mut s);
        s
    }
    pub fn write_rfc3339(self, out: &mut String) {
        use std::fmt::Write;
        let secs = self.floor_secs();
        let micros = self.0.rem_euclid(NANOS_PER_SEC) / 1000;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            y,
            m,
            d,
            sod / 3600,
            (sod / 60) % 60,
            sod % 60,
            micros
        );
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// A span of capture time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    pub fn from_secs(s: i64) -> Self {
        Duration(s.saturating_mul(NANOS_PER_SEC))
    }
    pub fn from_secs_f64(s: f64) -> Self {
        Duration((s * NANOS_PER_SEC as f64).round() as i64)
    }
    pub fn from_millis(ms: i64) -> Self {
        Duration(ms.saturating_mul(1_000_000))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00.000000Z");
        let t = Timestamp::from_sec_usec(1_700_000_000, 123_456);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            Timestamp::from_sec_nsec(951_782_400, 999).rfc3339(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(Timestamp(-1).rfc3339(), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn bins_floor_like_kusto() {
        let five = Duration::from_secs(300);
        assert_eq!(Timestamp::from_secs(299).bin_start(five), Timestamp(0));
        assert_eq!(
            Timestamp::from_secs(300).bin_start(five),
            Timestamp::from_secs(300)
        );
        assert_eq!(Timestamp(-1).bin_start(five), Timestamp::from_secs(-300));
        assert_eq!(Timestamp(-1).floor_secs(), -1);
    }
}
