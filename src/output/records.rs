//! ASIM NetworkSession (schema 0.2.x) JSON records, formatted straight into a byte
//! buffer (no intermediate JSON tree).

use crate::flow::FlowRecord;
use crate::net::NetSet;

/// What a record needs beyond the flow itself.
#[derive(Clone, Debug)]
pub struct RecordContext {
    /// `Dvc`: the sensor's name (hostname by default).
    pub dvc: String,
    /// Drives `NetworkDirection`.
    pub home_net: NetSet,
}

/// Appends one record as a JSON object followed by `\n`.
pub fn write_record(rec: &FlowRecord, ctx: &RecordContext, out: &mut Vec<u8>) {
    let _ = (rec, ctx, out);
}
