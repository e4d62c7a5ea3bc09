//! One module per `meschain` subcommand: argument parsing and printing only.

pub mod dev;
pub mod enqueue;
pub mod queue;
pub mod signalr;
pub mod token;
