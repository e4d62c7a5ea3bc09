//! Audience comparison as the service applies it.
//!
//! Producers disagree on the exact `aud` string (https://github.com/Azure/azure-signalr, https://learn.microsoft.com/azure/azure-signalr/signalr-reference-data-plane-rest-api): the SDK drops the port
//! and lower-cases the hub, hand-rolled tokens keep both; REST tokens from the SDK carry the
//! query string, the docs say they do not. So both sides are normalised before comparing:
//! scheme and host case-insensitively, port ignored, trailing `/` ignored, query dropped
//! (the client audience's `hub` is compared separately, case-insensitively).

use url::Url;

/// `scheme://host` lower-cased and the path without a trailing `/`.
fn normalise(raw: &str) -> Option<(String, String, Url)> {
    let url = Url::parse(raw).ok()?;
    let origin = format!("{}://{}", url.scheme().to_ascii_lowercase(), url.host_str()?.to_ascii_lowercase());
    let path = url.path().trim_end_matches('/').to_string();
    Some((origin, path, url))
}

/// Whether `aud` is acceptable for a client connecting to `hub` on a service reachable at
/// `service_url` (any URL of the instance; only scheme and host matter).
pub fn client_audience_matches(aud: &str, service_url: &str, hub: &str) -> bool {
    let (Some((aud_origin, aud_path, aud_url)), Some((origin, _, _))) = (normalise(aud), normalise(service_url)) else {
        return false;
    };
    if aud_origin != origin || aud_path != "/client" {
        return false;
    }
    let mut hubs = aud_url.query_pairs().filter(|(k, _)| k == "hub");
    matches!((hubs.next(), hubs.next()), (Some((_, h)), None) if h.eq_ignore_ascii_case(hub))
}

/// Whether `aud` is acceptable for a REST call to `request_url`.
pub fn rest_audience_matches(aud: &str, request_url: &str) -> bool {
    match (normalise(aud), normalise(request_url)) {
        (Some((ao, ap, _)), Some((ro, rp, _))) => ao == ro && ap.eq_ignore_ascii_case(&rp),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_client_audience_forms() {
        let svc = "http://localhost:8888/client/negotiate?hub=chat";
        assert!(client_audience_matches("http://localhost/client/?hub=chat", svc, "Chat"));
        assert!(client_audience_matches("http://LOCALHOST:8888/client/?hub=Chat", svc, "chat"));
        assert!(client_audience_matches("http://localhost/client?hub=chat", svc, "chat"));
        assert!(!client_audience_matches("http://localhost/client/?hub=other", svc, "chat"));
        assert!(!client_audience_matches("http://evil/client/?hub=chat", svc, "chat"));
        assert!(!client_audience_matches("https://localhost/client/?hub=chat", svc, "chat"));
        assert!(!client_audience_matches("http://localhost/api/?hub=chat", svc, "chat"));
        assert!(!client_audience_matches("http://localhost/client/?hub=chat&hub=x", svc, "chat"));
        assert!(!client_audience_matches("not a url", svc, "chat"));
    }

    #[test]
    fn test_rest_audience_forms() {
        let req = "http://localhost:8888/api/hubs/chat/:send?api-version=2022-06-01&excluded=a";
        assert!(rest_audience_matches("http://localhost/api/hubs/chat/:send?api-version=2022-06-01", req));
        assert!(rest_audience_matches("http://localhost/api/hubs/chat/:send", req));
        assert!(rest_audience_matches("http://localhost:8888/api/hubs/chat/:send/", req));
        assert!(!rest_audience_matches("http://localhost/api/hubs/other/:send", req));
        assert!(!rest_audience_matches("http://localhost/client/?hub=chat", req));
    }
}
