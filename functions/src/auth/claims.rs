//! A verified token's claims, as far as identity cares, and the [`Identity`] they make: shared
//! by the jsonwebtoken path (`jwt.rs`) and the HS256 one (`hs256.rs`).

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{AuthError, Identity, IdentitySource};

/// A claim's value, as far as identity cares: a string, the strings of an array, or something
/// else.
#[derive(Default)]
pub enum Claim {
    Str(String),
    /// An array; `complete` when every item was a string (the others are skipped).
    Strings {
        strings: Vec<String>,
        complete: bool,
    },
    #[default]
    Other,
}

impl Claim {
    /// `roles` and `role` hold one role or an array of them; what is not a string grants nothing.
    fn into_roles(self) -> Vec<String> {
        match self {
            Claim::Str(role) => vec![role],
            Claim::Strings { strings, .. } => strings,
            Claim::Other => Vec::new(),
        }
    }

    /// `iss` and `aud`: one name or an array of names, none other than strings.
    pub fn names(&self) -> Option<impl Iterator<Item = &str>> {
        match self {
            Claim::Str(name) => Some(std::slice::from_ref(name).iter().map(String::as_str)),
            Claim::Strings { strings, complete: true } => Some(strings.iter().map(String::as_str)),
            _ => None,
        }
    }
}

// A hand-written visitor rather than `#[serde(untagged)]`, which buffers each value into an
// intermediate tree before trying the variants: these claims are read on every negotiate.
impl<'de> Deserialize<'de> for Claim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ClaimVisitor)
    }
}

struct ClaimVisitor;

impl<'de> Visitor<'de> for ClaimVisitor {
    type Value = Claim;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Claim, E> {
        Ok(Claim::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Claim, E> {
        Ok(Claim::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Claim, A::Error> {
        let mut strings = Vec::new();
        let mut complete = true;
        while let Some(item) = seq.next_element::<Claim>()? {
            match item {
                Claim::Str(s) => strings.push(s),
                _ => complete = false,
            }
        }
        Ok(Claim::Strings { strings, complete })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claim, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Claim::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Claim, E> {
        Ok(Claim::Other)
    }
}

/// The identity a verified token's claims make: `sub` its user id (not blank), `roles` and
/// `role` its roles, each once.
pub fn identity(sub: Option<String>, roles: Claim, role: Claim) -> Result<Identity, AuthError> {
    let user_id = sub.filter(|s| !s.trim().is_empty()).ok_or(AuthError::NoUserId)?;
    let mut all = Vec::new();
    for role in roles.into_roles().into_iter().chain(role.into_roles()) {
        push_role(&mut all, role);
    }
    Ok(Identity { user_id, roles: all, source: IdentitySource::BearerToken })
}

fn push_role(roles: &mut Vec<String>, role: String) {
    if !role.is_empty() && !roles.contains(&role) {
        roles.push(role);
    }
}
