//! guichet-core: the offline case store every Guichet replica runs (tablets,
//! the sync server, the USSD gateway).
//!
//! - [`model`]: what a case is, and its status workflow;
//! - [`Store`]: one SQLite file per replica; local edits go through
//!   [`Store::write`], peers' operations through [`Store::apply`];
//! - [`merge`]: the merge rule, in one place;
//! - [`wire`]: the compact, versioned sync format;
//! - [`reference`]: keypad-friendly references with a check digit.

pub mod error;
pub mod hlc;
pub mod ids;
pub mod merge;
pub mod model;
pub mod op;
pub mod privacy;
pub mod reference;
mod store;
pub mod sync;
pub mod wire;

pub use error::{BatchError, Error, Result};
pub use hlc::Stamp;
pub use ids::{CaseId, Dot, ReplicaId, VersionVector};
pub use model::{
    Case, CaseDetail, Channel, ConflictValue, EventKind, Field, FieldConflict, NewCase, Priority,
    Status, StatusAnomaly, TimelineEntry, TimelineWhat, Value,
};
pub use op::{FieldWrite, Op, OpBody};
pub use store::{
    system_clock, ApplyOutcome, BatchLimit, CaseHistory, CaseQuery, Clock, HistoryReader,
    PeerChanges, QuarantineEntry, QuarantineState, ReleaseOutcome, Scope, ServeTimes, Store,
    SyncOutcome, SyncStatus, Touched, Writer,
};
pub use wire::Batch;
