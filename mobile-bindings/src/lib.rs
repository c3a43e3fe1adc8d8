//! guichet-mobile: Guichet's offline case store for the Android and iOS
//! tablet apps, through uniffi.
//!
//! - [`DeviceIdentity`]: the device key, its public part for the
//!   administrator, and the enrolment the server returned;
//! - [`CaseStore`]: the store file, cases (create, edit, status, events,
//!   conflicts, queries) and the sync with the server;
//! - [`GuichetError`]: the one error type, with a case per kind of failure.
//!
//! See README.md for building the Android and iOS libraries.

mod error;
mod identity;
mod store;
mod types;

pub use error::GuichetError;
pub use identity::DeviceIdentity;
pub use store::{CaseStore, SyncListener};
pub use types::*;

uniffi::setup_scaffolding!();

/// The statuses a case in `status` may move to (the buttons to offer).
#[uniffi::export]
pub fn next_statuses(status: CaseStatus) -> Vec<CaseStatus> {
    let from = guichet_core::Status::from(status);
    guichet_core::Status::ALL
        .iter()
        .filter(|to| from.can_become(**to))
        .map(|to| (*to).into())
        .collect()
}

/// Whether a reference a citizen typed is well formed (its check digit
/// holds): catches every single wrong digit and adjacent swap.
#[uniffi::export]
pub fn is_valid_reference(reference: String) -> bool {
    guichet_core::reference::parse(&reference).is_ok()
}
