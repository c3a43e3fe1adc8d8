//! guichet-ussd-gateway: citizens without smartphones start and track
//! requests by USSD and SMS, in their language. The gateway holds its own
//! replica of the cases and syncs with the sync server as an intake device.

pub mod app;
pub mod config;
pub mod flow;
pub mod gateway;
pub mod group_commit;
pub mod i18n;
pub mod outbox;
pub mod providers;
pub mod replica;
pub mod simulator;
pub mod sms;
pub mod state;
pub mod text;
