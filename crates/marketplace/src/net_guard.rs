//! Where an `itemsUrl` may be fetched from. A queue message names the URL, and whoever can
//! write a message must not be able to make the handler request addresses inside its network
//! (the platform's metadata and wire-server endpoints, private services, loopback).
//!
//! Three checks, all needed: the host must be one an operator allowed
//! (`ITEMS_URL_ALLOWED_HOSTS`); every address a host name resolves to must be public, checked
//! in the client's own resolver so the address checked is the address connected to (no
//! window for a rebinding DNS answer); and every redirect target goes through the same two
//! checks before it is followed. A URL naming an IP address is checked directly, since no
//! resolver sees it. Loopback is allowed only when `meschain dev` says so
//! (`ITEMS_URL_ALLOW_LOOPBACK`), for local sources.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use meschain_model::settings::{ITEMS_URL_ALLOW_LOOPBACK, ITEMS_URL_ALLOWED_HOSTS};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Why a fetch was refused; carried through the HTTP client's errors to the failed sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Which hosts and addresses item sources may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Exact host names, or suffixes written `*.example.com` (stored as `.example.com`).
    allowed_hosts: Vec<String>,
    allow_loopback: bool,
}

impl UrlPolicy {
    pub fn new(allowed_hosts: &[&str], allow_loopback: bool) -> Self {
        UrlPolicy {
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().trim_start_matches('*').to_ascii_lowercase())
                .collect(),
            allow_loopback,
        }
    }

    /// Loopback sources only (tests and `meschain dev`).
    pub fn loopback_only() -> Self {
        UrlPolicy::new(&[], true)
    }

    /// From `ITEMS_URL_ALLOWED_HOSTS` and `ITEMS_URL_ALLOW_LOOPBACK`; a problem names its setting.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut hosts = Vec::new();
        let raw = get(ITEMS_URL_ALLOWED_HOSTS).unwrap_or_default();
        for h in raw.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let name = h.strip_prefix("*.").unwrap_or(h);
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && !name.starts_with('.')
                && name.parse::<IpAddr>().is_err();
            if valid {
                hosts.push(h);
            } else {
                problems.push((ITEMS_URL_ALLOWED_HOSTS, format!("{h:?} is not a host name (or *.domain)")));
            }
        }
        let allow_loopback = match get(ITEMS_URL_ALLOW_LOOPBACK).as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                problems.push((ITEMS_URL_ALLOW_LOOPBACK, "must be true or false".into()));
                false
            }
        };
        if problems.is_empty() { Ok(UrlPolicy::new(&hosts, allow_loopback)) } else { Err(problems) }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.iter().any(|a| match a.strip_prefix('.') {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => *a == host,
        })
    }

    /// Checks a URL before it is requested (the first one and each redirect target).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!("itemsUrl refused: scheme {:?} is not http(s)", url.scheme())));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(name)) => {
                let loopback_name = self.allow_loopback && name.eq_ignore_ascii_case("localhost");
                if !loopback_name && !self.host_allowed(name) {
                    return Err(Refused(format!("itemsUrl refused: host {name:?} is not in ITEMS_URL_ALLOWED_HOSTS")));
                }
                return Ok(());
            }
            None => return Err(Refused("itemsUrl refused: no host".into())),
        };
        // An address literal: no resolver sees it, so it is checked here.
        self.check_ip(ip)?;
        if !(self.allow_loopback && ip.is_loopback()) {
            return Err(Refused(format!(
                "itemsUrl refused: {ip} is an address, not a host in ITEMS_URL_ALLOWED_HOSTS"
            )));
        }
        Ok(())
    }

    /// Checks one address a connection would go to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        match classify(ip) {
            None => Ok(()),
            Some(Class::Loopback) if self.allow_loopback => Ok(()),
            Some(class) => Err(Refused(format!("itemsUrl refused: {ip} is a {} address", class.name()))),
        }
    }
}

/// What kind of non-public address an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Loopback,
    Private,
    LinkLocal,
    /// Cloud metadata and platform endpoints (169.254.169.254 is link-local too).
    Metadata,
    SharedOrReserved,
    Multicast,
    Unspecified,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Loopback => "loopback",
            Class::Private => "private",
            Class::LinkLocal => "link-local",
            Class::Metadata => "cloud metadata",
            Class::SharedOrReserved => "shared or reserved",
            Class::Multicast => "multicast",
            Class::Unspecified => "unspecified",
        }
    }
}

/// `None` for a public unicast address; otherwise what it is.
pub fn classify(ip: IpAddr) -> Option<Class> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    let [a, b, c, _] = ip.octets();
    // Azure's wire server / DNS (168.63.129.16), the metadata service everywhere
    // (169.254.169.254), Alibaba's (100.100.100.200).
    if ip == Ipv4Addr::new(168, 63, 129, 16)
        || ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
    {
        return Some(Class::Metadata);
    }
    if ip.is_unspecified() || a == 0 {
        return Some(Class::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Class::Loopback);
    }
    if ip.is_private() {
        return Some(Class::Private);
    }
    if ip.is_link_local() {
        return Some(Class::LinkLocal);
    }
    if ip.is_multicast() {
        return Some(Class::Multicast);
    }
    let shared = (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) || (a == 198 && b == 51 && c == 100) || (a == 203 && b == 0 && c == 113) // documentation
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved and broadcast
    shared.then_some(Class::SharedOrReserved)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Class> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let o = ip.octets();
        return classify_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Class::Metadata);
    }
    if ip.is_unspecified() {
        return Some(Class::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Class::Loopback);
    }
    if ip.is_multicast() {
        return Some(Class::Multicast);
    }
    if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return Some(Class::LinkLocal);
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some(Class::Private);
    }
    // IPv4-compatible (deprecated), documentation (2001:db8::/32), 6to4 and Teredo, which
    // tunnel to addresses that cannot be checked here.
    let reserved = (s[0..6] == [0, 0, 0, 0, 0, 0])
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] == 0);
    reserved.then_some(Class::SharedOrReserved)
}

