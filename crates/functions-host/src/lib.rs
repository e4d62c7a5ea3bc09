//! A local Azure Functions host for custom handlers.
