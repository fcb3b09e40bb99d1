//! Unit tests of the beaconing rule as a whole: events in, alerts and usage out.

use super::*;
use crate::flow::{ConnState, EndReason, EventResult, FirstPacket, FlowRecord, SessionStart};

const T0: f64 = 1_699_999_200.0; // an hour boundary (1_699_999_200 = 472_222 h)

struct Feed {
    det: SentinelBeaconing,
    alerts: Vec<Alert>,
    next_id: u64,
}

impl Feed {
    fn new() -> Self {
        Feed { det: SentinelBeaconing::new(10_000), alerts: Vec::new(), next_id: 1 }
    }
    fn start(&mut self, secs: f64, src: &str, dst: &str, dport: Option<u16>) -> (u64, SessionStart) {
        let id = self.next_id;
        self.next_id += 1;
        let s = SessionStart {
            id,
            ts: Timestamp::from_secs_f64(secs),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: Some(50000),
            dport,
            protocol: 6,
            segment: 0,
            first: FirstPacket::default(),
        };
        self.det.on_event(&FlowEvent::Start(s.clone()), &mut self.alerts);
        (id, s)
    }
    fn end(&mut self, s: &SessionStart, bytes: u64) {
        let rec = FlowRecord {
            id: s.id,
            segment: 0,
            start: s.ts,
            end: s.ts.saturating_add(Duration::from_millis(100)),
            src: s.src,
            dst: s.dst,
            sport: s.sport,
            dport: s.dport,
            protocol: 6,
            src_bytes: bytes,
            dst_bytes: 2 * bytes,
            src_packets: 1,
            dst_packets: 1,
            icmp_type: None,
            icmp_code: None,
            vlan: None,
            conn_state: ConnState::SF,
            result: EventResult::Success,
            end_reason: EndReason::Fin,
            src_tcp_flags: 0,
            dst_tcp_flags: 0,
            icmp_errors: 0,
            last_icmp_error: None,
            first: FirstPacket::default(),
            history: Default::default(),
        };
        self.det.on_event(&FlowEvent::End(rec), &mut self.alerts);
    }
    /// A short session: Start and End at once, then capture time moves to its start.
    fn session(&mut self, secs: f64, src: &str, dst: &str, dport: Option<u16>) {
        let (_, s) = self.start(secs, src, dst, dport);
        self.end(&s, 100);
        self.det.on_time(Timestamp::from_secs_f64(secs), &mut self.alerts);
    }
    fn finish(mut self) -> Vec<Alert> {
        self.det.finish(&mut self.alerts);
        self.alerts
    }
}

fn beacon(feed: &mut Feed, n: usize, period: f64, dst: &str) {
    for i in 0..n {
        feed.session(T0 + 5.0 + period * i as f64, "192.0.2.10", dst, Some(443));
    }
}

#[test]
fn seventeen_sessions_give_sixteen_gaps_and_alert() {
    let mut feed = Feed::new();
    beacon(&mut feed, 17, 60.0, "198.51.100.7");
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.name, RULE_NAME);
    assert_eq!(a.dst, Some("198.51.100.7".parse().unwrap()));
    assert_eq!(a.dport, Some(443));
    assert_eq!(a.evidence["TotalEvents"], 16);
    assert_eq!(a.evidence["MostFrequentTimeDeltaCount"], 16);
    assert_eq!(a.evidence["MostFrequentTimeDeltainSeconds"], 60);
    assert_eq!(a.evidence["BeaconPercent"], 100.0);
    // Bytes of the 16 rows that carry a gap (the last row has none).
    assert_eq!(a.evidence["TotalSrcBytes"], 1600);
    assert_eq!(a.evidence["TotalDstBytes"], 3200);
    assert_eq!(a.evidence["WindowStart"], Timestamp::from_secs(T0 as i64).rfc3339());
}

#[test]
fn the_alert_samples_the_sessions_of_its_counted_rows() {
    // A and B interleave: only B's rows (ids 2, 4, 6, ...) carry the kept 55 s gaps.
    let mut feed = Feed::new();
    for i in 0..20 {
        let t = T0 + 5.0 + 60.0 * i as f64;
        feed.session(t, "192.0.2.10", "198.51.100.7", Some(443));
        feed.session(t + 5.0, "192.0.2.10", "203.0.113.8", Some(443));
    }
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1);
    let want: Vec<u64> = (1..=crate::detect::alert::SESSION_SAMPLE as u64).map(|i| 2 * i).collect();
    assert_eq!(alerts[0].sessions, want);
}

