//! `negotiate` end to end through the real binary: the token it mints is checked independently
//! (decoded with the access key, expected audience and user id), and every way of lying about
//! identity is refused.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::auth::{JwksServer, RSA_A_PUB, rsa, rsa_jwk, sign};
use common::{ACCESS_KEY, AUDIENCE, Handler, ISSUER, JWT_SECRET, login, login_claims, now, settings, sign_login};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn negotiate(h: &Handler, query: &str, headers: &[(&str, String)]) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client().post(format!("{}/api/negotiate{query}", h.base));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// Decodes a SignalR client token the way the service does: HS256 with the access key's
/// UTF-8 bytes and the audience of the hub (no port, lower-cased hub).
fn decode_client_token(token: &str, hub: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[format!("http://localhost/client/?hub={}", hub.to_lowercase())]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(ACCESS_KEY.as_bytes()), &v).unwrap().claims
}

#[tokio::test]
async fn test_admin_gets_admin_hub_token() {
    let h = Handler::start(&settings());
    let (status, headers, body) = negotiate(&h, "", &[bearer(&login("alice", &["admin"]))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["accessToken", "catalog", "connectors", "syncOperations", "url"],
        "url and accessToken for the SignalR client; syncOperations, catalog and connectors for the page"
    );
    assert_eq!(body["catalog"]["configured"], false);
    assert_eq!(body["connectors"].as_object().unwrap().len(), 6, "{body}");
    // Only what a hub call can start (it carries no items); the page offers exactly these.
    assert_eq!(body["syncOperations"], json!(["orders"]));
    assert_eq!(body["url"], "http://localhost:8888/client/?hub=meschainadminhub");
    assert_eq!(headers["cache-control"], "no-store");
    let c = decode_client_token(body["accessToken"].as_str().unwrap(), "MesChainAdminHub");
    assert_eq!(c["asrs.s.uid"], "alice");
    assert_eq!(c["nameid"], "alice");
    assert_eq!(c["role"], "admin");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 3600);
    assert!(c["nbf"].as_u64().unwrap() <= now());
}

