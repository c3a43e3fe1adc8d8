//! What devices and the sync server share: the protocol messages and the
//! request signatures.

#[cfg(feature = "client")]
pub mod client;
pub mod protocol;
pub mod signing;