#[test]
fn sixteen_sessions_give_only_fifteen_gaps_unless_a_later_row_follows() {
    let mut feed = Feed::new();
    beacon(&mut feed, 16, 60.0, "198.51.100.7");
    assert!(feed.finish().is_empty());
    // Any later row of the same source (another destination) gives the 16th a gap.
    let mut feed = Feed::new();
    beacon(&mut feed, 16, 60.0, "198.51.100.7");
    feed.session(T0 + 5.0 + 16.0 * 60.0, "192.0.2.10", "203.0.113.99", Some(80));
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence["TotalEvents"], 16);
}

#[test]
fn interleaved_destination_steals_the_gaps() {
    // A every 60 s, B 5 s after each A: A's rows get 5 s gaps (dropped), B's get 55 s.
    let mut feed = Feed::new();
    for i in 0..20 {
        let t = T0 + 5.0 + 60.0 * i as f64;
        feed.session(t, "192.0.2.10", "198.51.100.7", Some(443));
        feed.session(t + 5.0, "192.0.2.10", "203.0.113.8", Some(443));
    }
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].dst, Some("203.0.113.8".parse().unwrap()));
    assert_eq!(alerts[0].evidence["MostFrequentTimeDeltainSeconds"], 55);
    assert_eq!(alerts[0].evidence["TotalEvents"], 19);
}

#[test]
fn gaps_of_ten_seconds_or_less_are_dropped() {
    let mut feed = Feed::new();
    beacon(&mut feed, 40, 10.0, "198.51.100.7");
    assert!(feed.finish().is_empty());
    let mut feed = Feed::new();
    beacon(&mut feed, 40, 11.0, "198.51.100.7");
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence["MostFrequentTimeDeltainSeconds"], 11);
}

#[test]
fn gaps_count_second_boundaries_like_datetime_diff() {
    // Starts at x.9 and x.1 alternately, x 60 s apart: the real gaps alternate 59.2 and
    // 60.8 s (rounding would give 59/61 and no beacon), but floor(next) - floor(this)
    // is always 60.
    let mut feed = Feed::new();
    for i in 0..30 {
        let frac = if i % 2 == 0 { 0.9 } else { 0.1 };
        feed.session(T0 + 60.0 * i as f64 + frac, "192.0.2.10", "198.51.100.7", Some(443));
    }
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence["MostFrequentTimeDeltainSeconds"], 60);
    assert_eq!(alerts[0].evidence["MostFrequentTimeDeltaCount"], 29);
}

#[test]
fn private_ipv6_link_local_and_loopback_destinations_are_ignored() {
    for dst in ["10.0.0.5", "172.20.1.1", "192.168.0.1", "169.254.1.1", "127.0.0.5", "2001:db8::5"] {
        let mut feed = Feed::new();
        beacon(&mut feed, 30, 60.0, dst);
        assert!(feed.finish().is_empty(), "{dst}");
    }
}

#[test]
fn hour_waits_for_open_sessions_and_for_the_next_row() {
    let mut feed = Feed::new();
    beacon(&mut feed, 20, 60.0, "198.51.100.7"); // rows until T0+1145
                                                 // A long session starting inside the hour keeps it open past its end.
    let (_, long) = feed.start(T0 + 1200.0, "192.0.2.99", "198.51.100.50", Some(22));
    feed.det.on_time(Timestamp::from_secs_f64(T0 + 4000.0), &mut feed.alerts);
    assert!(feed.alerts.is_empty(), "hour must wait for the open session");
    feed.end(&long, 10);
    feed.det.on_time(Timestamp::from_secs_f64(T0 + 4001.0), &mut feed.alerts);
    // The last beacon row still needs its source's next row: only 19 gaps are certain,
    // and the 20th could still change the answer's numbers.
    assert!(feed.alerts.is_empty(), "last row's gap is not known yet");
    feed.session(T0 + 7200.0, "192.0.2.10", "203.0.113.99", Some(80));
    assert_eq!(feed.alerts.len(), 1);
    assert_eq!(feed.alerts[0].evidence["TotalEvents"], 20);
    assert_eq!(feed.alerts[0].time, Timestamp::from_secs(T0 as i64 + 3600));
    assert_eq!(feed.det.usage().series(), 1, "evaluated rows are released");
    assert!(feed.finish().len() == 1);
}

