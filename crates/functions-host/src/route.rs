//! ASP.NET-style route templates of HTTP triggers (`orders/{id:int}/{*rest}`): parsed when the
//! app is loaded (so a bad route is a configuration error) and matched per request.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param { name: String, optional: bool, catch_all: bool, int: bool },
}

/// A route template such as `orders/{id:int}/{*rest}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTemplate {
    segments: Vec<Segment>,
}

impl RouteTemplate {
    pub fn parse(route: &str) -> Result<RouteTemplate, String> {
        let mut segments = Vec::new();
        let trimmed = route.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(RouteTemplate { segments });
        }
        let parts: Vec<&str> = trimmed.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(format!("empty segment in route {route:?}"));
            }
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (inner, catch_all) = match inner.strip_prefix('*') {
                    Some(r) => (r, true),
                    None => (inner, false),
                };
                let (inner, optional) = match inner.strip_suffix('?') {
                    Some(r) => (r, true),
                    None => (inner, false),
                };
                let (name, constraint) = inner.split_once(':').unwrap_or((inner, ""));
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad parameter {part:?} in route {route:?}"));
                }
                if catch_all && i + 1 != parts.len() {
                    return Err(format!("catch-all {part:?} must be the last segment"));
                }
                segments.push(Segment::Param {
                    name: name.to_string(),
                    optional: optional || catch_all,
                    catch_all,
                    int: constraint.eq_ignore_ascii_case("int") || constraint.eq_ignore_ascii_case("long"),
                });
            } else if part.contains('{') || part.contains('}') {
                return Err(format!("unsupported segment {part:?} in route {route:?}"));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(RouteTemplate { segments })
    }

    /// Route values when `path` (without prefix, no leading slash) matches.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = if path.is_empty() { vec![] } else { path.split('/').collect() };
        let mut params = BTreeMap::new();
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    if !parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(l)) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Param { name, optional, catch_all, int } => {
                    if *catch_all {
                        let rest = parts[i.min(parts.len())..].join("/");
                        params.insert(name.clone(), decode(&rest));
                        i = parts.len();
                        continue;
                    }
                    match parts.get(i) {
                        Some(p) if !p.is_empty() => {
                            if *int && p.parse::<i64>().is_err() {
                                return None;
                            }
                            params.insert(name.clone(), decode(p));
                            i += 1;
                        }
                        _ if *optional => {}
                        _ => return None,
                    }
                }
            }
        }
        (i == parts.len()).then_some(params)
    }

    /// Literal segments first, then parameters, then catch-alls (as ASP.NET orders routes).
    pub(crate) fn precedence(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Param { catch_all: false, .. } => 1,
                Segment::Param { catch_all: true, .. } => 2,
            })
            .collect()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(s: &str) -> RouteTemplate {
        RouteTemplate::parse(s).unwrap()
    }

    #[test]
    fn test_route_matching() {
        assert_eq!(template("negotiate").matches("negotiate"), Some(BTreeMap::new()));
        assert_eq!(template("negotiate").matches("NEGOTIATE"), Some(BTreeMap::new()));
        assert!(template("negotiate").matches("negotiate/x").is_none());
        let m = template("orders/{id:int}").matches("orders/42").unwrap();
        assert_eq!(m["id"], "42");
        assert!(template("orders/{id:int}").matches("orders/abc").is_none());
        assert!(template("orders/{id?}").matches("orders").is_some());
        let m = template("files/{*path}").matches("files/a/b%20c").unwrap();
        assert_eq!(m["path"], "a/b c");
        assert!(RouteTemplate::parse("a/{*x}/b").is_err());
        assert!(RouteTemplate::parse("a/{}").is_err());
        assert!(RouteTemplate::parse("a//b").is_err());
    }
}
