//! Output: JSON Lines writers for ASIM NetworkSession records and alerts, the sinks they
//! go to (stdout or files that can be reopened for logrotate), readable alert lines for
//! a terminal, the guard that refuses outputs which would overwrite evidence, and the
//! fast text of numbers, addresses and times the record writer uses.

pub mod alert_text;
pub mod community_id;
pub mod guard;
pub mod records;
pub mod schema;
pub mod session_id;
pub mod sink;
pub mod text;