#[test]
fn quiet_source_is_decided_early_when_it_cannot_alert() {
    let mut feed = Feed::new();
    beacon(&mut feed, 5, 60.0, "198.51.100.7");
    feed.det.on_time(Timestamp::from_secs_f64(T0 + 3700.0), &mut feed.alerts);
    assert_eq!(feed.det.usage().series(), 0);
    assert!(feed.finish().is_empty());
}

#[test]
fn row_cap_counts_dropped_rows() {
    let mut feed = Feed::new();
    feed.det = SentinelBeaconing::new(3);
    beacon(&mut feed, 5, 60.0, "198.51.100.7");
    assert_eq!(feed.det.usage().series(), 3);
    assert_eq!(feed.det.usage().evictions(), 2);
}

#[test]
fn flood_of_one_row_sources_does_not_push_out_a_beacon() {
    let mut feed = Feed::new();
    feed.det = SentinelBeaconing::new(100);
    let mut spoofed = 0u32;
    for i in 0..20 {
        let t = T0 + 5.0 + 60.0 * i as f64;
        feed.session(t, "192.0.2.10", "198.51.100.7", Some(443));
        for j in 0..50 {
            spoofed += 1;
            feed.session(t + 1.0 + j as f64 * 0.01, &format!("2001:db8::{spoofed:x}"), "203.0.113.9", Some(80));
        }
    }
    let usage = feed.det.usage();
    assert!(usage.series() <= 100, "row cap holds: {usage:?}");
    assert!(usage.evictions() >= 900, "flood rows evicted and counted: {usage:?}");
    let alerts = feed.finish();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].src, "192.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!(alerts[0].evidence["TotalEvents"], 19);
}

#[test]
fn eviction_takes_fewest_rows_then_lowest_address_skipping_stale_entries() {
    let mut feed = Feed::new();
    feed.det = SentinelBeaconing::new(4); // evicts one row's worth at a time
    let mut secs = T0 + 5.0;
    let mut row = |feed: &mut Feed, src: &str| {
        secs += 1.0;
        feed.session(secs, src, "198.51.100.7", Some(443));
    };
    let held = |feed: &Feed, src: &str| feed.det.sources.get(&src.parse::<IpAddr>().unwrap()).map(|s| s.count);
    // .5 grows to 2 rows: its entry for 1 row goes stale and is the lowest of that count.
    for src in ["192.0.2.5", "192.0.2.5", "192.0.2.20", "192.0.2.10"] {
        row(&mut feed, src);
    }
    row(&mut feed, "192.0.2.40"); // full: the one-row source with the lowest address goes
    assert_eq!((held(&feed, "192.0.2.10"), held(&feed, "192.0.2.5")), (None, Some(2)));
    assert_eq!(feed.det.usage().evictions(), 1);
    row(&mut feed, "192.0.2.5"); // may evict sources of up to 3 rows: .20 is the smallest
    assert_eq!(
        (held(&feed, "192.0.2.20"), held(&feed, "192.0.2.40"), held(&feed, "192.0.2.5")),
        (None, Some(1), Some(3))
    );
    // .40 may only evict sources of up to 2 rows: itself and .5's stale entry do not count.
    row(&mut feed, "192.0.2.40");
    assert_eq!((held(&feed, "192.0.2.40"), held(&feed, "192.0.2.5")), (Some(1), Some(3)));
    assert_eq!(feed.det.usage().evictions(), 3, "two evicted rows and one dropped row");
    row(&mut feed, "192.0.2.60"); // .40 kept its place in the eviction order
    assert_eq!((held(&feed, "192.0.2.40"), held(&feed, "192.0.2.60")), (None, Some(1)));
    assert_eq!(feed.det.usage().series(), 4);
    assert_eq!(feed.det.usage().evictions(), 4);
}

