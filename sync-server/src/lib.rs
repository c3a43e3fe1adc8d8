//! guichet-sync-server: the server tablets and the USSD gateway sync with.
//! It is a replica of the same core store, so the merge rule exists once.

pub mod app;
pub mod config;
pub mod dashboard;
pub mod devices;
pub mod figures;
pub mod metrics;
pub mod page;
pub mod registry;
pub mod supervision;
pub mod supervisors;
