//! Regenerating an access key while the service runs, as ARM's `regenerateKey` does: the old
//! key stops working at once for negotiate and REST, the other key keeps working throughout,
//! and established connections stay up.

mod common;

use common::*;
use meschain_signalr::hub_protocol::Protocol;
use meschain_signalr_service::KeyType;

const V: &str = "api-version=2022-06-01";

async fn negotiate_status(svc: &meschain_signalr_service::RunningService, key: &str) -> u16 {
    http()
        .post(format!("{}/client/negotiate?hub=chat&negotiateVersion=1", base(svc)))
        .bearer_auth(client_token(key, "chat", Some("alice"), 3600))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn rest_status(svc: &meschain_signalr_service::RunningService, key: &str) -> u16 {
    let pq = format!("/api/hubs/chat/:send?{V}");
    http()
        .post(format!("{}{pq}", base(svc)))
        .bearer_auth(rest_token(key, &pq))
        .json(&serde_json::json!({"target": "t", "arguments": []}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn test_regenerated_key_stops_working_and_the_other_keeps_working() {
    let svc = start(test_config()).await;
    let mut established = connect(&svc, "chat", Some("bob"), Protocol::Json).await;
    assert_eq!((negotiate_status(&svc, KEY).await, rest_status(&svc, KEY).await), (200, 202));
    assert_eq!((negotiate_status(&svc, KEY2).await, rest_status(&svc, KEY2).await), (200, 202));

    let fresh = svc.keys().regenerate(KeyType::Primary);
    assert_eq!((negotiate_status(&svc, KEY).await, rest_status(&svc, KEY).await), (401, 401));
    assert_eq!((negotiate_status(&svc, KEY2).await, rest_status(&svc, KEY2).await), (200, 202));
    assert_eq!((negotiate_status(&svc, fresh.expose()).await, rest_status(&svc, fresh.expose()).await), (200, 202));
    assert!(svc.connection_string().contains(fresh.expose()));

    // The connection made with the old key stays up and gets all four accepted sends, the two
    // made after the regeneration included.
    for _ in 0..4 {
        let (target, _) = invocation(established.next().await);
        assert_eq!(target, "t");
    }
}
