//! Fuzzes the whole chain from raw frames: MemorySource → decode → FlowTable →
//! DetectorSet, with hostile timestamps (backwards, years ahead, zero) and a tiny flow
//! table so eviction paths run. Checks Start/End pairing and the counters.
#![no_main]

mod common;

use flowsentry::capture::MemorySource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let link = common::link_from(first);
    let max_flows = 1 + usize::from(first >> 3);
    let mut source = MemorySource::new(link, common::frames(rest));
    common::run_pipeline(&mut source, max_flows);
});
