//! One module per `meschain` subcommand: argument parsing and printing only.

pub mod signalr;
