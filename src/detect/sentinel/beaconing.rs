//! placeholder
use crate::detect::Detector;
pub struct SentinelBeaconing;
impl SentinelBeaconing {
    pub fn new(_m: usize) -> Self {
        SentinelBeaconing
    }
}
impl Detector for SentinelBeaconing {
    fn on_event(&mut self, _e: &crate::flow::FlowEvent, _a: &mut Vec<crate::detect::Alert>) {}
    fn on_time(&mut self, _n: crate::time::Timestamp, _a: &mut Vec<crate::detect::Alert>) {}
    fn finish(&mut self, _a: &mut Vec<crate::detect::Alert>) {}
}
