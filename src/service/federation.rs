//! Signing in with Google, Microsoft, GitHub or any OpenID Connect issuer.
//!
//! OpenID Connect providers (Google, Microsoft, a generic issuer) use the authorization code
//! flow with PKCE and a nonce, and the ID token is verified by the `openidconnect` crate
//! (signature against the issuer's keys, audience, expiry, nonce). GitHub speaks plain OAuth 2.0
//! (`oauth2` crate, also with PKCE): its user API names the account's id and its addresses, and
//! only the primary address, verified by GitHub, is taken.
//!
//! Who proved they own an email decides everything (README, "Security model"): a provider's
//! answer counts only with a verified address. The identity is then remembered as (provider,
//! subject), so a later change of address at the provider never moves it to another account.
//!
//! The flow is bound to the browser that started it: a short-lived cookie holds a secret whose
//! digest keys the flow's row, which holds the `state`'s digest, the nonce and the PKCE verifier.
//! The callback must come back with that cookie and that `state`; the row is used once, so a
//! replayed callback (the same code, the same state) finds nothing.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{DynStore, Flow};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use std::collections::HashMap;
use tokio::sync::Mutex;

/// How long a sign-in may take at the provider.
pub const FLOW_MICROS: i64 = 10 * 60 * 1_000_000;
/// How long discovered provider metadata (endpoints, keys) is trusted before it is read again.
const METADATA_MICROS: i64 = 60 * 60 * 1_000_000;
/// The flow cookie's name.
pub const FLOW_COOKIE: &str = "scimd_flow";
/// The placeholder in Microsoft's multi-tenant issuer.
const TENANT: &str = "{tenantid}";

/// Which protocol and rules a provider follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Google,
    Microsoft,
    Github,
    Oidc,
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// What people see on the button.
    pub label: String,
    pub client_id: String,
    pub client_secret: String,
    /// OIDC: the issuer (discovery at `{issuer}/.well-known/openid-configuration`; for
    /// Microsoft it may carry `{tenantid}`, see [`ProviderConfig::discovery_base`]). GitHub: the
    /// site that serves `/login/oauth/authorize` and `/login/oauth/access_token`.
    pub issuer: String,
    /// GitHub's API (`/user`, `/user/emails`).
    pub api_url: Option<String>,
}

impl ProviderConfig {
    /// The path segment that names the provider: `/auth/{name}/start`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
            ProviderKind::Github => "github",
            ProviderKind::Oidc => "oidc",
        }
    }

    pub fn google(client_id: String, client_secret: String, issuer: Option<String>) -> Self {
        ProviderConfig {
            kind: ProviderKind::Google,
            label: "Google".into(),
            client_id,
            client_secret,
            issuer: issuer.unwrap_or_else(|| "https://accounts.google.com".into()),
            api_url: None,
        }
    }

    /// Microsoft Entra ID. `tenant` is a tenant id (GUID), or `common` / `organizations`
    /// (any work account): their discovery documents name the issuer with a `{tenantid}`
    /// placeholder, which each token's `tid` fills in (see [`check_issuer`]).
    pub fn microsoft(
        client_id: String,
        client_secret: String,
        tenant: &str,
        issuer: Option<String>,
    ) -> Self {
        ProviderConfig {
            kind: ProviderKind::Microsoft,
            label: "Microsoft".into(),
            client_id,
            client_secret,
            issuer: issuer
                .unwrap_or_else(|| format!("https://login.microsoftonline.com/{tenant}/v2.0")),
            api_url: None,
        }
    }

    pub fn github(
        client_id: String,
        client_secret: String,
        url: Option<String>,
        api: Option<String>,
    ) -> Self {
        ProviderConfig {
            kind: ProviderKind::Github,
            label: "GitHub".into(),
            client_id,
            client_secret,
            issuer: url.unwrap_or_else(|| "https://github.com".into()),
            api_url: Some(api.unwrap_or_else(|| "https://api.github.com".into())),
        }
    }

    pub fn oidc(label: String, client_id: String, client_secret: String, issuer: String) -> Self {
        ProviderConfig {
            kind: ProviderKind::Oidc,
            label,
            client_id,
            client_secret,
            issuer,
            api_url: None,
        }
    }

    fn base(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}

