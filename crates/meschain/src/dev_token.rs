//! Development login tokens for `meschain token`: HS256 JWTs signed with the local settings'
//! `AUTH_JWT_SECRET`, with `iss`/`aud` from `AUTH_ISSUER`/`AUTH_AUDIENCE`, valid one hour.
//! Where a setting is a Key Vault reference, its value from `secrets` is used, so tokens follow
//! a rotated secret; like any issuer, they switch once the handler has read it too
//! ([`meschain_secrets::Secrets::signing_value`]).
//!
//! They are this app's login tokens (the handler's `auth` module verifies them), so they live
//! here rather than in the app-agnostic local Functions host.

use meschain_functions_host::config::Settings;
use meschain_model::settings::{AUTH_AUDIENCE, AUTH_ISSUER, AUTH_JWT_SECRET};
use meschain_secrets::Secrets;
use serde::Serialize;

pub const LIFETIME_SECS: u64 = 3600;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    roles: &'a [String],
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{file}: Values.{setting}: missing (needed to mint a development token)")]
    MissingSetting { file: String, setting: &'static str },
    #[error("the user id must not be empty")]
    EmptyUser,
    #[error("cannot sign: {0}")]
    Sign(String),
}

pub fn mint(
    settings: &Settings,
    secrets: &Secrets,
    user: &str,
    roles: &[String],
    now: u64,
) -> Result<String, TokenError> {
    if user.trim().is_empty() {
        return Err(TokenError::EmptyUser);
    }
    let file = settings.file.clone().unwrap_or_else(|| "local.settings.json".into());
    let get = |setting: &'static str| {
        // An issuer's view of a vault reference: the new secret only once the handler has it.
        secrets
            .signing_value(setting)
            .map(|v| v.expose().to_owned())
            .or_else(|| settings.values.get(setting).cloned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TokenError::MissingSetting { file: file.clone(), setting })
    };
    let secret = get(AUTH_JWT_SECRET)?;
    let claims = Claims {
        sub: user,
        roles,
        iss: &get(AUTH_ISSUER)?,
        aud: &get(AUTH_AUDIENCE)?,
        iat: now,
        nbf: now,
        exp: now + LIFETIME_SECS,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| TokenError::Sign(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_mint_and_validate() {
        let mut s = Settings::default();
        s.values.insert(AUTH_JWT_SECRET.into(), "0123456789abcdef0123456789abcdef".into());
        s.values.insert(AUTH_ISSUER.into(), "meschain-dev".into());
        s.values.insert(AUTH_AUDIENCE.into(), "meschain".into());
        let now = meschain_model::clock::now_secs();
        let t = mint(&s, &Secrets::empty(), "alice", &["admin".to_string()], now).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&["meschain"]);
        v.set_issuer(&["meschain-dev"]);
        let d = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
            &v,
        )
        .unwrap();
        assert_eq!(d.claims["sub"], "alice");
        assert_eq!(d.claims["roles"][0], "admin");
        assert_eq!(d.claims["exp"].as_u64().unwrap() - d.claims["iat"].as_u64().unwrap(), 3600);
        s.values.remove(AUTH_ISSUER);
        let e = mint(&s, &Secrets::empty(), "alice", &[], now).unwrap_err().to_string();
        assert!(e.contains("AUTH_ISSUER"), "{e}");
    }
}
