//! Signaling: the protocol, the server behind `rtc-cli serve`, and the client.

pub mod auth;
pub mod client;
pub mod protocol;
pub mod roster;
pub mod server;
pub mod tls;
pub mod turn;