/// Why a sign-in was refused. Each becomes a page that tells the person what happened.
#[derive(Debug)]
pub enum Refusal {
    /// No such provider is configured.
    Unknown,
    /// The flow cookie is missing, or the flow is unknown, used or expired; or the `state` is
    /// not the one sent.
    Flow,
    /// The provider answered with an error (the person said no, or the code was refused).
    Provider(String),
    /// The provider gave no address, or one it has not verified.
    Unverified,
    Internal(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Internal(e)
    }
}

/// Who the provider says signed in: a subject and a verified address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
    pub email: String,
}

/// The configured providers, their discovered metadata, and one HTTP client for them all.
pub struct Federation {
    providers: Vec<ProviderConfig>,
    http: reqwest::Client,
    metadata: Mutex<HashMap<&'static str, (i64, CoreProviderMetadata)>>,
}

impl Federation {
    pub fn new(providers: Vec<ProviderConfig>) -> Result<Self> {
        // No redirects: a provider's endpoints answer directly, and following redirects from
        // them would let a hostile answer point this server anywhere (the crates' advice).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .user_agent("scimd")
            .build()
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(Federation {
            providers,
            http,
            metadata: Mutex::default(),
        })
    }

    /// No providers (sign-in with a password only).
    pub fn empty() -> Self {
        Federation {
            providers: Vec::new(),
            http: reqwest::Client::new(),
            metadata: Mutex::default(),
        }
    }

