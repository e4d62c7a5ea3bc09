//! The SignalR REST client against the local SignalR service, made to fail by a scripted
//! proxy: transient failures are retried, client errors are not, total time stays bounded,
//! and a failing endpoint hands over to a fallback.

mod common;

use std::time::{Duration, Instant};

use common::chaos::{Chaos, Fault};
use meschain_functions::signalr_rest::retry::RetryPolicy;
use meschain_functions::signalr_rest::{Endpoint, RestError, SignalRRest};
use meschain_signalr::rest::Operation;
use meschain_signalr::{AccessKey, ConnectionString};
use meschain_signalr_service::{Config, RunningService};

const KEY: &str = "rest-client-test-access-key";
const HUB: &str = "MesChainAdminHub";

async fn service() -> RunningService {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_signalr_service::start(Config { access_keys: vec![AccessKey::new(KEY)], ..Config::default() }, listener)
        .await
        .unwrap()
}

fn endpoint(port: u16) -> Endpoint {
    let cs: ConnectionString =
        format!("Endpoint=http://localhost;Port={port};AccessKey={KEY};Version=1.0;").parse().unwrap();
    Endpoint::new(cs, &AccessKey::new(KEY))
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(500),
        budget: Duration::from_secs(4),
    }
}

async fn send_all(client: &SignalRRest) -> Result<(), RestError> {
    client
        .send(HUB, Operation::SendToAll { excluded: &[] }, "systemAlert", &[serde_json::json!({"message": "hi"})])
        .await
}

async fn chaos_in_front(svc: &RunningService) -> Chaos {
    Chaos::start(&format!("http://localhost:{}", svc.local_addr().port())).await
}

#[tokio::test]
async fn test_transient_failures_are_retried_honouring_retry_after() {
    let svc = service().await;
    let chaos = chaos_in_front(&svc).await;
    chaos.script([Fault::Status(503, None), Fault::Status(502, None), Fault::Status(429, Some(1))]);
    let client = SignalRRest::new(vec![endpoint(chaos.addr.port())], policy());
    let started = Instant::now();
    send_all(&client).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    assert_eq!(chaos.seen().len(), 4, "{:?}", chaos.seen());
    assert!(chaos.seen()[3].starts_with("POST /api/hubs/meschainadminhub/:send?api-version=2022-06-01"));
}

#[tokio::test]
async fn test_client_errors_are_not_retried() {
    let svc = service().await;
    let chaos = chaos_in_front(&svc).await;
    chaos.script([Fault::Status(400, None)]);
    let client = SignalRRest::new(vec![endpoint(chaos.addr.port())], policy());
    assert_eq!(send_all(&client).await, Err(RestError::Rejected { status: 400, code: None }));
    assert_eq!(chaos.seen().len(), 1);
}

#[tokio::test]
async fn test_timeouts_are_retried() {
    let svc = service().await;
    let chaos = chaos_in_front(&svc).await;
    chaos.script([Fault::Hang(Duration::from_secs(3))]);
    let client = SignalRRest::new(vec![endpoint(chaos.addr.port())], policy());
    let started = Instant::now();
    send_all(&client).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "the hung attempt was not cut short: {:?}", started.elapsed());
    assert_eq!(chaos.seen().len(), 2);
}

#[tokio::test]
async fn test_total_time_is_bounded() {
    let svc = service().await;
    let chaos = chaos_in_front(&svc).await;
    chaos.script(std::iter::repeat_n(Fault::Hang(Duration::from_secs(10)), 50));
    let client = SignalRRest::new(vec![endpoint(chaos.addr.port())], RetryPolicy { max_attempts: 50, ..policy() });
    let started = Instant::now();
    assert!(matches!(send_all(&client).await, Err(RestError::Unavailable(_))));
    let took = started.elapsed();
    assert!(took <= policy().budget + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test]
async fn test_connection_refused_fails_over_to_the_fallback() {
    let svc = service().await;
    let refused = common::RefusedPort::new();
    let closed = refused.port();
    let client = SignalRRest::new(vec![endpoint(closed), endpoint(svc.local_addr().port())], policy());
    let started = Instant::now();
    send_all(&client).await.unwrap();
    assert!(started.elapsed() < policy().budget);
    // The primary is now benched: the next call goes straight to the fallback.
    assert_eq!(client.active().connection().endpoint.port(), Some(svc.local_addr().port()));
    let started = Instant::now();
    send_all(&client).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn test_documented_not_found_answers_are_no_not_errors() {
    let svc = service().await;
    let client = SignalRRest::new(vec![endpoint(svc.local_addr().port())], policy());
    assert_eq!(client.run(HUB, Operation::ConnectionExists { connection: "nope" }).await, Ok(false));
    assert_eq!(client.run(HUB, Operation::UserExists { user: "nobody" }).await, Ok(false));
    assert_eq!(client.run(HUB, Operation::GroupExists { group: "admins" }).await, Ok(false));
    assert_eq!(client.run(HUB, Operation::UserInGroup { group: "admins", user: "nobody" }).await, Ok(false));
    assert_eq!(
        client.run(HUB, Operation::AddConnectionToGroup { group: "admins", connection: "nope" }).await,
        Ok(false)
    );
    assert_eq!(
        client.run(HUB, Operation::AddUserToGroup { group: "admins", user: "u1", ttl_secs: Some(60) }).await,
        Ok(true)
    );
    assert_eq!(client.run(HUB, Operation::UserInGroup { group: "admins", user: "u1" }).await, Ok(true));
    assert_eq!(client.run(HUB, Operation::RemoveUserFromAllGroups { user: "u1" }).await, Ok(true));
    assert!(client.healthy().await);
}

#[tokio::test]
async fn test_wrong_key_is_a_401_without_retries() {
    let svc = service().await;
    let chaos = chaos_in_front(&svc).await;
    let cs: ConnectionString =
        format!("Endpoint=http://localhost;Port={};AccessKey=wrong;Version=1.0;", chaos.addr.port()).parse().unwrap();
    let client = SignalRRest::new(vec![Endpoint::new(cs, &AccessKey::new("wrong"))], policy());
    assert!(matches!(send_all(&client).await, Err(RestError::Rejected { status: 401, .. })));
    assert_eq!(chaos.seen().len(), 1);
}
