//! `itemsUrl` sources are fetched only where an operator allowed: each refusal, through the
//! real client (its resolver and redirect policy), against servers on 127.0.0.1:0. Nothing here
//! connects anywhere but loopback: refused addresses are refused before any connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use meschain_marketplace::items_source::{ItemsSource, SourceError};
use meschain_marketplace::net_guard::{ItemsHttp, UrlPolicy};
use meschain_marketplace::request::Operation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that answers every request with `response` and counts requests.
async fn server(response: String) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, hits)
}

fn page(total: u64) -> String {
    let body = format!(r#"{{"items":[{{"barcode":"B1","quantity":1}}],"total":{total}}}"#);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

async fn total(policy: UrlPolicy, url: &str) -> Result<u64, SourceError> {
    let mut source = ItemsSource::url(ItemsHttp::new(policy), url::Url::parse(url).unwrap(), Operation::Inventory);
    tokio::time::timeout(Duration::from_secs(20), source.total()).await.expect("no hang")
}

fn refused(r: Result<u64, SourceError>, needle: &str) {
    match r {
        Err(SourceError::Broken(reason)) => assert!(reason.contains(needle), "{reason:?} lacks {needle:?}"),
        other => panic!("expected a refusal with {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn test_allowed_loopback_source_is_read() {
    let (port, hits) = server(page(1)).await;
    assert_eq!(total(UrlPolicy::loopback_only(), &format!("http://127.0.0.1:{port}/items")).await.unwrap(), 1);
    assert_eq!(total(UrlPolicy::loopback_only(), &format!("http://localhost:{port}/items")).await.unwrap(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn test_host_not_allowed_is_refused() {
    let (port, hits) = server(page(1)).await;
    let policy = UrlPolicy::new(&["catalog.example.com"], false);
    refused(total(policy, &format!("http://feeds.example.net:{port}/items")).await, "not in ITEMS_URL_ALLOWED_HOSTS");
    // An empty list (Azure's default) allows nothing.
    refused(total(UrlPolicy::default(), "https://catalog.example.com/items").await, "not in ITEMS_URL_ALLOWED_HOSTS");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn test_address_literals_are_refused() {
    let policy = UrlPolicy::new(&["catalog.example.com"], false);
    refused(total(policy.clone(), "http://169.254.169.254/metadata/instance").await, "cloud metadata");
    refused(total(policy.clone(), "http://168.63.129.16/machine").await, "cloud metadata");
    refused(total(policy.clone(), "http://169.254.10.1/x").await, "link-local");
    refused(total(policy.clone(), "http://10.0.0.5/x").await, "private");
    refused(total(policy.clone(), "http://192.168.1.1/x").await, "private");
    refused(total(policy.clone(), "http://[fd00::1]/x").await, "private");
    refused(total(policy.clone(), "http://[::ffff:169.254.169.254]/x").await, "cloud metadata");
    let (port, hits) = server(page(1)).await;
    refused(total(policy, &format!("http://127.0.0.1:{port}/x")).await, "loopback");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "refused before connecting");
}

#[tokio::test]
async fn test_allowed_name_resolving_inside_is_refused_after_dns() {
    // `localhost` is allowed by name here, but resolves to loopback, which is not allowed.
    let (port, hits) = server(page(1)).await;
    let policy = UrlPolicy::new(&["localhost"], false);
    refused(
        total(policy, &format!("http://localhost:{port}/items")).await,
        "loopback address (resolved from \"localhost\")",
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn test_redirects_are_checked_too() {
    let policy = UrlPolicy::loopback_only();
    for (to, needle) in [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://10.1.2.3/items", "private"),
        ("http://catalog.example.org/items", "not in ITEMS_URL_ALLOWED_HOSTS"),
        ("http://[fe80::1]/items", "link-local"),
    ] {
        let (port, hits) = server(redirect(to)).await;
        let r = total(policy.clone(), &format!("http://127.0.0.1:{port}/items")).await;
        refused(r, needle);
        assert!(
            matches!(total(policy.clone(), &format!("http://127.0.0.1:{port}/items")).await, Err(SourceError::Broken(r)) if r.contains("(redirect)"))
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
    // A redirect to another allowed source is followed.
    let (target, _) = server(page(3)).await;
    let (port, _) = server(redirect(&format!("http://127.0.0.1:{target}/items"))).await;
    assert_eq!(total(policy.clone(), &format!("http://127.0.0.1:{port}/items")).await.unwrap(), 3);
    // A loop ends.
    let (port, _) = server(redirect("/again")).await;
    refused(total(policy, &format!("http://127.0.0.1:{port}/items")).await, "redirects");
}
