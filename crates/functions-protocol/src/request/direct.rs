//! The envelope's HTTP binding read straight from the invocation body into an [`HttpRequest`].
//!
//! The reference reader parses the whole envelope into a `serde_json::Value` tree (the URL,
//! `Params`, `Identities`, `Metadata`: every key and string allocated) and then builds the
//! request from that tree: 13 % of a SignalR upstream invocation's CPU in a profile. This
//! reader keeps only what the request needs: header names and values go straight into the
//! `HeaderMap`, the body string becomes the body, and the rest is skipped without being kept.
//!
//! It handles the shape the host sends and nothing else: each key it reads appears once
//! (case-insensitively), no header name repeats, the body is a string. For anything else, and
//! for every error, [`read`] answers `None` and the caller takes the reference path, which
//! then resolves duplicate keys and names the error exactly as before. So the two readers
//! accept and refuse the same envelopes, and a test holds them to it. Skipped values are still
//! parsed with the same nesting limit, so they are refused alike too.

use std::fmt;

use http::header::{Entry, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{HeaderBudget, HttpRequest, body_from_text, parse_method, query_pairs};

/// The request in `Data.<binding>` of the envelope `body`, or `None` when the reference
/// reader must decide (an unusual shape, a duplicate key, any error).
pub(super) fn read(body: &[u8], binding: &str) -> Option<HttpRequest> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = de.deserialize_map(Envelope { binding }).ok()??;
    de.end().ok()?;
    fields.finish()
}

/// What the request object held, as read.
#[derive(Default)]
struct Fields {
    method: Option<Method>,
    headers: Option<HeaderMap>,
    query: Option<Value>,
    body: Option<Option<String>>,
}

impl Fields {
    fn finish(self) -> Option<HttpRequest> {
        let method = self.method?;
        let headers = self.headers.unwrap_or_default();
        let query = query_pairs(self.query.unwrap_or(Value::Null)).ok()?;
        let body = match self.body.flatten() {
            Some(text) => body_from_text(text, &headers).ok()?,
            None => Default::default(),
        };
        Some(HttpRequest { method, query, headers, body })
    }
}

/// Stops this reader: the reference reader takes over.
fn give_up<E: de::Error>() -> E {
    E::custom("left to the reference reader")
}

/// Which of `candidates` `key` names, case-insensitively as the host's serialiser reads them.
fn which(key: &str, candidates: &[&str]) -> Option<usize> {
    candidates.iter().position(|c| key.eq_ignore_ascii_case(c))
}

/// A map key, classified by [`which`] without keeping it.
struct Key<'c>(&'c [&'c str]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(which(key, self.0))
    }
}

/// Any JSON value, parsed and dropped. Unlike `serde::de::IgnoredAny`, which serde_json skips
/// without a nesting limit, each level goes through `deserialize_any`, so a value nested too
/// deeply is refused here exactly as the reference reader refuses it.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// The top level: `Data` is read, `Metadata` must be an object or null, the rest is skipped.
/// `None` when `Data` is null or absent.
struct Envelope<'b> {
    binding: &'b str,
}

impl<'de> Visitor<'de> for Envelope<'_> {
    type Value = Option<Fields>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an invocation envelope")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = None;
        let mut data_seen = false;
        while let Some(key) = map.next_key_seed(Key(&["Data", "Metadata"]))? {
            match key {
                Some(0) if data_seen => return Err(give_up()),
                Some(0) => {
                    data_seen = true;
                    data = map.next_value_seed(Data { binding: self.binding })?;
                }
                Some(_) => {
                    map.next_value_seed(ObjectOrNull)?;
                }
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(data)
    }
}

/// `Metadata`, which HTTP functions do not read, but which must be an object or null.
struct ObjectOrNull;

impl<'de> DeserializeSeed<'de> for ObjectOrNull {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectOrNull {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Skip.visit_map(map).map(drop)
    }
}

/// `Data`: the one key naming the binding is read, the others skipped. `None` when null.
struct Data<'b> {
    binding: &'b str,
}

impl<'de> DeserializeSeed<'de> for Data<'_> {
    type Value = Option<Fields>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Data<'_> {
    type Value = Option<Fields>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the invocation's bindings")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = None;
        while let Some(key) = map.next_key_seed(Key(&[self.binding]))? {
            match key {
                Some(_) if request.is_some() => return Err(give_up()),
                Some(_) => request = Some(map.next_value_seed(Request)?),
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(request)
    }
}

/// The HTTP request object: `Method`, `Headers`, `Query` and `Body`; `Url`, `Params` and
/// `Identities` are skipped.
struct Request;