/// The client's resolver: the system's, then every address checked; one refused address
/// refuses the name (a name that also points inside is not trusted with the others).
struct GuardedResolver {
    policy: Arc<UrlPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                if let Err(Refused(reason)) = policy.check_ip(addr.ip()) {
                    return Err(Box::new(Refused(format!("{reason} (resolved from {host:?})"))) as _);
                }
            }
            let out: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

/// The HTTP client and policy item sources are fetched with.
#[derive(Clone)]
pub struct ItemsHttp {
    pub client: reqwest::Client,
    pub policy: Arc<UrlPolicy>,
}

impl ItemsHttp {
    pub fn new(policy: UrlPolicy) -> Self {
        let policy = Arc::new(policy);
        let redirects = policy.clone();
        let client = meschain_tls::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(Refused(format!("itemsUrl refused: more than {MAX_REDIRECTS} redirects")));
                }
                match redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(Refused(reason)) => attempt.error(Refused(format!("{reason} (redirect)"))),
                }
            }))
            .build()
            .unwrap_or_default();
        ItemsHttp { client, policy }
    }
}

/// The refusal inside a client error, if that is why it failed.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn test_classify() {
        for (addr, class) in [
            ("169.254.169.254", Some(Class::Metadata)),
            ("168.63.129.16", Some(Class::Metadata)),
            ("169.254.1.1", Some(Class::LinkLocal)),
            ("10.1.2.3", Some(Class::Private)),
            ("172.16.0.1", Some(Class::Private)),
            ("172.31.255.255", Some(Class::Private)),
            ("192.168.1.1", Some(Class::Private)),
            ("127.0.0.1", Some(Class::Loopback)),
            ("127.9.9.9", Some(Class::Loopback)),
            ("0.0.0.0", Some(Class::Unspecified)),
            ("100.64.0.1", Some(Class::SharedOrReserved)),
            ("255.255.255.255", Some(Class::SharedOrReserved)),
            ("224.0.0.1", Some(Class::Multicast)),
            ("::1", Some(Class::Loopback)),
            ("::", Some(Class::Unspecified)),
            ("fe80::1", Some(Class::LinkLocal)),
            ("fd00::1", Some(Class::Private)),
            ("fd00:ec2::254", Some(Class::Metadata)),
            ("::ffff:169.254.169.254", Some(Class::Metadata)),
            ("::ffff:10.0.0.1", Some(Class::Private)),
            ("64:ff9b::a9fe:a9fe", Some(Class::Metadata)),
            ("2002:a00:1::", Some(Class::SharedOrReserved)),
            ("172.32.0.1", None),
            ("8.8.8.8", None),
            ("20.50.1.2", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(classify(ip(addr)), class, "{addr}");
        }
    }

    #[test]
    fn test_urls() {
        let p = UrlPolicy::new(&["catalog.example.com", "*.feeds.example"], false);
        let check = |u: &str| p.check_url(&url::Url::parse(u).unwrap()).map_err(|r| r.0);
        assert!(check("https://catalog.example.com/items").is_ok());
        assert!(check("https://CATALOG.example.com./items").is_ok());
        assert!(check("https://a.feeds.example/x").is_ok());
        assert!(check("https://feeds.example/x").unwrap_err().contains("not in ITEMS_URL_ALLOWED_HOSTS"));
        assert!(check("https://evil.example/x").unwrap_err().contains("not in ITEMS_URL_ALLOWED_HOSTS"));
        assert!(check("http://169.254.169.254/latest").unwrap_err().contains("cloud metadata"));
        assert!(check("http://[fe80::1]/x").unwrap_err().contains("link-local"));
        assert!(check("http://127.0.0.1:8080/x").unwrap_err().contains("loopback"));
        assert!(check("http://localhost:8080/x").unwrap_err().contains("not in ITEMS_URL_ALLOWED_HOSTS"));
        assert!(check("http://8.8.8.8/x").unwrap_err().contains("an address, not a host"));
        let dev = UrlPolicy::loopback_only();
        assert!(dev.check_url(&url::Url::parse("http://127.0.0.1:1/x").unwrap()).is_ok());
        assert!(dev.check_url(&url::Url::parse("http://localhost:1/x").unwrap()).is_ok());
        assert!(dev.check_url(&url::Url::parse("http://10.0.0.1/x").unwrap()).is_err());
        assert!(dev.check_ip(ip("169.254.169.254")).is_err());
    }

    #[test]
    fn test_settings() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(UrlPolicy::from_lookup(&get(&[])).unwrap(), UrlPolicy::default());
        let p = UrlPolicy::from_lookup(&get(&[(ITEMS_URL_ALLOWED_HOSTS, " a.example , *.b.example ")])).unwrap();
        assert!(p.host_allowed("a.example") && p.host_allowed("x.b.example") && !p.host_allowed("b.example"));
        let err = UrlPolicy::from_lookup(&get(&[
            (ITEMS_URL_ALLOWED_HOSTS, "10.0.0.1,ok.example,bad host"),
            (ITEMS_URL_ALLOW_LOOPBACK, "yes"),
        ]))
        .unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
    }
}
