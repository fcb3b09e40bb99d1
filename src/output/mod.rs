//! Output: JSON Lines writers for ASIM NetworkSession records and alerts, and the
//! sinks they go to (stdout or files that can be reopened for logrotate).

pub mod community_id;
pub mod records;
pub mod schema;
pub mod session_id;
pub mod sink;
