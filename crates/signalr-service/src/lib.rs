//! A local Azure SignalR Service in serverless mode.
