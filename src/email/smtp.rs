//! SMTP settings and the lettre transport built from them.

use super::OutboxEntry;
use anyhow::{anyhow, bail, Context};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP command may take before the attempt fails.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text throughout: only for a relay on the same host or a trusted network.
    None,
    /// Plain connect, then STARTTLS, which is required: no credentials or mail go out unencrypted.
    StartTls,
    /// TLS from the first byte (SMTPS, "implicit TLS").
    Tls,
}

impl TlsMode {
    /// The port conventionally used with this mode: 25, 587 (submission) or 465 (submissions).
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
        }
    }
}

impl std::str::FromStr for TlsMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::StartTls),
            "tls" => Ok(TlsMode::Tls),
            _ => bail!("SMTP TLS mode {s:?}: use none, starttls or tls"),
        }
    }
}

/// Where and how the worker sends mail.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, `noreply@example.com` or `Example <noreply@example.com>`.
    pub from: String,
}

// By hand, so the password never reaches a log line.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpConfig {
    /// Reads `SCIMD_SMTP_HOST`, `SCIMD_SMTP_PORT`, `SCIMD_SMTP_TLS` (`none`, `starttls` — the
    /// default — or `tls`), `SCIMD_SMTP_USERNAME`, `SCIMD_SMTP_PASSWORD` and `SCIMD_SMTP_FROM`.
    /// `None` when no host is set: email is off. An error when the rest does not make sense.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`SmtpConfig::from_env`] over any source of variables; empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let Some(host) = get("SCIMD_SMTP_HOST") else {
            return Ok(None);
        };
        let tls = match get("SCIMD_SMTP_TLS") {
            Some(t) => t.trim().parse()?,
            None => TlsMode::StartTls,
        };
        let port = match get("SCIMD_SMTP_PORT") {
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| anyhow!("SCIMD_SMTP_PORT {p:?} is not a port number"))?,
            None => tls.default_port(),
        };
        let username = get("SCIMD_SMTP_USERNAME");
        let password = var("SCIMD_SMTP_PASSWORD").filter(|p| !p.is_empty());
        if username.is_some() != password.is_some() {
            bail!("set both SCIMD_SMTP_USERNAME and SCIMD_SMTP_PASSWORD, or neither");
        }
        let from = get("SCIMD_SMTP_FROM")
            .ok_or_else(|| anyhow!("SCIMD_SMTP_HOST is set, so SCIMD_SMTP_FROM is needed too"))?;
        let config = SmtpConfig {
            host: host.trim().to_owned(),
            port,
            tls,
            username,
            password,
            from,
        };
        Mailer::new(&config)?; // Refuse at start what would fail every send.
        Ok(Some(config))
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug)]
pub(super) struct SendError {
    pub retry: bool,
    pub message: String,
}

/// The SMTP transport and sender, built once from an [`SmtpConfig`]. No connection pool: each
/// message gets its own connection, which suits the trickle of mail scimd sends.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .from
            .parse()
            .with_context(|| format!("SMTP sender {:?} is not an email address", config.from))?;
        let tls = match config.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(TlsParameters::new(config.host.clone())?),
            TlsMode::Tls => Tls::Wrapper(TlsParameters::new(config.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one outbox row: plain text, with the HTML as an alternative when there is one.
    pub(super) async fn send(&self, entry: &OutboxEntry) -> Result<(), SendError> {
        let message = self.message(entry).map_err(|e| SendError {
            retry: false,
            message: format!("{e:#}"),
        })?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| SendError {
                retry: true,
                message: e.to_string(),
            })
    }

    fn message(&self, entry: &OutboxEntry) -> anyhow::Result<Message> {
        let to: Mailbox = entry
            .to_address
            .parse()
            .with_context(|| format!("recipient {:?}", entry.to_address))?;
        // The same Message-ID on every attempt, so a rare repeat reads as one mail.
        let domain = self.from.email.domain();
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&entry.subject)
            .message_id(Some(format!("<{}@{domain}>", entry.id)));
        let message = match &entry.body_html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                entry.body_text.clone(),
                html.clone(),
            ))?,
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(entry.body_text.clone())?,
        };
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> anyhow::Result<Option<SmtpConfig>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SmtpConfig::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn no_host_means_no_email() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[("SCIMD_SMTP_FROM", "a@b.test")]).unwrap(), None);
    }

    #[test]
    fn defaults_to_required_starttls_on_the_submission_port() {
        let c = parse(&[
            ("SCIMD_SMTP_HOST", "smtp.example.com"),
            ("SCIMD_SMTP_FROM", "scimd <noreply@example.com>"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.tls, c.port), (TlsMode::StartTls, 587));
        assert_eq!((c.username, c.password), (None, None));
    }

    #[test]
    fn reads_every_variable() {
        let c = parse(&[
            ("SCIMD_SMTP_HOST", "smtp.example.com"),
            ("SCIMD_SMTP_PORT", "2525"),
            ("SCIMD_SMTP_TLS", "TLS"),
            ("SCIMD_SMTP_USERNAME", "mailer"),
            ("SCIMD_SMTP_PASSWORD", "s3cret"),
            ("SCIMD_SMTP_FROM", "noreply@example.com"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.tls, c.port), (TlsMode::Tls, 2525));
        assert_eq!(c.username.as_deref(), Some("mailer"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn refuses_what_cannot_work() {
        let host = ("SCIMD_SMTP_HOST", "smtp.example.com");
        let from = ("SCIMD_SMTP_FROM", "noreply@example.com");
        assert!(parse(&[host]).is_err());
        assert!(parse(&[host, from, ("SCIMD_SMTP_TLS", "ssl")]).is_err());
        assert!(parse(&[host, from, ("SCIMD_SMTP_PORT", "99999")]).is_err());
        assert!(parse(&[host, from, ("SCIMD_SMTP_USERNAME", "u")]).is_err());
        assert!(parse(&[host, ("SCIMD_SMTP_FROM", "not an address")]).is_err());
    }
}
