//! The command line: `serve`, `migrate`, `org …`, `token …`. Every command takes
//! `--database-url` and migrates the database before it does anything else.

use crate::clock::Clock;
use crate::http::{router, AppState, Config, SCIM_PREFIX};
use crate::store::{connect, DynStore, Org};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "scimd",
    version,
    about = "A multi-tenant SCIM 2.0 provisioning server"
)]
pub struct Cli {
    /// Database URL: `sqlite:PATH` (created when missing) or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        global = true,
        env = "SCIMD_DATABASE_URL",
        default_value = "sqlite:scimd.db"
    )]
    pub database_url: String,
    /// Log format on stderr: `text` or `json` (one JSON object per line).
    #[arg(long, global = true, env = "SCIMD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

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
}

impl PeopleArgs {
    fn link_ttl(&self) -> i64 {
        hours(self.link_ttl_hours)
    }
}

fn hours(h: u32) -> i64 {
    i64::from(h) * 3600 * 1_000_000
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve SCIM at http://ADDR/scim/v2. On the first start against an empty database, creates
    /// organization `default` and prints its provisioning token once.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Public SCIM base URL used in `meta.location` and `$ref` (default: from the Host header).
        #[arg(long, env = "SCIMD_PUBLIC_URL")]
        public_url: Option<String>,
        #[command(flatten)]
        people: PeopleArgs,
        /// Serve GET /metrics on this address only (default: on --listen beside SCIM).
        #[arg(long, env = "SCIMD_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// Requests per second each provisioning token may make, across all replicas (default:
        /// no limit). Entra ID needs at least 25 per tenant.
        #[arg(long, env = "SCIMD_TOKEN_RATE_LIMIT", value_parser = clap::value_parser!(u32).range(1..))]
        token_rate_limit: Option<u32>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage provisioning tokens (one organization each).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Provider-wide administration (the admin API under /admin/v1).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Invitations.
    #[command(subcommand)]
    Invite(InviteCommand),
}