#[test]
fn many_rows_then_release_back_to_few_keeps_the_answer() {
    // 40 rows in the first hour (map storage), 3 in the next (back to a small Vec).
    let mut feed = Feed::new();
    beacon(&mut feed, 40, 60.0, "198.51.100.7");
    for i in 0..3 {
        feed.session(T0 + 3600.0 + 100.0 * i as f64, "192.0.2.10", "198.51.100.7", Some(443));
    }
    assert_eq!(feed.det.usage().series(), 3, "first hour released");
    feed.det.finish(&mut feed.alerts);
    assert_eq!(feed.det.usage().series(), 0, "every row released at the end");
    assert_eq!(feed.det.usage().sources(), 0);
    assert_eq!(feed.alerts.len(), 1);
    assert_eq!(feed.alerts[0].evidence["TotalEvents"], 40);
}

#[test]
fn alerts_of_one_sweep_come_in_source_string_order() {
    // "192.0.2.10" < "192.0.2.9" < "203.0.113.1" as strings; sources are evaluated in hash
    // order, so the sweep must order its alerts.
    let sources = ["203.0.113.1", "192.0.2.9", "192.0.2.10"];
    let want: Vec<IpAddr> = ["192.0.2.10", "192.0.2.9", "203.0.113.1"].iter().map(|s| s.parse().unwrap()).collect();
    // Decided by the horizon (a row of each in the next hour, then capture time moves on)...
    let mut feed = Feed::new();
    for i in 0..17 {
        for src in sources {
            feed.session(T0 + 5.0 + 60.0 * i as f64, src, "198.51.100.7", Some(443));
        }
    }
    for src in sources {
        let (_, s) = feed.start(T0 + 3600.0 + 5.0, src, "198.51.100.7", Some(443));
        feed.end(&s, 100);
    }
    assert!(feed.alerts.is_empty());
    feed.det.on_time(Timestamp::from_secs_f64(T0 + 3700.0), &mut feed.alerts);
    assert_eq!(feed.alerts.iter().map(|a| a.src).collect::<Vec<_>>(), want);
    // ... and at the end of input.
    let mut feed = Feed::new();
    for i in 0..17 {
        for src in sources {
            feed.session(T0 + 5.0 + 60.0 * i as f64, src, "198.51.100.7", Some(443));
        }
    }
    assert!(feed.alerts.is_empty());
    let alerts = feed.finish();
    assert_eq!(alerts.iter().map(|a| a.src).collect::<Vec<_>>(), want);
}

#[test]
fn evictions_after_the_buffer_drained_and_refilled_use_current_counts() {
    // The eviction order is dropped once the buffer is far below the cap and rebuilt at
    // the next eviction: the rebuilt order must see every source's current row count.
    let mut feed = Feed::new();
    feed.det = SentinelBeaconing::new(8);
    let held = |feed: &Feed, src: &str| feed.det.sources.get(&src.parse::<IpAddr>().unwrap()).map(|s| s.count);
    // Hour 0: fill the buffer, evicting; hour 1 releases hour 0 (the buffer drains).
    for i in 0..10 {
        feed.session(T0 + 5.0 + i as f64, &format!("192.0.2.{}", 100 + i), "198.51.100.7", Some(443));
    }
    assert!(feed.det.usage().evictions() > 0);
    for (k, src) in ["192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
        feed.session(T0 + 3600.0 + 5.0 + k as f64, src, "198.51.100.7", Some(443));
    }
    feed.det.on_time(Timestamp::from_secs_f64(T0 + 3600.0 + 20.0), &mut feed.alerts);
    assert_eq!(feed.det.usage().series(), 6, "hour 0 released");
    // Refill to the cap: .4 and .5 with one row each; the next row evicts one-row sources
    // only, lowest address first: .3, .4 and .5 (8 / 8 = one row is enough: .3 alone).
    feed.session(T0 + 3600.0 + 30.0, "192.0.2.4", "198.51.100.7", Some(443));
    feed.session(T0 + 3600.0 + 31.0, "192.0.2.5", "198.51.100.7", Some(443));
    let before = feed.det.usage().evictions();
    feed.session(T0 + 3600.0 + 32.0, "192.0.2.6", "198.51.100.7", Some(443));
    assert_eq!(feed.det.usage().evictions(), before + 1);
    assert_eq!(
        (held(&feed, "192.0.2.1"), held(&feed, "192.0.2.2"), held(&feed, "192.0.2.3"), held(&feed, "192.0.2.4")),
        (Some(3), Some(2), None, Some(1))
    );
}