#[tokio::test]
async fn test_role_to_hub_and_hub_requests() {
    let h = Handler::start(&settings());
    let manager = login("mona", &["marketplace_manager"]);
    let viewer =
        sign_login(&json!({"sub": "vic", "role": "viewer", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600}));

    let (status, _, body) = negotiate(&h, "", &[bearer(&manager)]).await;
    assert_eq!((status, body["url"].as_str()), (200, Some("http://localhost:8888/client/?hub=meschainmarketplacehub")));
    let (status, _, body) = negotiate(&h, "?hub=MesChainDashboardHub", &[bearer(&manager)]).await;
    assert_eq!((status, body["url"].as_str()), (200, Some("http://localhost:8888/client/?hub=meschaindashboardhub")));
    let (status, _, body) = negotiate(&h, "?hub=MesChainAdminHub", &[bearer(&manager)]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden_hub")));

    let (status, _, body) = negotiate(&h, "", &[bearer(&viewer)]).await;
    assert_eq!((status, body["url"].as_str()), (200, Some("http://localhost:8888/client/?hub=meschaindashboardhub")));
    let (status, _, _) = negotiate(&h, "?hub=meschainmarketplacehub", &[bearer(&viewer)]).await;
    assert_eq!(status, 403);
    let (status, _, body) = negotiate(&h, "?hub=chat", &[bearer(&viewer)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unknown_hub")));
    let (status, _, _) = negotiate(&h, "?hub=MesChainDashboardHub&hub=MesChainAdminHub", &[bearer(&viewer)]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn test_spoofed_identity_headers_grant_nothing() {
    let h = Handler::start(&settings());
    let spoof = [
        ("x-user-id", "root".to_string()),
        ("x-user-role", "super_admin".to_string()),
        ("x-ms-client-principal-id", "root".to_string()),
        ("x-ms-client-principal", URL_SAFE_NO_PAD.encode(r#"{"claims":[{"typ":"roles","val":"super_admin"}]}"#)),
    ];
    // Without a login token: refused, whatever the headers say.
    let (status, headers, body) = negotiate(&h, "?role=super_admin&userId=root", &spoof).await;
    assert_eq!(status, 401, "{body}");
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(body["error"], "invalid_token");

    // With a viewer's token: still a viewer.
    let mut with_token = spoof.to_vec();
    with_token.push(bearer(&login("vic", &["viewer"])));
    let (status, _, body) = negotiate(&h, "", &with_token).await;
    assert_eq!(status, 200);
    let c = decode_client_token(body["accessToken"].as_str().unwrap(), "MesChainDashboardHub");
    assert_eq!(c["asrs.s.uid"], "vic");
    assert_eq!(body["syncOperations"], json!([]), "a dashboard user can start no sync");
    let (status, _, _) = negotiate(&h, "?hub=MesChainAdminHub", &with_token).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn test_bad_login_tokens_are_401() {
    let h = Handler::start(&settings());
    let mut expired = login_claims("alice", &["admin"]);
    expired["exp"] = json!(now() - 3600);
    let mut wrong_issuer = login_claims("alice", &["admin"]);
    wrong_issuer["iss"] = json!("someone-else");
    let mut wrong_audience = login_claims("alice", &["admin"]);
    wrong_audience["aud"] = json!("another-app");
    let good = login("alice", &["admin"]);
    let unsigned = good.rsplit_once('.').unwrap().0.to_string() + ".";
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(login_claims("alice", &["admin"]).to_string())
    );
    let wrong_secret = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"not-the-secret-but-just-as-long-as-it"),
        &login_claims("alice", &["admin"]),
    );
    // HS256-signed with the right secret, so only the reader can refuse them.
    let raw_login = |header: &str, claims: &str| {
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
        format!("{message}.{}", jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap())
    };
    let deep = format!(r#"{{"sub":"alice","roles":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
    let cases = [
        ("expired", format!("Bearer {}", sign_login(&expired))),
        ("wrong issuer", format!("Bearer {}", sign_login(&wrong_issuer))),
        ("wrong audience", format!("Bearer {}", sign_login(&wrong_audience))),
        ("unsigned", format!("Bearer {unsigned}")),
        ("alg none", format!("Bearer {alg_none}")),
        ("wrong secret", format!("Bearer {wrong_secret}")),
        ("not a jwt", "Bearer abc".to_string()),
        (
            "header an array",
            format!("Bearer {}", raw_login(r#"["HS256"]"#, &login_claims("alice", &["admin"]).to_string())),
        ),
        ("claims an array", format!("Bearer {}", raw_login(r#"{"alg":"HS256"}"#, r#"["alice",["admin"]]"#))),
        ("claims not json", format!("Bearer {}", raw_login(r#"{"alg":"HS256"}"#, "{\"sub\":"))),
        ("claims nested past the JSON depth limit", format!("Bearer {}", raw_login(r#"{"alg":"HS256"}"#, &deep))),
        ("signature not base64", format!("Bearer {}!", good.rsplit_once('.').unwrap().0)),
        ("basic scheme", "Basic YWRtaW46YWRtaW4=".to_string()),
        ("empty bearer", "Bearer ".to_string()),
    ];
    for (what, header) in cases {
        let (status, headers, body) = negotiate(&h, "", &[("Authorization", header.clone())]).await;
        assert_eq!(status, 401, "{what}: {body}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{what}: {challenge}");
        let presented = header.split_once(' ').map(|(_, t)| t).unwrap_or_default();
        if presented.len() > 20 {
            assert!(!body.to_string().contains(presented), "{what}: the token was echoed");
        }
    }
    // None of that disturbed the handler: a good token still gets its SignalR token.
    let (status, _, body) = negotiate(&h, "", &[bearer(&good)]).await;
    assert_eq!(status, 200, "{body}");
    // The secret never reaches the logs.
    let logs = h.drain_output().join("\n");
    assert!(!logs.contains(JWT_SECRET) && !logs.contains(ACCESS_KEY), "secret in logs");
}

#[tokio::test]
async fn test_enveloped_negotiate() {
    let h = Handler::start(&settings());
    let token = login("alice", &["super_admin"]);
    let envelope = json!({
        "Data": {"req": {
            "Url": "http://localhost:7071/api/negotiate?hub=MesChainDashboardHub",
            "Method": "POST",
            "Query": {"hub": "MesChainDashboardHub"},
            "Headers": {"Authorization": [format!("Bearer {token}")], "Origin": ["http://localhost:5173"]},
            "Params": {}
        }},
        "Metadata": {"sys": {"MethodName": "negotiate", "UtcNow": "2026-11-23T00:00:00Z", "RandGuid": "x"}}
    });
    let resp = client().post(format!("{}/negotiate", h.base)).json(&envelope).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = resp.json().await.unwrap();
    let res = &body["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    assert_eq!(res["headers"]["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(res["headers"]["access-control-allow-credentials"], "true");
    let inner: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["url"], "http://localhost:8888/client/?hub=meschaindashboardhub");
    let c = decode_client_token(inner["accessToken"].as_str().unwrap(), "MesChainDashboardHub");
    assert_eq!(c["asrs.s.uid"], "alice");
    assert!(
        body["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("negotiated MesChainDashboardHub"))
    );
}

/// With RS256 keys from a JWKS, a token "signed" with HS256 using the public key as the HMAC
/// secret (algorithm confusion) is refused, while the genuine RS256 token works.
#[tokio::test]
async fn test_algorithm_confusion_with_jwks() {
    let jwks = JwksServer::start(json!({ "keys": [rsa_jwk("a", "k1")] })).await;

    let mut s = settings();
    s.remove("AUTH_JWT_SECRET");
    s.insert("AUTH_JWKS_URL", jwks.jwks_url());
    let h = Handler::start(&s);

    let genuine = sign(Algorithm::RS256, Some("k1"), &rsa("a"), &login_claims("rita", &["admin"]));
    let (status, _, body) = negotiate(&h, "", &[bearer(&genuine)]).await;
    assert_eq!(status, 200, "{body}");

    let forged = sign(
        Algorithm::HS256,
        Some("k1"),
        &EncodingKey::from_secret(RSA_A_PUB),
        &login_claims("mallory", &["super_admin"]),
    );
    let (status, headers, body) = negotiate(&h, "", &[bearer(&forged)]).await;
    assert_eq!(status, 401, "{body}");
    assert!(headers.contains_key("www-authenticate"));
}
