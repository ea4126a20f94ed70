//! The command line: `serve`, `migrate`, `org …`, `token …`. Every command takes
//! `--database-url` and migrates the database before it does anything else.

mod serve;

use crate::clock::Clock;
use crate::http::Config;
use crate::store::{connect, DynStore, Org};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serve::{hours, minutes, serve};
use std::net::SocketAddr;
use std::sync::Arc;

pub use serve::{PeopleArgs, ProviderArgs, RequestLogArgs};

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

// `serve` carries every setting; the enum is parsed once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve SCIM at http://ADDR/scim/v2. On the first start against an empty database, creates
    /// organization `default` and prints its provisioning token once.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The site's public origin, e.g. `https://scim.example.com`: every emailed link starts
        /// with it and the SCIM base is `{origin}/scim/v2` (a value ending in /scim/v2 is read
        /// as its origin). Required when email is configured. Without it, links use
        /// http://LISTEN and SCIM's `meta.location` follows the request's Host.
        #[arg(long, env = "SCIMD_PUBLIC_URL", value_parser = public_url)]
        public_url: Option<String>,
        /// Seconds a client has to send a whole request head (also how long an idle kept-alive
        /// connection stays open).
        #[arg(long, env = "SCIMD_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        header_read_timeout_secs: u64,
        /// Most open connections; past it a new connection is answered 503 and closed.
        #[arg(long, env = "SCIMD_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        max_connections: u64,
        #[command(flatten)]
        people: PeopleArgs,
        /// Serve GET /metrics on this address only (default: on --listen beside SCIM).
        #[arg(long, env = "SCIMD_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// Requests per second each provisioning token may make, across all replicas (default:
        /// no limit). Entra ID needs at least 25 per tenant.
        #[arg(long, env = "SCIMD_TOKEN_RATE_LIMIT", value_parser = clap::value_parser!(u32).range(1..))]
        token_rate_limit: Option<u32>,
        #[command(flatten)]
        request_log: RequestLogArgs,
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
    /// People's accounts, for the server's operator.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The email outbox.
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Set the password of the account with this email (created, with no organization, when
    /// there is none), read from the first line of stdin, never from the command line. Ends
    /// the account's sessions and open links.
    SetPassword { email: String },
}

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// Print the mail that has not been delivered (pending or failed), links included: without
    /// SMTP, this is how the operator passes a link on by hand.
    List,
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
        #[arg(long, env = "SCIMD_PUBLIC_URL", value_parser = public_url)]
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
    /// Make the account with this address a provider admin: signed in (the console, or the
    /// admin API with their access token) they may act in every organization, as an admin.
    Grant { email: String },
    /// Make a provider admin account an ordinary one again (from its next request on).
    Ungrant { email: String },
    /// List the provider admin accounts.
    List,
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Create a provider admin token; it is printed alone on the last line, once.
    Create {
        /// A label to recognise the token by.
        #[arg(long, default_value = "admin", value_parser = label)]
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
        #[arg(long, value_parser = label)]
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
        #[arg(long, default_value = "provisioning", value_parser = label)]
        name: String,
        /// Expire the token after this many days, 1 to 36500 (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
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
            header_read_timeout_secs,
            max_connections,
            people,
            metrics_listen,
            token_rate_limit,
            request_log,
        } => {
            let limits = crate::http::conn::Limits {
                header_read_timeout: std::time::Duration::from_secs(header_read_timeout_secs),
                max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            };
            let mail_configured = crate::email::SmtpConfig::from_env()?.is_some();
            // The value parser checked it is an absolute http(s) URL with a host.
            let public_url = public_url.map(|u| crate::http::origin_of(&u));
            if mail_configured && public_url.is_none() {
                bail!(
                    "email is configured (SCIMD_SMTP_HOST) but no public URL is: set --public-url or \
                     SCIMD_PUBLIC_URL to the site's origin, e.g. https://scim.example.com, so the links \
                     in emails point at this server (they are never built from request headers)"
                );
            }
            let defaults = Config::default();
            let config = Config {
                public_url,
                fallback_origin: format!("http://{listen}"),
                link_ttl: people.link_ttl(),
                reset_ttl: minutes(people.reset_link_ttl_minutes),
                signing_key_file: people.signing_key_file.clone(),
                trust_forwarded_for: people.trust_forwarded_for,
                mail_configured,
                session_idle: minutes(people.session_idle_minutes),
                providers: people.providers.providers()?,
                metrics_here: metrics_listen.is_none(),
                token_rate_limit,
                request_log: request_log.settings(),
                ..defaults
            };
            let retention = i64::from(people.mail_retention_days) * 24 * 3600 * 1_000_000;
            serve(
                store,
                clock,
                (listen, metrics_listen),
                config,
                limits,
                &cli.database_url,
                retention,
            )
            .await?
        }
        Command::Account(AccountCommand::SetPassword { email }) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = line.trim_end_matches(['\r', '\n']);
            crate::service::credentials::set_password_as_operator(&store, &clock, &email, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password set for {email}; its sessions and open links have ended");
        }
        Command::Mail(MailCommand::List) => {
            let outbox = crate::email::OutboxStore::connect(&cli.database_url).await?;
            let rows = outbox.undelivered().await?;
            for m in &rows {
                println!(
                    "--- {} {} created {} to {}\nSubject: {}\n\n{}",
                    m.id,
                    m.status.as_str(),
                    crate::service::render::timestamp(m.created_at),
                    m.to_address,
                    m.subject,
                    m.body_text.trim_end()
                );
            }
            println!("{} undelivered", rows.len());
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
        Command::Admin(AdminCommand::Grant { email }) => {
            let Some(acct) = store.account_by_email(&email).await? else {
                bail!(
                    "no account has the address {email}: add the person to an organization, or \
                     give the address a password with `scimd account set-password`, first"
                );
            };
            if store
                .set_provider_admin(&acct.id, true, clock.now())
                .await?
            {
                println!(
                    "{} is a provider admin: signed in, they may act in every organization",
                    acct.email
                );
            } else {
                println!("{} was a provider admin already", acct.email);
            }
        }
        Command::Admin(AdminCommand::Ungrant { email }) => {
            let acct = store.account_by_email(&email).await?;
            let done = match &acct {
                Some(a) => store.set_provider_admin(&a.id, false, clock.now()).await?,
                None => false,
            };
            if !done {
                bail!("{email} is not a provider admin");
            }
            println!("{email} is no longer a provider admin");
        }
        Command::Admin(AdminCommand::List) => {
            println!("email\taccount");
            for a in store.provider_admins().await? {
                println!("{}\t{}", a.email, a.id);
            }
        }
        Command::Invite(InviteCommand::Import {
            org,
            file,
            dry_run,
            public_url,
            link_ttl_hours,
        }) => {
            let org = find_org(&store, &org).await?;
            // Bounded before reading: the file is refused past the import's byte limit.
            let max = crate::service::csv_import::MAX_BYTES;
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            if size > max as u64 {
                bail!(
                    "{} is {size} bytes; a CSV import is at most {max} bytes",
                    file.display()
                );
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(
                    std::fs::File::open(&file)
                        .with_context(|| format!("reading {}", file.display()))?,
                    max as u64 + 1,
                ),
                &mut data,
            )
            .with_context(|| format!("reading {}", file.display()))?;
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

/// A label (a token's or an organization's name): 1–200 characters, not blank, no control
/// characters (it is printed in tab-separated listings).
fn label(s: &str) -> Result<String, String> {
    crate::service::tokens::check_label(s)
}

/// An absolute `http://` or `https://` URL with a host and no query or fragment: links and
/// `meta.location` are built from it.
fn public_url(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("must name a host, as in https://scim.example.com".into());
    }
    if t.contains(['?', '#']) || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain a query, a fragment or spaces".into());
    }
    Ok(t.to_owned())
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
    // Audited like the admin API's tokens, with the operator as the actor.
    let operator = crate::store::Audit {
        actor: "operator".into(),
        request_id: None,
    };
    store
        .create_org_token(
            org,
            name,
            &crate::token::digest(&token),
            expires,
            None,
            clock.now(),
            &operator,
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

    /// Values that would silently do the wrong thing are refused when the command is parsed.
    #[test]
    fn nonsense_flags_are_refused() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("scimd").chain(args.iter().copied()))
        };
        for bad in [
            &["token", "create", "--org", "a", "--expires-in-days", "0"][..],
            &["token", "create", "--org", "a", "--expires-in-days", "-1"],
            &[
                "token",
                "create",
                "--org",
                "a",
                "--expires-in-days",
                "99999",
            ],
            &["token", "create", "--org", "a", "--name", "  "],
            &["token", "create", "--org", "a", "--name", "a\tb"],
            &["admin", "token", "create", "--name", ""],
            &["org", "create", "acme", "--name", ""],
            &["serve", "--public-url", "scim.example.com/scim/v2"],
            &["serve", "--public-url", "https:///scim/v2"],
            &["serve", "--public-url", "https://h/scim/v2?x=1"],
            &["serve", "--header-read-timeout-secs", "0"],
            &["serve", "--max-connections", "0"],
            &["serve", "--link-ttl-hours", "0"],
            &[
                "invite",
                "import",
                "--org",
                "a",
                "f.csv",
                "--public-url",
                "ftp://h",
            ],
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad:?}");
        }
        for good in [
            &["token", "create", "--org", "a", "--expires-in-days", "1"][..],
            &["token", "create", "--org", "a", "--name", "okta"],
            &[
                "serve",
                "--public-url",
                "https://scim.example.com:8443/scim/v2/",
            ],
            &[
                "serve",
                "--max-connections",
                "10",
                "--header-read-timeout-secs",
                "5",
            ],
        ] {
            assert!(parse(good).is_ok(), "refused: {good:?}");
        }
    }

    #[test]
    fn slugs() {
        assert!(check_slug("acme-2").is_ok());
        assert!(check_slug("Acme").is_err());
        assert!(check_slug("").is_err());
    }
}
