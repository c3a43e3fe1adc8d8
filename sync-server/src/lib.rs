//! guichet-sync-server: the server tablets and the USSD gateway sync with.
//! It is a replica of the same core store, so the merge rule exists once.

pub mod app;
pub mod config;
pub mod registry;
