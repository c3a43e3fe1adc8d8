//! The sync protocol between a device and the sync server: one request and
//! one response type, framed like every wire message (see [`crate::wire`]).
//!
//! A device sends its own operations the server lacks (bounded) and the
//! server position it has received everything up to (its cursor); the
//! server answers with how many of the device's operations it now holds,
//! the next operations in the device's scope, the new cursor, whether more
//! are waiting, and the cases that left the device's scope. Each exchange
//! is atomic at both ends, so a cut at any point loses nothing and resends
//! nothing that already landed.

use crate::ids::CaseId;
use crate::op::{Op, OP_SCHEMA};
use serde::{Deserialize, Serialize};

pub const SYNC_PATH: &str = "/v1/sync";
pub const CONTENT_TYPE: &str = "application/x-guichet-sync";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub schema: u16,
    /// The device holds everything of its scope up to this server position.
    pub cursor: u64,
    /// Operations authored by the device that the server lacks, in order.
    pub ops: Vec<Op>,
    /// How many operations the device takes in the answer.
    pub max_ops: u32,
}

impl SyncRequest {
    pub fn new(cursor: u64, ops: Vec<Op>, max_ops: u32) -> Self {
        SyncRequest {
            schema: OP_SCHEMA,
            cursor,
            ops,
            max_ops,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub schema: u16,
    /// The server store's id: a device whose position was given by another
    /// server must start over.
    pub server_id: i64,
    /// The server's clock, so a device can correct its own.
    pub server_time_ms: u64,
    /// The highest of the device's own counters the server holds.
    pub acked: u64,
    /// Operations of the device's scope, each after what it depends on.
    pub ops: Vec<Op>,
    pub cursor: u64,
    pub more: bool,
    /// Cases that moved out of the device's scope.
    pub removed: Vec<CaseId>,
}

/// Where the gateway reports how its USSD sessions ended, for the
/// abandonment figures. Intake devices only.
pub const USSD_SESSIONS_PATH: &str = "/v1/ussd-sessions";

/// How one USSD session ended. No phone number: figures need none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UssdSessionReport {
    /// The gateway's own number for the session; with the gateway's
    /// replica it makes a report idempotent.
    pub id: u64,
    /// `completed`, `abandoned` (hung up, dropped, or expired) or `failed`.
    pub outcome: String,
    /// The flow the caller was in when it ended (`new_request`, `track`...).
    pub flow: String,
    pub language: Option<String>,
    /// The service chosen, once the caller got that far in a new request.
    pub service: Option<String>,
    /// The unit serving the chosen locality, once known.
    pub unit: Option<String>,
    pub ended_ms: u64,
}

impl UssdSessionReport {
    /// Reads a report from a row selecting, in this order: id, outcome,
    /// flow, language, service, unit and when it ended (ms). The gateway
    /// and the sync server each keep reports in a table of their own.
    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UssdSessionReport> {
        Ok(UssdSessionReport {
            id: r.get::<_, i64>(0)? as u64,
            outcome: r.get(1)?,
            flow: r.get(2)?,
            language: r.get(3)?,
            service: r.get(4)?,
            unit: r.get(5)?,
            ended_ms: r.get::<_, i64>(6)? as u64,
        })
    }
}

/// Framed like every wire message: the schema first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UssdSessionReports {
    pub schema: u16,
    pub sessions: Vec<UssdSessionReport>,
}

impl UssdSessionReports {
    pub fn new(sessions: Vec<UssdSessionReport>) -> Self {
        UssdSessionReports {
            schema: OP_SCHEMA,
            sessions,
        }
    }
}

/// The answer: every report up to this id is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UssdSessionsStored {
    pub schema: u16,
    pub up_to: u64,
}

impl UssdSessionsStored {
    pub fn new(up_to: u64) -> Self {
        UssdSessionsStored {
            schema: OP_SCHEMA,
            up_to,
        }
    }
}
