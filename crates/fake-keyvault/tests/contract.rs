//! The fake's wire contract as a plain HTTPS client sees it: the challenge, both path forms,
//! the body shapes and integer times, and the control API.

use meschain_fake_keyvault::{FakeVault, Options};
use serde_json::Value;

async fn setup() -> (FakeVault, reqwest::Client) {
    let vault = FakeVault::start(Options { accepted_tokens: vec!["t".into()], ..Options::default() }).await.unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(vault.ca_pem().as_bytes()).unwrap())
        .resolve("myvault.vault.azure.net", vault.address())
        .build()
        .unwrap();
    (vault, http)
}

#[tokio::test]
async fn test_challenge_paths_and_bodies() {
    let (vault, http) = setup().await;
    let version = vault.state().set_secret("db-password", "pw");
    let base = vault.vault_url("myvault");

    let r = http.get(format!("{base}/secrets/db-password/?api-version=2025-07-01")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(challenges.len(), 1, "exactly one WWW-Authenticate header");
    let c = challenges[0].to_str().unwrap();
    assert!(
        c.starts_with("Bearer authorization=\"https://login.microsoftonline.com/")
            && c.contains(r#"resource="https://vault.azure.net""#),
        "{c}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized");

    for path in ["/secrets/db-password", "/secrets/db-password/", &format!("/secrets/db-password/{version}")] {
        let r = http.get(format!("{base}{path}?api-version=7.5")).bearer_auth("t").send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["value"], "pw");
        assert_eq!(body["id"], format!("https://myvault.vault.azure.net/secrets/db-password/{version}"));
        assert!(body["attributes"]["created"].is_i64() && body["attributes"]["updated"].is_i64());
        assert_eq!(body["attributes"]["enabled"], true);
    }

    let r = http.get(format!("{base}/secrets/db-password/")).bearer_auth("t").send().await.unwrap();
    assert_eq!(r.status(), 400, "api-version is required");
    let r = http.get(format!("{base}/secrets/nothing/?api-version=7.5")).bearer_auth("t").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SecretNotFound");
    assert!(body["error"]["message"].as_str().unwrap().contains("(name/id) nothing was not found"));
    vault.stop().await;
}

#[tokio::test]
async fn test_control_api() {
    let (vault, http) = setup().await;
    let control = vault.control_url();
    let base = vault.vault_url("myvault");
    let get = |http: reqwest::Client| {
        let url = format!("{base}/secrets/k/?api-version=7.5");
        async move { http.get(url).bearer_auth("t").send().await.unwrap() }
    };

    let r = http.put(format!("{control}/secrets/k")).json(&serde_json::json!({"value": "one"})).send().await.unwrap();
    let v1 = r.json::<Value>().await.unwrap()["version"].as_str().unwrap().to_owned();
    http.put(format!("{control}/secrets/k")).json(&serde_json::json!({"value": "two"})).send().await.unwrap();
    assert_eq!(get(http.clone()).await.json::<Value>().await.unwrap()["value"], "two");

    assert_eq!(http.post(format!("{control}/secrets/k/disable")).send().await.unwrap().status(), 204);
    let r = get(http.clone()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["innererror"]["code"], "SecretDisabled");
    http.post(format!("{control}/secrets/k/enable")).send().await.unwrap();
    let old = http.get(format!("{base}/secrets/k/{v1}?api-version=7.5")).bearer_auth("t").send().await.unwrap();
    assert_eq!(old.json::<Value>().await.unwrap()["value"], "one");

    for (kind, status, code) in
        [("throttle", 429, "Throttled"), ("forbidden", 403, "Forbidden"), ("server-error", 500, "InternalServerError")]
    {
        let fault = serde_json::json!({"kind": kind, "count": 1});
        assert_eq!(http.post(format!("{control}/faults")).json(&fault).send().await.unwrap().status(), 204);
        let r = get(http.clone()).await;
        assert_eq!(r.status(), status, "{kind}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], code);
    }
    assert_eq!(get(http.clone()).await.status(), 200, "faults are used up");

    let stats: Value = http.get(format!("{control}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["faults"], 3);
    assert_eq!(http.delete(format!("{control}/secrets/k")).send().await.unwrap().status(), 204);
    assert_eq!(get(http.clone()).await.status(), 404);

    // The identity endpoint wants its header.
    let r = http
        .get(format!("{}?api-version=2019-08-01&resource=https://vault.azure.net", vault.identity_endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{}?api-version=2019-08-01&resource=https://vault.azure.net", vault.identity_endpoint()))
        .header("X-IDENTITY-HEADER", vault.identity_header())
        .send()
        .await
        .unwrap();
    let token: Value = r.json().await.unwrap();
    assert!(token["expires_on"].is_string());
    let minted = token["access_token"].as_str().unwrap().to_owned();
    http.put(format!("{control}/secrets/k")).json(&serde_json::json!({"value": "three"})).send().await.unwrap();
    let r = http.get(format!("{base}/secrets/k/?api-version=7.5")).bearer_auth(minted).send().await.unwrap();
    assert_eq!(r.status(), 200, "the vault accepts tokens its identity endpoint issued");
    vault.stop().await;
}
