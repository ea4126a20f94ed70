//! `scimd serve`: its settings (people, sign-in providers, the request log) and the server's
//! start and stop: the first start's organization and token, the mail worker beside the
//! server, the metrics listener, and a graceful shutdown.

use super::create_token;
use crate::clock::Clock;
use crate::http::{router, AppState, Config, SCIM_PREFIX};
use crate::service::federation::ProviderConfig;
use crate::store::DynStore;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Settings for people: links sent by email, access tokens, client addresses.
#[derive(clap::Args, Debug, Clone)]
pub struct PeopleArgs {
    /// Hours an invitation or account-setup link works.
    #[arg(long, env = "SCIMD_LINK_TTL_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..=2160))]
    pub link_ttl_hours: u32,
    /// File with the key (at least 32 bytes) that signs access tokens; default: a key generated
    /// on first start and kept in the database, shared by every replica.
    #[arg(long, env = "SCIMD_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Count sign-in attempts by the last X-Forwarded-For address (only behind a proxy that sets it).
    #[arg(long, env = "SCIMD_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Minutes a password-reset link works (any password change ends it sooner).
    #[arg(long, env = "SCIMD_RESET_LINK_TTL_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u32).range(5..=1440))]
    pub reset_link_ttl_minutes: u32,
    /// Minutes a browser session lasts without use (12 hours at most in any case).
    #[arg(long, env = "SCIMD_SESSION_IDLE_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u32).range(5..=720))]
    pub session_idle_minutes: u32,
    /// Days a sent mail's row (recipient, subject, status, times; never its body) is kept.
    #[arg(long, env = "SCIMD_MAIL_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub mail_retention_days: u32,
    #[command(flatten)]
    pub providers: ProviderArgs,
}

/// Sign-in providers. Each is on when its client id and secret are set; the secrets are best
/// given through the environment (the command line shows in `ps`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProviderArgs {
    /// Google: the OAuth client's id.
    #[arg(long, env = "SCIMD_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,
    /// Google: the OAuth client's secret.
    #[arg(long, env = "SCIMD_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<String>,
    /// Google: another issuer (tests).
    #[arg(long, env = "SCIMD_GOOGLE_ISSUER")]
    pub google_issuer: Option<String>,
    /// Microsoft Entra ID: the app registration's (client) id.
    #[arg(long, env = "SCIMD_MICROSOFT_CLIENT_ID")]
    pub microsoft_client_id: Option<String>,
    /// Microsoft Entra ID: a client secret of the app registration.
    #[arg(long, env = "SCIMD_MICROSOFT_CLIENT_SECRET", hide_env_values = true)]
    pub microsoft_client_secret: Option<String>,
    /// Microsoft Entra ID: a tenant id (GUID) to admit that tenant only, or `common` /
    /// `organizations` for any tenant.
    #[arg(long, env = "SCIMD_MICROSOFT_TENANT", default_value = "common")]
    pub microsoft_tenant: String,
    /// Microsoft: another issuer (tests), `{tenantid}` allowed as in Microsoft's own.
    #[arg(long, env = "SCIMD_MICROSOFT_ISSUER")]
    pub microsoft_issuer: Option<String>,
    /// GitHub: the OAuth app's client id.
    #[arg(long, env = "SCIMD_GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,
    /// GitHub: the OAuth app's client secret.
    #[arg(long, env = "SCIMD_GITHUB_CLIENT_SECRET", hide_env_values = true)]
    pub github_client_secret: Option<String>,
    /// GitHub: another site for /login/oauth/… (tests, GitHub Enterprise Server).
    #[arg(long, env = "SCIMD_GITHUB_URL")]
    pub github_url: Option<String>,
    /// GitHub: another API (tests, GitHub Enterprise Server's /api/v3).
    #[arg(long, env = "SCIMD_GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// Any OpenID Connect issuer with discovery (Okta, Keycloak, …).
    #[arg(long, env = "SCIMD_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "SCIMD_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    #[arg(long, env = "SCIMD_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// The name on the generic issuer's sign-in button.
    #[arg(long, env = "SCIMD_OIDC_NAME", default_value = "single sign-on")]
    pub oidc_name: String,
}