    pub fn providers(&self) -> &[ProviderConfig] {
        &self.providers
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// Starts a sign-in: records the flow and returns the provider's authorization URL and the
    /// secret for the browser's flow cookie.
    pub async fn start(
        &self,
        store: &DynStore,
        clock: &Clock,
        name: &str,
        redirect: &str,
    ) -> std::result::Result<(String, String), Refusal> {
        let p = self.provider(name).ok_or(Refusal::Unknown)?;
        let browser = crate::token::generate();
        let state = crate::token::generate();
        let nonce = crate::token::generate();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect_url = RedirectUrl::new(redirect.to_owned()).map_err(internal)?;
        let url = match p.kind {
            ProviderKind::Github => {
                let client = github_client(p)?.set_redirect_uri(redirect_url);
                let s = state.clone();
                let (url, _) = client
                    .authorize_url(move || CsrfToken::new(s))
                    .add_scope(Scope::new("read:user".into()))
                    .add_scope(Scope::new("user:email".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                url
            }
            _ => {
                let client = self.oidc_client(clock, p, redirect_url).await?;
                let (s, n) = (state.clone(), nonce.clone());
                let (url, _, _) = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        move || CsrfToken::new(s),
                        move || Nonce::new(n),
                    )
                    .add_scope(Scope::new("email".into()))
                    .add_scope(Scope::new("profile".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                url
            }
        };
        let now = clock.now();
        let flow = Flow {
            id: uuid::Uuid::now_v7().to_string(),
            browser_digest: crate::token::digest(&browser),
            state_digest: crate::token::digest(&state),
            provider: p.name().to_owned(),
            nonce,
            pkce_verifier: verifier.secret().clone(),
            expires_at: now + FLOW_MICROS,
        };
        store.start_flow(&flow, now).await?;
        tracing::info!(provider = p.name(), "sign-in started");
        Ok((url.to_string(), browser))
    }

    /// Finishes a sign-in at the callback: the browser's flow (used once), the `state` it was
    /// sent with, the code exchanged with the PKCE verifier, the identity verified.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish(
        &self,
        store: &DynStore,
        clock: &Clock,
        name: &str,
        browser: Option<&str>,
        state: &str,
        code: &str,
        redirect: &str,
    ) -> std::result::Result<Verified, Refusal> {
        let p = self.provider(name).ok_or(Refusal::Unknown)?;
        let browser = browser.filter(|b| !b.is_empty()).ok_or(Refusal::Flow)?;
        // Taking the flow uses it up, whatever comes next: a wrong state burns it too, so
        // nobody can try states against one flow.
        let flow = store
            .take_flow(&crate::token::digest(browser), clock.now())
            .await?
            .ok_or(Refusal::Flow)?;
        let state_ok = {
            use subtle::ConstantTimeEq;
            let got = crate::token::digest(state);
            bool::from(got.as_bytes().ct_eq(flow.state_digest.as_bytes()))
        };
        if !state_ok || flow.provider != p.name() {
            tracing::warn!(
                provider = p.name(),
                "sign-in refused: the state does not match the browser's flow"
            );
            return Err(Refusal::Flow);
        }
        if code.is_empty() {
            return Err(Refusal::Provider("the provider sent no code".into()));
        }
        let redirect_url = RedirectUrl::new(redirect.to_owned()).map_err(internal)?;
        let verifier = PkceCodeVerifier::new(flow.pkce_verifier.clone());
        let verified = match p.kind {
            ProviderKind::Github => self.github(p, redirect_url, code, verifier).await?,
            _ => {
                self.oidc(clock, p, redirect_url, code, verifier, &flow.nonce)
                    .await?
            }
        };
        Ok(verified)
    }

    async fn oidc(
        &self,
        clock: &Clock,
        p: &ProviderConfig,
        redirect: RedirectUrl,
        code: &str,
        verifier: PkceCodeVerifier,
        nonce: &str,
    ) -> std::result::Result<Verified, Refusal> {
        let client = self.oidc_client(clock, p, redirect).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(internal)?
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = p.name(), error = %e, "the provider refused the code");
                Refusal::Provider("the provider did not accept the sign-in".into())
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| Refusal::Provider("the provider sent no ID token".into()))?;
        let mut verifier = client.id_token_verifier();
        if p.issuer.contains(TENANT) {
            // Checked below against the template and the token's own tenant.
            verifier = verifier.require_issuer_match(false);
        }
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| {
                tracing::warn!(provider = p.name(), error = %e, "ID token refused");
                Refusal::Provider("the provider's ID token could not be verified".into())
            })?;
        // The signature is verified: the payload's other claims can be read as they are.
        let raw = payload(&id_token.to_string()).unwrap_or_default();
        if p.issuer.contains(TENANT) && !check_issuer(&p.issuer, &raw) {
            tracing::warn!(
                provider = p.name(),
                "ID token refused: its issuer is not the tenant's"
            );
            return Err(Refusal::Provider(
                "the provider's ID token could not be verified".into(),
            ));
        }
        let email = claims.email().map(|e| e.as_str().to_owned());
        let verified = match p.kind {
            ProviderKind::Microsoft => microsoft_verified(&raw),
            _ => claims.email_verified() == Some(true),
        };
        let _ = token.access_token();
        match email {
            Some(email) if verified && crate::domain::valid_email(&email) => Ok(Verified {
                subject: claims.subject().as_str().to_owned(),
                email,
            }),
            _ => Err(Refusal::Unverified),
        }
    }

