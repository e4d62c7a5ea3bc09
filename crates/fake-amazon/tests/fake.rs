//! The fake's own documented refusals, driven with a plain HTTP client (the connector's
//! happy paths and the model validation are in the marketplace crate's `tests/amazon.rs`).

use meschain_fake_amazon::{Config, FakeAmazon};
use serde_json::{Value, json};

async fn fake(config: Config) -> FakeAmazon {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    meschain_fake_amazon::start(config, listener).await.unwrap()
}

async fn token(f: &FakeAmazon, form: &[(&str, &str)]) -> (u16, Value) {
    let body: String = form.iter().map(|(k, v)| format!("{k}={}", v.replace('|', "%7C"))).collect::<Vec<_>>().join("&");
    let r = reqwest::Client::new()
        .post(f.token_url())
        .header("content-type", "application/x-www-form-urlencoded;charset=UTF-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn grant<'a>(c: &'a Config, refresh: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", c.client_id.as_str()),
        ("client_secret", secret),
    ]
}

#[tokio::test]
async fn test_lwa_grant_and_its_oauth_errors() {
    let f = fake(Config::default()).await;
    let c = f.config().clone();
    let (status, v) = token(&f, &grant(&c, &c.refresh_token, &c.client_secret)).await;
    assert_eq!(status, 200);
    assert!(v["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!((v["token_type"].as_str(), v["expires_in"].as_u64()), (Some("bearer"), Some(3600)));
    let (status, v) = token(&f, &grant(&c, "Atzr|other", &c.client_secret)).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let (status, v) = token(&f, &grant(&c, &c.refresh_token, "nope")).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
    let (status, v) = token(&f, &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("unsupported_grant_type")));
    f.shutdown().await;
}

#[tokio::test]
async fn test_access_token_checked_and_expiry_reported() {
    let f = fake(Config::default()).await;
    let c = f.config().clone();
    let http = reqwest::Client::new();
    let url = format!("{}/feeds/2021-06-30/feeds/1", f.base_url());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "Unauthorized");
    assert!(v["errors"][0]["details"].as_str().unwrap().contains("invalid"));
    let (_, t) = token(&f, &grant(&c, &c.refresh_token, &c.client_secret)).await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let r = http.get(&url).header("x-amz-access-token", &access).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "a valid token reaches the operation");
    f.expire_tokens();
    let r = http.get(&url).header("x-amz-access-token", &access).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"][0]["details"].as_str().unwrap().contains("expired"));
    f.shutdown().await;
}

#[tokio::test]
async fn test_upload_bound_to_content_type_and_buckets_throttle() {
    let f = fake(Config::default()).await;
    let c = f.config().clone();
    let http = reqwest::Client::new();
    let (_, t) = token(&f, &grant(&c, &c.refresh_token, &c.client_secret)).await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let create = || {
        http.post(format!("{}/feeds/2021-06-30/documents", f.base_url()))
            .header("x-amz-access-token", &access)
            .json(&json!({ "contentType": "application/json; charset=UTF-8" }))
            .send()
    };
    let r = create().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let doc: Value = r.json().await.unwrap();
    let upload = doc["url"].as_str().unwrap();
    let wrong = http.put(upload).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 403, "S3 refuses a Content-Type the URL was not signed for");
    let tampered = http
        .put(upload.replace("Signature=", "Signature=x"))
        .header("content-type", "application/json; charset=UTF-8")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 403);
    let ok =
        http.put(upload).header("content-type", "application/json; charset=UTF-8").body("{}").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    // createFeedDocument: burst 15 (one spent above), then 429 QuotaExceeded without Retry-After.
    for _ in 0..14 {
        assert_eq!(create().await.unwrap().status().as_u16(), 201);
    }
    let r = create().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "QuotaExceeded");
    assert_eq!(f.stats().throttled, 1);
    f.shutdown().await;
}
