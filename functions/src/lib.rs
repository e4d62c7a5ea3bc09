//! MesChain Realtime functions.
