//! What devices and the sync server share: the protocol messages and the
//! request signatures.

pub mod protocol;
pub mod signing;