impl<'de> DeserializeSeed<'de> for Request {
    type Value = Fields;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Request {
    type Value = Fields;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an HTTP request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key_seed(Key(&["Method", "Headers", "Query", "Body"]))? {
            match key {
                Some(0) if fields.method.is_none() => fields.method = Some(map.next_value_seed(MethodName)?),
                Some(1) if fields.headers.is_none() => {
                    fields.headers = Some(map.next_value_seed(HeaderSet)?);
                }
                Some(2) if fields.query.is_none() => fields.query = Some(map.next_value()?),
                Some(3) if fields.body.is_none() => fields.body = Some(map.next_value_seed(Body)?),
                Some(_) => return Err(give_up()),
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// `Method`, parsed as [`parse_method`] parses it.
struct MethodName;

impl<'de> DeserializeSeed<'de> for MethodName {
    type Value = Method;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Method, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for MethodName {
    type Value = Method;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an HTTP method")
    }
    fn visit_str<E: de::Error>(self, method: &str) -> Result<Method, E> {
        parse_method(method).ok_or_else(give_up)
    }
}

/// `Body`: a string or null. An object body (JSON the host parsed) goes to the reference
/// reader, which writes it back as text.
struct Body;

impl<'de> DeserializeSeed<'de> for Body {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Body {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Some(s))
    }
}

/// `Headers`: an object of names to a string or an array of strings, or null.
struct HeaderSet;

impl<'de> DeserializeSeed<'de> for HeaderSet {
    type Value = HeaderMap;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<HeaderMap, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeaderSet {
    type Value = HeaderMap;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the request headers")
    }
    fn visit_unit<E>(self) -> Result<HeaderMap, E> {
        Ok(HeaderMap::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderMap, A::Error> {
        let mut headers = HeaderMap::new();
        let mut budget = HeaderBudget::default();
        while let Some(name) = map.next_key_seed(Name)? {
            // Two keys for one name ("X-A" and "x-a"): the reference reader orders their
            // values by key, so it decides.
            let entry = match headers.try_entry(name) {
                Ok(vacant @ Entry::Vacant(_)) => vacant,
                _ => return Err(give_up()),
            };
            let mut slot = Slot { budget: &mut budget, entry: Some(entry) };
            map.next_value_seed(Values(&mut slot))?;
        }
        Ok(headers)
    }
}

/// A header name, checked as `HeaderName` checks it.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = HeaderName;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<HeaderName, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Name {
    type Value = HeaderName;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a header name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<HeaderName, E> {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| give_up())
    }
}

/// Where one header's values go: its entry in the map, which the first value creates, so
/// the name is hashed once and never copied.
struct Slot<'a, 'm> {
    budget: &'a mut HeaderBudget,
    /// Vacant until the first value; `None` only after a value could not be added.
    entry: Option<Entry<'m, HeaderValue>>,
}

impl Slot<'_, '_> {
    fn add<E: de::Error>(&mut self, value: &str) -> Result<(), E> {
        let value = self.budget.value(value).map_err(|_| give_up())?;
        let filled = match self.entry.take() {
            Some(Entry::Occupied(mut entry)) => {
                entry.append(value);
                entry
            }
            // `HeaderMap` panics past 32,768 names; its fallible API reports that instead.
            Some(Entry::Vacant(entry)) => entry.try_insert_entry(value).map_err(|_| give_up())?,
            None => return Err(give_up()),
        };
        self.entry = Some(Entry::Occupied(filled));
        Ok(())
    }
}

/// One header's values: a string or an array of strings.
struct Values<'s, 'a, 'm>(&'s mut Slot<'a, 'm>);

impl<'de> DeserializeSeed<'de> for Values<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Values<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.0.add(value)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(One(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One header value inside an array: a string only.
struct One<'s, 'a, 'm>(&'s mut Slot<'a, 'm>);

impl<'de> DeserializeSeed<'de> for One<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for One<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a header value")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.0.add(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{EnvelopeError, InvocationRequest};

    /// The reference reader: the whole envelope as a `Value` tree, then the request from it.
    fn reference(body: &[u8], binding: &str) -> Result<HttpRequest, EnvelopeError> {
        InvocationRequest::parse(body).and_then(|e| HttpRequest::from_envelope(binding, e.binding(binding)?))
    }

    fn assert_same(direct: &HttpRequest, reference: &HttpRequest, case: &str) {
        assert_eq!(direct.method, reference.method, "{case}");
        assert_eq!(direct.query, reference.query, "{case}");
        assert_eq!(direct.headers, reference.headers, "{case}");
        assert_eq!(direct.body, reference.body, "{case}");
    }

    /// Checks one envelope; true when this reader answered it.
    fn check(body: &str, binding: &str) -> bool {
        let expected = reference(body.as_bytes(), binding);
        match read(body.as_bytes(), binding) {
            Some(direct) => {
                let expected = expected.unwrap_or_else(|e| panic!("read {body:?}, which the reference refuses: {e}"));
                assert_same(&direct, &expected, body);
                true
            }
            None => {
                let combined = HttpRequest::from_invocation(body.as_bytes(), binding);
                match (&combined, &expected) {
                    (Ok(a), Ok(b)) => assert_same(a, b, body),
                    (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err(), "{body}"),
                }
                false
            }
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// A request object from its parts, rotated so fields come in different orders.
    fn request(parts: &[&str], rotate: usize) -> String {
        let mut parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        let n = parts.len().max(1);
        parts.rotate_left(rotate % n);
        format!("{{{}}}", parts.join(","))
    }

    const METHODS: &[&str] = &[
        "",
        r#""Method":"POST""#,
        r#""method":"get""#,
        r#""METHOD":"Patch""#,
        r#""Method":"B@D""#,
        r#""Method":5"#,
        r#""Method":null"#,
        r#""Method":"GET","method":"POST""#,
    ];
    const HEADERS: &[&str] = &[
        "",
        r#""Headers":null"#,
        r#""Headers":{}"#,
        r#""Headers":{"Content-Type":["application/json"],"X-A":["1","2"],"X-ASRS-Hub":"h"}"#,
        r#""headers":{"x-a":"1"}"#,
        r#""Headers":{"X-A":["1"],"x-a":["2"]}"#,
        r#""Headers":{"x-a":["1"],"x-a":["2"]}"#,
        r#""Headers":{"x-a":[],"x-a":["2"]}"#,
        r#""Headers":{"x-a":["1"],"x-a":[]}"#,
        r#""Headers":{"bad name":["x"]}"#,
        r#""Headers":{"x":["a\nb"]}"#,
        r#""Headers":{"x":[1]}"#,
        r#""Headers":{"x":[["a"]]}"#,
        r#""Headers":{"x":5}"#,
        r#""Headers":{"x":null}"#,
        r#""Headers":[]"#,
        r#""Headers":"x""#,
        r#""Headers":{"Content-Type":"application/octet-stream"}"#,
        r#""Headers":{"content-type":["MULTIPART/form-data"]}"#,
        r#""Headers":{},"HEADERS":{}"#,
    ];
    const QUERIES: &[&str] = &[
        "",
        r#""Query":{}"#,
        r#""Query":"{}""#,
        r#""Query":{"b":"2","a":"1"}"#,
        r#""query":{"a":null}"#,
        r#""Query":{"a":1}"#,
        r#""Query":5"#,
        r#""Query":"not json""#,
        r#""Query":"null""#,
        r#""Query":"\"{}\"""#,
        r#""Query":null"#,
        r#""Query":{"a":"1","a":"2"}"#,
    ];
    const BODIES: &[&str] = &[
        "",
        r#""Body":null"#,
        r#""Body":"text""#,
        r#""Body":"{\"type\":1,\"target\":\"Ping\"}""#,
        r#""Body":"AAEC""#,
        r#""Body":"!!""#,
        r#""Body":{"b":1,"a":2}"#,
        r#""Body":[1]"#,
        r#""Body":5"#,
        r#""body":"x""#,
        r#""Body":"x","BODY":"y""#,
    ];

    /// Every combination of the request's fields, each in several orders and beside fields
    /// that are skipped, must be read as the reference reads it or left to it; and the
    /// usual shapes must be read here, or the test would pass by leaving everything.
    #[test]
    fn test_outcomes_are_the_reference_readers() {
        let deep_ok = format!(r#""Params":{}"#, nested(120));
        let too_deep = format!(r#""Params":{}"#, nested(130));
        let extras = [
            "",
            r#""Url":"http://localhost:7071/api/x""#,
            r#""Identities":[{"Claims":[{"Issuer":"LOCAL AUTHORITY","Properties":{}}],"Label":null}]"#,
            r#""Params":1e400"#,
            &deep_ok,
            &too_deep,
        ];
        let (mut direct, mut total) = (0, 0);
        let mut i = 0usize;
        for method in METHODS {
            for headers in HEADERS {
                for query in QUERIES {
                    for body in BODIES {
                        i += 1;
                        let extra = extras[i % extras.len()];
                        let req = request(&[method, headers, query, body, extra], i);
                        let envelope = format!(r#"{{"Data":{{"req":{req}}},"Metadata":{{}}}}"#);
                        total += 1;
                        direct += usize::from(check(&envelope, "req"));
                    }
                }
            }
        }
        assert_eq!(total, METHODS.len() * HEADERS.len() * QUERIES.len() * BODIES.len());
        // Read here: the combinations with a valid method, headers without a repeated name, a
        // valid query, a body that is a string valid for its content type or null, no field
        // twice, and a skipped field that is valid JSON (4 of the 6). A change that leaves
        // more to the reference reader shows here.
        assert_eq!(direct, 804, "read here, of {total}");
    }

    /// The envelope around the request: duplicate and case-variant keys, null and wrong
    /// types, `Metadata`, trailing bytes, and each prefix of a real envelope.
    #[test]
    fn test_envelope_shapes_are_the_reference_readers() {
        let r = r#"{"Method":"POST","Headers":{"X-A":["1"]},"Body":"b"}"#;
        let shapes = [
            (format!(r#"{{"Data":{{"req":{r}}},"Metadata":{{}}}}"#), true),
            (format!(r#"{{"data":{{"REQ":{r}}}}}"#), true),
            (format!(r#"{{"Metadata":{{"sys":{{"a":[1,2]}}}},"Data":{{"other":[1],"req":{r}}},"Extra":[[]]}}"#), true),
            (format!(r#"{{"metadata":null,"Data":{{"req":{r}}}}}   "#), true),
            (format!(r#"{{"Data":{{"req":{r},"Req":{r}}}}}"#), false),
            (format!(r#"{{"Data":{{"req":{r},"req":{r}}}}}"#), false),
            (format!(r#"{{"Data":{{"req":{r}}},"data":{{"req":{r}}}}}"#), false),
            (format!(r#"{{"Data":{{"req":{r}}},"Data":null}}"#), false),
            (format!(r#"{{"Metadata":[],"Data":{{"req":{r}}}}}"#), false),
            (format!(r#"{{"Metadata":{{}},"METADATA":5,"Data":{{"req":{r}}}}}"#), false),
            (format!(r#"{{"Data":{{"request":{r}}}}}"#), false),
            (format!(r#"[{{"Data":{{"req":{r}}}}}]"#), false),
            (format!(r#"{{"Data":{{"req":{r}}}}} x"#), false),
            (format!(r#"{{"Data":{{"req":{r}}}"#), false),
            (format!(r#"{{"Data":{{"req":{r}}},"Extra":{}}}"#, nested(130)), false),
            (r#"{"Data":null}"#.to_string(), false),
            (r#"{"Data":"x"}"#.to_string(), false),
            (r#"{"Data":{"req":null}}"#.to_string(), false),
            (r#"{"Data":{"req":"x"}}"#.to_string(), false),
            ("{}".to_string(), false),
            (String::new(), false),
        ];
        for (envelope, read_here) in &shapes {
            assert_eq!(check(envelope, "req"), *read_here, "{envelope}");
        }
        let fixture =
            std::fs::read_to_string(format!("{}/http-nonforwarded-fixture-azfunc.json", crate::testing::HOST_FIXTURES))
                .unwrap();
        assert!(check(&fixture, "req"), "the host's own payload is read here");
        for end in 0..fixture.len() {
            if fixture.is_char_boundary(end) {
                check(&fixture[..end], "req");
            }
        }
        // Bytes that are not UTF-8 inside a string.
        let mut bytes = format!(r#"{{"Data":{{"req":{r}}}}}"#).into_bytes();
        let b = bytes.iter().position(|&c| c == b'b').unwrap();
        bytes[b] = 0xff;
        assert!(read(&bytes, "req").is_none());
        assert_eq!(reference(&bytes, "req").err(), Some(EnvelopeError::NotJson));
    }

    /// Past the header limit the reference reader names the refusal.
    #[test]
    fn test_header_limit_is_left_to_the_reference() {
        let values = vec!["\"v\""; crate::request::MAX_ENVELOPE_HEADERS + 1].join(",");
        let body = format!(r#"{{"Data":{{"req":{{"Method":"GET","Headers":{{"x":[{values}]}}}}}}}}"#);
        assert!(read(body.as_bytes(), "req").is_none());
        assert_eq!(
            HttpRequest::from_invocation(body.as_bytes(), "req").unwrap_err(),
            EnvelopeError::TooManyHeaders(crate::request::MAX_ENVELOPE_HEADERS)
        );
    }
}
