//! Errors of the core. Every failure is a value; nothing here panics on bad
//! input, whether it comes from a user, a peer or a damaged file.

use crate::ids::{Dot, ReplicaId};
use crate::model::Status;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("invalid reference: {0}")]
    InvalidReference(String),

    #[error("not found: {0}")]
    NotFound(String),

    #[error("a case cannot go from {from} to {to}")]
    InvalidTransition { from: Status, to: Status },

    /// The file exists but cannot be used. It is left exactly as it was:
    /// it may hold the only copy of unsynced work.
    #[error("cannot open the store at {path}: {reason}. The file was kept untouched")]
    CannotOpen { path: PathBuf, reason: String },

    /// Data inside an otherwise readable store is damaged.
    #[error("the store holds damaged data ({0}). The file was kept untouched")]
    Damaged(String),

    #[error("this store belongs to replica {found}, not {expected}")]
    WrongReplica {
        expected: ReplicaId,
        found: ReplicaId,
    },

    /// Another server answers at this address (restored or replaced): the
    /// device's position was reset and the exchange must start over.
    #[error("the sync server changed; starting over with it")]
    ServerChanged,

    #[error("rejected batch, nothing applied: {0}")]
    Batch(#[from] BatchError),

    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
}

/// Why a batch of operations was refused as a whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("malformed batch: {0}")]
    Malformed(String),

    #[error("wire format version {0} is not supported")]
    UnsupportedWireVersion(u8),

    #[error("operation schema version {0} is not supported")]
    UnsupportedSchema(u16),

    #[error("operation {dot:?}: {why}")]
    InvalidOperation { dot: Dot, why: String },

    #[error("operations of replica {replica} skip from {have} to {got}")]
    Gap {
        replica: ReplicaId,
        have: u64,
        got: u64,
    },

    #[error("operation {dot:?} depends on {missing:?}, which is not known")]
    MissingDependency { dot: Dot, missing: Dot },

    #[error("operation {dot:?} is outside the sender's scope: {why}")]
    OutOfScope { dot: Dot, why: String },

    #[error("operation {0:?} was received before with different content")]
    ConflictingDuplicate(Dot),
}

impl BatchError {
    pub(crate) fn invalid(dot: Dot, why: impl Into<String>) -> BatchError {
        BatchError::InvalidOperation {
            dot,
            why: why.into(),
        }
    }
}