#[derive(Subcommand, Debug)]
pub enum InviteCommand {
    /// Invite up to 1000 people from a CSV file with columns `email` and `group membership`
    /// (the twin of POST /admin/v1/orgs/{slug}/invitations/import); prints one line per
    /// invitation and per skipped row.
    Import {
        #[arg(long)]
        org: String,
        /// The CSV file.
        file: std::path::PathBuf,
        /// Check the file without inviting anyone.
        #[arg(long)]
        dry_run: bool,
        /// Public URL the invitation links start with (default: http://127.0.0.1:8080).
        #[arg(long, env = "SCIMD_PUBLIC_URL")]
        public_url: Option<String>,
        /// Hours the invitation links work.
        #[arg(long, env = "SCIMD_LINK_TTL_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..=2160))]
        link_ttl_hours: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Provider admin tokens: they may act in every organization through /admin/v1.
    #[command(subcommand)]
    Token(AdminTokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Create a provider admin token; it is printed alone on the last line, once.
    Create {
        /// A label to recognise the token by.
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// List provider admin tokens (never the tokens themselves).
    List,
    /// Revoke a provider admin token by its id; requests with it get 401 at once.
    Revoke { token_id: String },
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization.
    Create {
        /// Short unique name, e.g. `acme`.
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List organizations.
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a provisioning token; the token is printed alone on the last line, once.
    Create {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// A label to recognise the token by, e.g. `okta`.
        #[arg(long, default_value = "provisioning")]
        name: String,
        /// Expire the token after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List an organization's tokens (never the secrets).
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke a token by id; requests with it get 401 at once.
    Revoke { token_id: String },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = connect(&cli.database_url)
        .await
        .with_context(|| format!("opening database {}", redact(&cli.database_url)))?;
    let clock = Arc::new(Clock::default());
    match cli.command {
        Command::Migrate => println!("migrations applied ({})", store.backend()),
        Command::Serve {
            listen,
            public_url,
            people,
            metrics_listen,
            token_rate_limit,
        } => {
            let config = Config {
                public_url,
                link_ttl: people.link_ttl(),
                signing_key_file: people.signing_key_file,
                trust_forwarded_for: people.trust_forwarded_for,
                mail_configured: crate::email::SmtpConfig::from_env()?.is_some(),
                metrics_here: metrics_listen.is_none(),
                token_rate_limit,
            };
            serve(
                store,
                clock,
                (listen, metrics_listen),
                config,
                &cli.database_url,
            )
            .await?
        }
        Command::Org(OrgCommand::Create { slug, name }) => {
            check_slug(&slug)?;
            let org = store
                .create_org(&slug, name.as_deref().unwrap_or(&slug), clock.now())
                .await?;
            println!("created organization {} ({})", org.slug, org.id);
        }
        Command::Org(OrgCommand::List) => {
            for o in store.list_orgs().await? {
                println!("{}\t{}\t{}", o.slug, o.name, o.id);
            }
        }
        Command::Token(TokenCommand::Create {
            org,
            name,
            expires_in_days,
        }) => {
            let org = find_org(&store, &org).await?;
            let expires = expires_in_days.map(|d| clock.now() + i64::from(d) * 86_400_000_000);
            let token = create_token(&store, &clock, &org, &name, expires).await?;
            println!(
                "created token {name:?} for organization {} (shown once, store it now):",
                org.slug
            );
            println!("{token}");
        }
        Command::Token(TokenCommand::List { org }) => {
            let org = find_org(&store, &org).await?;
            println!("id\tname\tcreated\texpires\trevoked");
            for t in store.list_tokens(&org.id).await? {
                let ts = |t: Option<i64>| {
                    t.map(crate::service::render::timestamp)
                        .unwrap_or_else(|| "-".into())
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    ts(Some(t.created_at)),
                    ts(t.expires_at),
                    ts(t.revoked_at)
                );
            }
        }
        Command::Admin(AdminCommand::Token(AdminTokenCommand::Create { name })) => {
            let token = crate::token::generate();
            store
                .create_admin_token(&name, &crate::token::digest(&token), clock.now())
                .await?;
            println!("created provider admin token {name:?} (shown once, store it now):");
            println!("{token}");
        }
        Command::Admin(AdminCommand::Token(AdminTokenCommand::List)) => {
            println!("id\tname\tcreated\trevoked");
            for t in store.list_admin_tokens().await? {
                let revoked = t
                    .revoked_at
                    .map(crate::service::render::timestamp)
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{revoked}",
                    t.id,
                    t.name,
                    crate::service::render::timestamp(t.created_at)
                );
            }
        }
        Command::Admin(AdminCommand::Token(AdminTokenCommand::Revoke { token_id })) => {
            if !store.revoke_admin_token(&token_id, clock.now()).await? {
                bail!("no active provider admin token with id {token_id}");
            }
            println!("revoked provider admin token {token_id}");
        }
        Command::Invite(InviteCommand::Import {
            org,
            file,
            dry_run,
            public_url,
            link_ttl_hours,
        }) => {
            let org = find_org(&store, &org).await?;
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let origin = public_url
                .as_deref()
                .map(|u| {
                    u.split("/scim/")
                        .next()
                        .unwrap_or(u)
                        .trim_end_matches('/')
                        .to_owned()
                })
                .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
            let audit = crate::store::Audit {
                actor: "cli".into(),
                request_id: None,
            };
            let report = crate::service::invitations::import_csv(
                &store,
                &clock,
                &org,
                "An administrator",
                &audit,
                &data,
                &crate::service::invitations::Links {
                    origin,
                    ttl: hours(link_ttl_hours),
                },
                dry_run,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let verb = if dry_run { "would invite" } else { "invited" };
            for i in &report.invited {
                println!(
                    "line {}\t{verb}\t{}\t{}",
                    i["line"],
                    i["email"].as_str().unwrap_or_default(),
                    i["link"].as_str().unwrap_or_default()
                );
            }
            for s in &report.skipped {
                println!(
                    "line {}\tskipped\t{}\t{}",
                    s["line"],
                    s["reason"].as_str().unwrap_or_default(),
                    s["message"].as_str().unwrap_or_default()
                );
            }
            println!(
                "{} {verb}, {} skipped",
                report.invited.len(),
                report.skipped.len()
            );
        }
        Command::Token(TokenCommand::Revoke { token_id }) => {
            if !store.revoke_token(&token_id, clock.now()).await? {
                bail!("no active token with id {token_id}");
            }
            println!("revoked token {token_id}");
        }
    }
    Ok(())
}

fn check_slug(slug: &str) -> anyhow::Result<()> {
    crate::service::check_slug(slug).map_err(|m| anyhow::anyhow!(m))
}

async fn find_org(store: &DynStore, slug: &str) -> anyhow::Result<Org> {
    store.org_by_slug(slug).await?.with_context(|| {
        format!("no organization {slug:?}; create it with `scimd org create {slug}`")
    })
}

async fn create_token(
    store: &DynStore,
    clock: &Clock,
    org: &Org,
    name: &str,
    expires: Option<i64>,
) -> anyhow::Result<String> {
    let token = crate::token::generate();
    store
        .create_token(
            org,
            name,
            &crate::token::digest(&token),
            expires,
            clock.now(),
        )
        .await?;
    Ok(token)
}

/// Hides a password in a database URL before it reaches a log or an error.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn serve(
    store: DynStore,
    clock: Arc<Clock>,
    (listen, metrics_listen): (SocketAddr, Option<SocketAddr>),
    config: Config,
    database_url: &str,
) -> anyhow::Result<()> {
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}{SCIM_PREFIX}"));
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
        }
    }
    // The email outbox is delivered beside the server when SMTP is configured; without it,
    // mail stays in the outbox (nothing is lost) and scimd says so once.
    let mail = match crate::email::SmtpConfig::from_env()? {
        Some(smtp) => {
            let outbox = crate::email::OutboxStore::connect(database_url).await?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let worker = crate::email::run_worker(outbox, smtp, clock.clone(), async move {
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
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, backend = store.backend(), base = %base, "scimd serving");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:scimd.db"), "sqlite:scimd.db");
    }

    #[test]
    fn slugs() {
        assert!(check_slug("acme-2").is_ok());
        assert!(check_slug("Acme").is_err());
        assert!(check_slug("").is_err());
    }
}
