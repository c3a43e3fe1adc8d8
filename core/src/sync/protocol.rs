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
//!
//! An operation the server cannot accept (outside the device's scope, or
//! one it cannot apply) never stalls the device: the server keeps it in
//! quarantine, counts it as received, and says so in `quarantine`.
//!
//! Devices in the field update late, so the server reads both shapes of a
//! request: the first release's (no `device`) and today's, and answers each
//! in its own shape (`SyncRequest::decode`, `SyncResponse::encode`).

use crate::error::BatchError;
use crate::ids::{CaseId, Dot};
use crate::op::{Op, OP_SCHEMA};
use crate::wire;
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
    /// What the device says of itself; absent from the first release's
    /// requests.
    pub device: Option<DeviceReport>,
}

/// A device's own account, sent with every request: what the server
/// shows supervisors of its health, and how far its own writes go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// The highest of its own counters when it made this request. Writes
    /// to a case up to this counter were made before the device learnt
    /// (from an earlier answer) that the case left its units.
    pub counter: u64,
    /// The application and its version, e.g. `guichet-agent/2.3.1`.
    pub app_version: String,
    /// How its previous sync failed, if it did (never personal data).
    pub last_error: Option<String>,
    /// The scope token of the last answer it applied.
    pub scope: Option<ScopeToken>,
}

/// Where a device stands in taking its scope after the server changed its
/// units: the server hands it the cases of units it was given (their whole
/// history) and withdraws those of units it lost, over as many exchanges
/// as it takes; the device echoes the token of the last answer it applied,
/// so that a lost answer is sent again and nothing is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeToken {
    /// Names the scope (a hash of its units).
    pub scope: u64,
    /// Cases handed over so far, by id; `None` once the scope is complete.
    pub after: Option<i64>,
}

/// Longest `last_error` and `app_version` a device may report.
pub const MAX_REPORT_TEXT: usize = 300;

impl SyncRequest {
    pub fn new(cursor: u64, ops: Vec<Op>, max_ops: u32) -> Self {
        SyncRequest {
            schema: OP_SCHEMA,
            cursor,
            ops,
            max_ops,
            device: None,
        }
    }

    pub fn with_device(mut self, device: DeviceReport) -> Self {
        self.device = Some(device);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        match self.device {
            Some(_) => wire::encode_message(self),
            None => wire::encode_message(&FirstRequest {
                schema: self.schema,
                cursor: self.cursor,
                ops: self.ops.as_slice(),
                max_ops: self.max_ops,
            }),
        }
    }

    /// Reads a request in either shape.
    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, BatchError> {
        wire::decode_message::<SyncRequest>(bytes).or_else(|today| {
            wire::decode_message::<FirstRequest<Vec<Op>>>(bytes)
                .map(|r| SyncRequest {
                    schema: r.schema,
                    cursor: r.cursor,
                    ops: r.ops,
                    max_ops: r.max_ops,
                    device: None,
                })
                .map_err(|_| today)
        })
    }
}

/// The request as the first release sent it.
#[derive(Serialize, Deserialize)]
struct FirstRequest<Ops> {
    schema: u16,
    cursor: u64,
    ops: Ops,
    max_ops: u32,
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
    /// The device's operations held in quarantine; given to devices that
    /// sent a `DeviceReport`, like `scope`.
    pub quarantine: Option<QuarantineReport>,
    /// Where the device stands in taking its scope; it echoes it.
    pub scope: Option<ScopeToken>,
}

/// The device's operations the server keeps but did not apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuarantineReport {
    /// How many are held (not released nor acknowledged by a supervisor).
    pub held: u64,
    /// The most recent of them, at most `MAX_QUARANTINE_LISTED`.
    pub recent: Vec<QuarantinedOp>,
}

pub const MAX_QUARANTINE_LISTED: usize = 20;

/// One operation held in quarantine, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedOp {
    pub dot: Dot,
    pub case: CaseId,
    pub reason: String,
}

impl SyncResponse {
    /// Encodes the answer in the shape of the request it answers: without
    /// `quarantine` and `scope` for a device of the first release.
    pub fn encode(&self) -> Vec<u8> {
        match (&self.quarantine, &self.scope) {
            (Some(_), _) | (_, Some(_)) => wire::encode_message(self),
            (None, None) => wire::encode_message(&FirstResponse {
                schema: self.schema,
                server_id: self.server_id,
                server_time_ms: self.server_time_ms,
                acked: self.acked,
                ops: self.ops.as_slice(),
                cursor: self.cursor,
                more: self.more,
                removed: self.removed.as_slice(),
            }),
        }
    }

    /// Reads an answer in either shape.
    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, BatchError> {
        wire::decode_message::<SyncResponse>(bytes).or_else(|today| {
            wire::decode_message::<FirstResponse<Vec<Op>, Vec<CaseId>>>(bytes)
                .map(|r| SyncResponse {
                    schema: r.schema,
                    server_id: r.server_id,
                    server_time_ms: r.server_time_ms,
                    acked: r.acked,
                    ops: r.ops,
                    cursor: r.cursor,
                    more: r.more,
                    removed: r.removed,
                    quarantine: None,
                    scope: None,
                })
                .map_err(|_| today)
        })
    }
}

/// The answer as the first release read it.
#[derive(Serialize, Deserialize)]
struct FirstResponse<Ops, Removed> {
    schema: u16,
    server_id: i64,
    server_time_ms: u64,
    acked: u64,
    ops: Ops,
    cursor: u64,
    more: bool,
    removed: Removed,
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
