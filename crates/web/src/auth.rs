//! The admin token and the checks every admin request passes.
//!
//! - The token is `CODECLAB_ADMIN_TOKEN` when set; otherwise the first start generates a random
//!   one, prints it once, and stores only its SHA-256 (setting `admin_token_sha256`). Nothing
//!   keeps the token itself.
//! - A request presents it in `Authorization: Bearer TOKEN` or `X-Codeclab-Token: TOKEN`; never
//!   in a cookie, a query or a form field (a cross-site form cannot set either header).
//! - A request a browser marks as cross-site is refused whatever it carries: `Sec-Fetch-Site`
//!   must be `same-origin` or `none` when present, and `Origin`, when present, must be this
//!   server's own (its `Host`). Clients that send neither (curl, scripts) need the token only.
//! - The actor recorded with the action is `X-Codeclab-Actor` (printable, at most 64
//!   characters) or `admin`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use codeclab_lab::Store;
use codeclab_lab::store::StoreError;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::WebError;

/// The setting that holds the token's SHA-256 (hex).
pub const TOKEN_HASH_SETTING: &str = "admin_token_sha256";
/// The environment variable that sets the token.
pub const TOKEN_ENV: &str = "CODECLAB_ADMIN_TOKEN";

/// The admin token, known only by its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    sha256: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(sha256 hidden)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{TOKEN_ENV} is empty")]
    EmptyEnv,
    #[error("setting {TOKEN_HASH_SETTING} is not a SHA-256 in hex")]
    BadStoredHash,
    #[error("no random source: {0}")]
    Random(String),
}

impl AdminToken {
    /// The token whose secret is `secret`.
    pub fn from_secret(secret: &str) -> AdminToken {
        AdminToken {
            sha256: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// The lab's token: from `CODECLAB_ADMIN_TOKEN`, else the stored hash, else a new random
    /// token whose hash is stored; the new token is returned beside it, to be shown once.
    pub async fn ensure(store: &Store) -> Result<(AdminToken, Option<String>), TokenError> {
        if let Ok(secret) = std::env::var(TOKEN_ENV) {
            if secret.is_empty() {
                return Err(TokenError::EmptyEnv);
            }
            return Ok((AdminToken::from_secret(&secret), None));
        }
        if let Some(token) = AdminToken::stored(store).await? {
            return Ok((token, None));
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| TokenError::Random(e.to_string()))?;
        let secret = hex::encode(random);
        let token = AdminToken::from_secret(&secret);
        let hash = serde_json::Value::String(hex::encode(token.sha256));
        if store
            .put_setting_if_absent(TOKEN_HASH_SETTING, &hash)
            .await?
        {
            return Ok((token, Some(secret)));
        }
        // Another process starting at the same time stored its token first: that one is the
        // lab's.
        let token = AdminToken::stored(store)
            .await?
            .ok_or(TokenError::BadStoredHash)?;
        Ok((token, None))
    }

    async fn stored(store: &Store) -> Result<Option<AdminToken>, TokenError> {
        let Some(value) = store.setting(TOKEN_HASH_SETTING).await? else {
            return Ok(None);
        };
        let sha256 = value
            .as_str()
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or(TokenError::BadStoredHash)?;
        Ok(Some(AdminToken { sha256 }))
    }

    /// Whether `presented` is the token (compared as hashes, in constant time).
    pub fn verify(&self, presented: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        hash.iter()
            .zip(self.sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// An admin request that passed the checks, and who made it.
pub struct Admin {
    pub actor: String,
}

impl Admin {
    /// `admin:<actor>`, as lab statuses record who set them.
    pub fn by(&self) -> String {
        format!("admin:{}", self.actor)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Refuses requests a browser marks as coming from another site.
fn check_same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    if let Some(site) = header(headers, "sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return Err(WebError::Forbidden(format!(
            "cross-site request refused (Sec-Fetch-Site: {site})"
        )));
    }
    if let Some(origin) = headers.get("origin") {
        let host = header(headers, "host").unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| !host.is_empty() && rest == host);
        if !own {
            return Err(WebError::Forbidden(
                "cross-origin request refused (Origin is not this server)".into(),
            ));
        }
    }
    Ok(())
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header(headers, "x-codeclab-token"))
        .map(str::trim)
}

fn actor(headers: &HeaderMap) -> String {
    header(headers, "x-codeclab-actor")
        .map(str::trim)
        .filter(|a| !a.is_empty() && a.len() <= 64 && a.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("admin")
        .to_string()
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        check_same_origin(&parts.headers)?;
        match presented_token(&parts.headers) {
            None => Err(WebError::Forbidden(
                "admin token required (Authorization: Bearer TOKEN or X-Codeclab-Token)".into(),
            )),
            Some(token) if state.token.verify(token) => Ok(Admin {
                actor: actor(&parts.headers),
            }),
            Some(_) => Err(WebError::Forbidden("wrong admin token".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_token_is_checked_by_its_hash() {
        let token = AdminToken::from_secret("s3cret");
        assert!(token.verify("s3cret"));
        assert!(!token.verify("s3cre"));
        assert!(!token.verify(""));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn same_origin_and_headerless_clients_pass_cross_site_requests_do_not() {
        assert!(check_same_origin(&headers(&[])).is_ok());
        assert!(
            check_same_origin(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ]))
            .is_ok()
        );
        assert!(
            check_same_origin(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ]))
            .is_err()
        );
        assert!(check_same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(check_same_origin(&headers(&[("origin", "null")])).is_err());
    }

    #[test]
    fn the_actor_header_is_bounded() {
        assert_eq!(actor(&headers(&[("x-codeclab-actor", "alice")])), "alice");
        assert_eq!(actor(&headers(&[])), "admin");
        let long = "a".repeat(65);
        assert_eq!(actor(&headers(&[("x-codeclab-actor", &long)])), "admin");
    }
}
