//! MesChain Realtime functions.

pub mod auth;