impl ProviderArgs {
    /// The providers whose id and secret are both set; one without the other is an error.
    pub fn providers(&self) -> anyhow::Result<Vec<ProviderConfig>> {
        let pair = |name: &str, id: &Option<String>, secret: &Option<String>| match (id, secret) {
            (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => {
                Ok(Some((i.clone(), s.clone())))
            }
            (None, None) => Ok(None),
            _ => Err(anyhow::anyhow!(
                "{name}: set both the client id and the client secret, or neither"
            )),
        };
        let mut out = Vec::new();
        if let Some((i, s)) = pair("Google", &self.google_client_id, &self.google_client_secret)? {
            out.push(ProviderConfig::google(i, s, self.google_issuer.clone()));
        }
        if let Some((i, s)) = pair(
            "Microsoft",
            &self.microsoft_client_id,
            &self.microsoft_client_secret,
        )? {
            out.push(ProviderConfig::microsoft(
                i,
                s,
                &self.microsoft_tenant,
                self.microsoft_issuer.clone(),
            ));
        }
        if let Some((i, s)) = pair("GitHub", &self.github_client_id, &self.github_client_secret)? {
            out.push(ProviderConfig::github(
                i,
                s,
                self.github_url.clone(),
                self.github_api_url.clone(),
            ));
        }
        if let Some((i, s)) = pair("OIDC", &self.oidc_client_id, &self.oidc_client_secret)? {
            let issuer = self
                .oidc_issuer
                .clone()
                .context("--oidc-issuer is required with the OIDC client id and secret")?;
            out.push(ProviderConfig::oidc(self.oidc_name.clone(), i, s, issuer));
        }
        Ok(out)
    }
}

impl PeopleArgs {
    pub(super) fn link_ttl(&self) -> i64 {
        hours(self.link_ttl_hours)
    }
}

pub(super) fn minutes(m: u32) -> i64 {
    i64::from(m) * 60 * 1_000_000
}

pub(super) fn hours(h: u32) -> i64 {
    i64::from(h) * 3600 * 1_000_000
}

/// The SCIM request log each organization's admins read (the Provisioning API).
#[derive(clap::Args, Debug, Clone)]
pub struct RequestLogArgs {
    /// Keep the SCIM request log: `on` or `off`.
    #[arg(long = "request-log", env = "SCIMD_REQUEST_LOG", default_value = "on", value_parser = ["on", "off"])]
    pub mode: String,
    /// Newest requests kept per organization.
    #[arg(long = "request-log-max-rows", env = "SCIMD_REQUEST_LOG_MAX_ROWS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_rows: u32,
    /// Days a request is kept.
    #[arg(long = "request-log-days", env = "SCIMD_REQUEST_LOG_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// Requests waiting to be written before the oldest are dropped (and counted).
    #[arg(long = "request-log-queue", env = "SCIMD_REQUEST_LOG_QUEUE", default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue: u32,
    /// Successful reads of one organization logged one by one in a second; past it they are
    /// counted in one entry (0: log every read). Errors and writes are always logged.
    #[arg(
        long = "request-log-reads-per-second",
        env = "SCIMD_REQUEST_LOG_READS_PER_SECOND",
        default_value_t = 100
    )]
    pub reads_per_second: u32,
}

impl RequestLogArgs {
    pub fn settings(&self) -> crate::service::request_log::Settings {
        crate::service::request_log::Settings {
            enabled: self.mode == "on",
            max_rows: i64::from(self.max_rows),
            days: i64::from(self.days),
            queue: self.queue as usize,
            reads_per_second: self.reads_per_second,
            ..Default::default()
        }
    }
}

pub(super) async fn serve(
    store: DynStore,
    clock: Arc<Clock>,
    (listen, metrics_listen): (SocketAddr, Option<SocketAddr>),
    config: Config,
    limits: crate::http::conn::Limits,
    database_url: &str,
    mail_retention: i64,
) -> anyhow::Result<()> {
    let base = format!("{}{SCIM_PREFIX}", config.origin());
    for p in &config.providers {
        tracing::info!(provider = p.name(), redirect_uri = %format!("{}/auth/{}/callback", config.origin(), p.name()), "sign-in provider configured");
    }
    if store.org_count().await? == 0 {
        // First start: make the server usable at once. Another replica may win this race; the
        // unique slug makes the loser's attempt fail harmlessly.
        if let Ok(org) = store
            .create_org("default", "Default organization", clock.now())
            .await
        {
            let token = create_token(&store, &clock, &org, "initial", None).await?;
            println!(
                "scimd: first start; created organization \"default\" and its provisioning token."
            );
            println!("  SCIM base URL: {base}");
            println!("  Token (shown once, store it now): {token}");
            print_first_admin_steps(&config.origin());
        }
    }
    // The email outbox is delivered beside the server when SMTP is configured; without it,
    // mail stays in the outbox (nothing is lost) and scimd says so once.
    let mail = match crate::email::SmtpConfig::from_env()? {
        Some(smtp) => {
            let outbox = crate::email::OutboxStore::connect(database_url).await?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let worker =
                crate::email::run_worker(outbox, smtp, clock.clone(), mail_retention, async move {
                    let _ = stopped.await;
                });
            Some((stop, tokio::spawn(worker)))
        }
        None => {
            tracing::info!(
                "SCIMD_SMTP_HOST is not set: email stays in the outbox until SMTP is configured"
            );
            None
        }
    };
    let state = AppState::new(store.clone(), clock, config);
    // The access-token key is read (or generated into the database) now, so a bad key file
    // stops the start instead of failing the first sign-in.
    state
        .keys()
        .await
        .map_err(|e| anyhow::anyhow!("loading the access-token signing key: {e:?}"))?;
    if let Some(addr) = metrics_listen {
        let metrics = crate::http::metrics_router(state.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        tracing::info!(%addr, "metrics at /metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    let request_log = state.request_log.clone();
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, backend = store.backend(), base = %base, "scimd serving");
    crate::http::conn::serve(listener, app, limits, shutdown_signal()).await?;
    // What the request log still holds is written before the process ends.
    if let Some(log) = request_log {
        if let Err(e) = log.flush().await {
            tracing::warn!(error = %e, "request log: the last entries could not be written");
        }
    }
    if let Some((stop, worker)) = mail {
        let _ = stop.send(());
        worker.await??;
    }
    tracing::info!("scimd stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// How the operator becomes the first admin of `default` in the console, printed once on first
/// start: the organization has no admin until someone is made one.
fn print_first_admin_steps(origin: &str) {
    println!("  To become the first admin of \"default\" in the console at {origin}/ :");
    println!("    1. scimd admin token create --name bootstrap      (a provider admin token, printed once)");
    println!("    2. curl -X POST {origin}/admin/v1/orgs/default/members \\");
    println!(
        "         -H \"Authorization: Bearer <that token>\" -H 'Content-Type: application/json' \\"
    );
    println!("         -d '{{\"email\": \"you@example.com\", \"role\": \"admin\"}}'");
    println!("    3. scimd account set-password you@example.com      (type the password on stdin)");
    println!("    4. open {origin}/ and sign in; revoke the bootstrap token with `scimd admin token revoke <id>`.");
    println!("  Or create a new organization of your own at {origin}/signup .");
}
