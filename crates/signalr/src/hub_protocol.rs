//! SignalR hub protocol messages and their JSON and MessagePack framing (reference §C.5).