    async fn github(
        &self,
        p: &ProviderConfig,
        redirect: RedirectUrl,
        code: &str,
        verifier: PkceCodeVerifier,
    ) -> std::result::Result<Verified, Refusal> {
        let client = github_client(p)?.set_redirect_uri(redirect);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = p.name(), error = %e, "GitHub refused the code");
                Refusal::Provider("GitHub did not accept the sign-in".into())
            })?;
        let api = p.api_url.as_deref().unwrap_or("https://api.github.com");
        let api = api.trim_end_matches('/');
        let get = |path: String| {
            self.http
                .get(path)
                .bearer_auth(token.access_token().secret())
                .header("accept", "application/vnd.github+json")
                .send()
        };
        let user: Value = get(format!("{api}/user"))
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(github_down)?
            .json()
            .await
            .map_err(github_down)?;
        let emails: Vec<Value> = get(format!("{api}/user/emails"))
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(github_down)?
            .json()
            .await
            .map_err(github_down)?;
        // GitHub's numeric id never changes; the login name can.
        let subject = match &user["id"] {
            Value::Number(n) => n.to_string(),
            _ => return Err(Refusal::Provider("GitHub named no user id".into())),
        };
        let email = emails
            .iter()
            .find(|e| e["primary"] == true && e["verified"] == true)
            .and_then(|e| e["email"].as_str())
            .filter(|e| crate::domain::valid_email(e))
            .ok_or(Refusal::Unverified)?;
        Ok(Verified {
            subject,
            email: email.to_owned(),
        })
    }

    /// A client for an OpenID Connect provider, from its discovered metadata.
    async fn oidc_client(
        &self,
        clock: &Clock,
        p: &ProviderConfig,
        redirect: RedirectUrl,
    ) -> std::result::Result<OidcClient, Refusal> {
        let meta = self.metadata(clock, p).await?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(p.client_id.clone()),
            Some(ClientSecret::new(p.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's discovery document and keys, read at most once an hour. The document's
    /// issuer must be the configured one (for Microsoft's multi-tenant issuers, the template
    /// with `{tenantid}`), as OpenID Connect Discovery §4.3 requires.
    async fn metadata(
        &self,
        clock: &Clock,
        p: &ProviderConfig,
    ) -> std::result::Result<CoreProviderMetadata, Refusal> {
        let now = clock.now();
        let mut cache = self.metadata.lock().await;
        if let Some((at, meta)) = cache.get(p.name()) {
            if now - at < METADATA_MICROS {
                return Ok(meta.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", discovery_base(p));
        let doc: CoreProviderMetadata = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| unreachable_provider(p, e))?
            .json()
            .await
            .map_err(|e| unreachable_provider(p, e))?;
        let expected = IssuerUrl::new(p.base().to_owned()).map_err(internal)?;
        if doc.issuer().as_str().trim_end_matches('/') != expected.as_str().trim_end_matches('/') {
            tracing::error!(provider = p.name(), issuer = %doc.issuer().as_str(), expected = %expected.as_str(), "the provider's discovery document names another issuer");
            return Err(Refusal::Provider(
                "the provider's configuration does not match".into(),
            ));
        }
        let jwks = CoreJsonWebKeySet::fetch_async(doc.jwks_uri(), &self.http)
            .await
            .map_err(|e| unreachable_provider(p, e))?;
        let meta = doc.set_jwks(jwks);
        cache.insert(p.name(), (now, meta.clone()));
        Ok(meta)
    }
}

/// Where a provider's discovery document lives. Microsoft's `{tenantid}` issuers are discovered
/// at `…/common/v2.0` (the document names the template as its issuer).
fn discovery_base(p: &ProviderConfig) -> String {
    p.base().replace(TENANT, "common")
}

type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

type GithubClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn github_client(p: &ProviderConfig) -> std::result::Result<GithubClient, Refusal> {
    let base = p.base();
    Ok(
        oauth2::basic::BasicClient::new(ClientId::new(p.client_id.clone()))
            .set_client_secret(ClientSecret::new(p.client_secret.clone()))
            .set_auth_uri(
                oauth2::AuthUrl::new(format!("{base}/login/oauth/authorize")).map_err(internal)?,
            )
            .set_token_uri(
                oauth2::TokenUrl::new(format!("{base}/login/oauth/access_token"))
                    .map_err(internal)?,
            )
            // GitHub takes the client's credentials in the body.
            .set_auth_type(oauth2::AuthType::RequestBody),
    )
}

/// Microsoft's tokens carry `iss` = the template with the token's `tid`: a token is accepted
/// only when its issuer is exactly that, so a token minted for another tenant's issuer, or one
/// whose `tid` and `iss` disagree, is refused.
pub fn check_issuer(template: &str, claims: &Value) -> bool {
    let (Some(iss), Some(tid)) = (claims["iss"].as_str(), claims["tid"].as_str()) else {
        return false;
    };
    let tid_ok = !tid.is_empty()
        && tid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    tid_ok && template.trim_end_matches('/').replace(TENANT, tid) == iss.trim_end_matches('/')
}

/// Whether Microsoft vouches for the address: `email_verified` when present, else the optional
/// claim `xms_edov` ("email domain owner verified": the address's domain is verified by the
/// tenant). Entra's plain `email` claim is editable by tenant admins and users, so alone it
/// proves nothing (see the README).
pub fn microsoft_verified(claims: &Value) -> bool {
    let yes = |v: &Value| v == &Value::Bool(true) || v == "true" || v == "1" || v == 1;
    yes(&claims["email_verified"]) || yes(&claims["xms_edov"])
}

/// The JSON payload of a JWT (no checks: call only on a verified token).
fn payload(jwt: &str) -> Option<Value> {
    use base64::Engine;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal::Internal(Error::Internal(anyhow::anyhow!("sign-in: {e}")))
}

fn unreachable_provider(p: &ProviderConfig, e: impl std::fmt::Display) -> Refusal {
    tracing::error!(provider = p.name(), error = %e, "the provider could not be reached");
    Refusal::Internal(Error::upstream(
        "the sign-in provider could not be reached; try again later",
    ))
}

fn github_down(e: reqwest::Error) -> Refusal {
    tracing::warn!(error = %e, "GitHub's user API failed");
    Refusal::Provider("GitHub did not say who you are".into())
}

/// The account a verified provider identity signs in to: the one it was linked to before
/// (whatever address the provider gives now), else the account with its address (created, with
/// no organization, when there is none), remembered from now on.
pub async fn account_for(
    store: &DynStore,
    clock: &Clock,
    provider: &str,
    v: &Verified,
) -> Result<String> {
    let now = clock.now();
    if let Some(account) = store.identity_account(provider, &v.subject).await? {
        store
            .link_identity(provider, &v.subject, &account, &v.email, now)
            .await?;
        return Ok(account);
    }
    let acct = store.account_for_email(&v.email, now).await?;
    let linked = store
        .link_identity(provider, &v.subject, &acct.id, &v.email, now)
        .await?;
    tracing::info!(provider, account = %linked, "provider identity linked");
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

    #[test]
    fn microsoft_issuers_must_be_the_tokens_own_tenant() {
        let t = "9122040d-6c67-4c5b-b112-36a304b66dad";
        let ok = json!({"iss": format!("https://login.microsoftonline.com/{t}/v2.0"), "tid": t});
        assert!(check_issuer(TEMPLATE, &ok));
        let other = json!({"iss": "https://login.microsoftonline.com/another/v2.0", "tid": t});
        assert!(!check_issuer(TEMPLATE, &other), "tid and iss disagree");
        let evil = json!({"iss": "https://evil.example/x/v2.0", "tid": "x"});
        assert!(!check_issuer(TEMPLATE, &evil));
        assert!(
            !check_issuer(TEMPLATE, &json!({"iss": ok["iss"]})),
            "no tid"
        );
        let sneaky = json!({"iss": "https://login.microsoftonline.com/a/b/v2.0", "tid": "a/b"});
        assert!(
            !check_issuer(TEMPLATE, &sneaky),
            "a tid is one path segment"
        );
    }

    #[test]
    fn microsoft_addresses_count_only_when_vouched_for() {
        assert!(!microsoft_verified(&json!({"email": "a@b.example"})));
        assert!(microsoft_verified(&json!({"xms_edov": true})));
        assert!(microsoft_verified(&json!({"xms_edov": "1"})));
        assert!(microsoft_verified(&json!({"email_verified": true})));
        assert!(!microsoft_verified(&json!({"xms_edov": false})));
    }

    #[test]
    fn payloads_decode() {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"tid":"x"}"#);
        assert_eq!(payload(&format!("h.{body}.s")), Some(json!({"tid": "x"})));
        assert_eq!(payload("nonsense"), None);
    }
}
