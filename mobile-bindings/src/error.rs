//! The one error type the apps see. Every failure of the core, of the file
//! system and of the network ends up in one of its cases, with a message.

use guichet_core::sync::client::SyncError;

/// Why a call failed. Kotlin: `GuichetException.InvalidInput` and so on;
/// Swift: `GuichetError.InvalidInput`; Python: `GuichetError.InvalidInput`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum GuichetError {
    /// Something the app passed is not acceptable (a malformed case id or
    /// phone number, an empty field, a store file of another device...).
    #[error("{0}")]
    InvalidInput(String),
    /// No case (or reference) by that name in this store.
    #[error("{0}")]
    NotFound(String),
    /// The status workflow does not allow that change.
    #[error("{0}")]
    InvalidTransition(String),
    /// The store file or the device files cannot be read or written. A file
    /// that cannot be opened is never deleted or rewritten.
    #[error("{0}")]
    Storage(String),
    /// The sync server could not be reached, failed, or answered something
    /// unusable. Nothing was lost: the next sync resumes.
    #[error("{0}")]
    Network(String),
    /// The sync server refused this device (unknown, revoked, or writing
    /// outside its units).
    #[error("{0}")]
    Unauthorized(String),
    /// The sync was cancelled (`CaseStore.cancelSync()` or the caller's
    /// coroutine / task was cancelled). What was exchanged before is kept.
    #[error("{0}")]
    Cancelled(String),
}

pub type Result<T, E = GuichetError> = std::result::Result<T, E>;

impl From<guichet_core::Error> for GuichetError {
    fn from(e: guichet_core::Error) -> Self {
        use guichet_core::Error as E;
        let message = e.to_string();
        match e {
            E::InvalidInput(_) | E::InvalidReference(_) | E::WrongReplica { .. } => {
                GuichetError::InvalidInput(message)
            }
            E::NotFound(_) => GuichetError::NotFound(message),
            E::InvalidTransition { .. } => GuichetError::InvalidTransition(message),
            E::CannotOpen { .. } | E::Damaged(_) | E::Storage(_) => GuichetError::Storage(message),
            // Only met while applying what the server sent.
            E::ServerChanged | E::Batch(_) => GuichetError::Network(format!("sync: {message}")),
        }
    }
}

impl From<SyncError> for GuichetError {
    fn from(e: SyncError) -> Self {
        let message = e.to_string();
        match e {
            SyncError::Unauthorized(_) | SyncError::Refused { status: 403, .. } => {
                GuichetError::Unauthorized(message)
            }
            SyncError::Refused { .. }
            | SyncError::Network(_)
            | SyncError::Server { .. }
            | SyncError::BadAnswer(_) => GuichetError::Network(message),
            SyncError::Store(e) => e.into(),
            SyncError::Signing(_) => GuichetError::Storage(message),
        }
    }
}

/// A sync listener that threw: reported, never a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for GuichetError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        GuichetError::InvalidInput(format!("the app's callback failed: {}", e.reason))
    }
}

pub(crate) fn poisoned<T>(_: T) -> GuichetError {
    GuichetError::Storage(
        "the store is unusable after an earlier internal failure; close and reopen it".into(),
    )
}
