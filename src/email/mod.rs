//! Transactional email: an outbox table and the worker that delivers it over SMTP.
//!
//! Whoever needs to send mail (invitations, first of all) inserts an `email_outbox` row in the
//! same database transaction as the change that causes it ([`enqueue_sqlite`] / [`enqueue_pg`]).
//! So an email is never lost when the process dies after the commit, and never sent for a write
//! that rolled back. The [`Worker`] then claims due rows, sends each through lettre's async SMTP
//! transport and records the outcome; a failure is retried with exponential backoff
//! ([`backoff`]) until [`MAX_ATTEMPTS`], after which the row is `failed`.
//!
//! Delivery is at least once. A claim is exclusive — `for update skip locked` on Postgres, the
//! single writer on SQLite — and lasts a lease ([`LEASE`]), so any number of workers and replicas
//! can run and none sends a claimed row. A worker that dies mid-batch leaves its rows claimed
//! until the lease runs out; then another worker (or the same one, restarted) takes them over.
//! Only a crash between the SMTP server's acceptance and the recording of it sends a mail twice,
//! and the Message-ID, derived from the row id, stays the same across such repeats.
//!
//! The worker reaches the database through its own small [`OutboxStore`], not the `Store` trait:
//! the outbox is not SCIM data, and the worker needs only these few statements.

mod outbox;
mod smtp;
mod worker;

pub use outbox::{enqueue_pg, enqueue_sqlite, Outbox, OutboxStore};
pub use smtp::{Mailer, SmtpConfig, TlsMode};
pub use worker::{backoff, run_worker, Worker, BATCH, LEASE, MAX_ATTEMPTS, RETENTION};

/// An email to send: what a caller hands to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// One recipient, `addr@example.com` or `Name <addr@example.com>`.
    pub to: String,
    pub subject: String,
    /// The plain-text body; always sent.
    pub text: String,
    /// An HTML alternative; when present the mail is `multipart/alternative`.
    pub html: Option<String>,
    /// The organization the mail is sent on behalf of, if any.
    pub organization_id: Option<String>,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not sent yet: due at `next_attempt_at`.
    Pending,
    /// Accepted by the SMTP server.
    Sent,
    /// Given up on: [`MAX_ATTEMPTS`] failures, or a message that cannot be built.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Failed => "failed",
        }
    }
}

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "pending" => Ok(Status::Pending),
            "sent" => Ok(Status::Sent),
            "failed" => Ok(Status::Failed),
            _ => Err(format!("unknown email_outbox status {s:?}")),
        }
    }
}

/// One `email_outbox` row. Timestamps are UTC microseconds, like every timestamp scimd stores.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEntry {
    pub id: String,
    pub organization_id: Option<String>,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: Status,
    /// Delivery attempts made, successful or not.
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// The lease of the worker that holds the row; past it, the row may be claimed again.
    pub claimed_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}
