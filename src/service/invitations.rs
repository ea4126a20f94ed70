//! Invitations, the rules: who can be invited, the invitation email, creating one (its row and
//! its email in one transaction), and importing a CSV of people to invite. Shared by the admin
//! API and the `scimd invite import` command.

use crate::clock::Clock;
use crate::email::OutboxMessage;
use crate::error::{Error, Result};
use crate::scim::filter::{self};
use crate::scim::schema::Kind;
use crate::service::csv_import;
use crate::store::{Audit, DynStore, Invitation, ListQuery, NewInvitation, Org};
use serde_json::{json, Value};

/// How long an invitation link works unless configured otherwise.
pub const EXPIRY_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// Where links point and how long they work.
#[derive(Debug, Clone)]
pub struct Links {
    /// `scheme://host[:port]` of the server the links open.
    pub origin: String,
    /// Microseconds a link works for.
    pub ttl: i64,
}

/// A simple RFC 5322-ish check: one `@`, a local part and a dotted domain, no spaces or
/// brackets, at most 254 characters.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"@".contains(c);
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.chars().any(bad)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// One person to invite, already validated.
#[derive(Debug, Clone)]
pub struct Invitee {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub groups: Vec<String>,
}

/// Creates an invitation and enqueues its email in one transaction; returns it with its link
/// (`{origin}/invite/{secret}`). The secret exists only in the link: the database keeps its digest.
pub async fn invite(
    store: &DynStore,
    clock: &Clock,
    org: &Org,
    inviter: &str,
    audit: &Audit,
    i: Invitee,
    links: &Links,
) -> Result<(Invitation, String)> {
    let secret = crate::token::generate();
    let now = clock.now();
    let new = NewInvitation {
        email: i.email,
        first_name: i.first_name,
        last_name: i.last_name,
        role: i.role,
        groups: i.groups,
        secret_digest: crate::token::digest(&secret),
        expires_at: now + links.ttl,
    };
    let link = format!("{}/invite/{secret}", links.origin);
    let draft = Invitation {
        id: String::new(),
        organization_id: org.id.clone(),
        email: new.email.clone(),
        first_name: new.first_name.clone(),
        last_name: new.last_name.clone(),
        role: new.role.clone(),
        groups: new.groups.clone(),
        status: "pending".into(),
        expires_at: new.expires_at,
        accepted_at: None,
        invited_by: audit.actor.clone(),
        created_at: now,
        updated_at: now,
    };
    let msg = email(org, inviter, &draft, &link);
    let inv = store
        .create_invitation(&org.id, &new, &msg, now, audit)
        .await?;
    tracing::info!(org = %org.slug, invitation = %inv.id, "invitation created");
    Ok((inv, link))
}

/// The outcome of a CSV import: who was (or, on a dry run, would be) invited, and every row
/// skipped with its line number and reason.
pub struct ImportReport {
    pub dry_run: bool,
    pub invited: Vec<Value>,
    pub skipped: Vec<Value>,
}

impl ImportReport {
    pub fn to_json(&self) -> Value {
        json!({"dryRun": self.dry_run, "invited": self.invited, "skipped": self.skipped})
    }
}

/// Imports a CSV (see `csv_import`): each valid row becomes an invitation as a member with the
/// groups its cell names; invalid rows are skipped and reported. A row whose email already has a
/// pending invitation is skipped as `already_invited`, so uploading the same file twice invites
/// nobody twice. `dry_run` validates without inviting, and reports exactly what the real run
/// would: both judge the rows against the same reads of the organization.
///
/// The file is read once, on a blocking thread (parsing is CPU work that must not hold up the
/// async workers serving other requests), and refused whole past its byte or row limit.
#[allow(clippy::too_many_arguments)]
pub async fn import_csv(
    store: &DynStore,
    clock: &Clock,
    org: &Org,
    inviter: &str,
    audit: &Audit,
    data: &[u8],
    links: &Links,
    dry_run: bool,
) -> Result<ImportReport> {
    let bad = |m: String| Error::bad(crate::error::ScimType::InvalidValue, m);
    if data.len() > csv_import::MAX_BYTES {
        return Err(bad(
            csv_import::FileError::TooLarge { bytes: data.len() }.to_string()
        ));
    }
    let owned = data.to_vec();
    let rows = tokio::task::spawn_blocking(move || csv_import::read(&owned))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| bad(e.to_string()))?;
    let mut known = csv_import::Known::default();
    // The organization's groups by case-folded name.
    let mut start = 1;
    loop {
        let q = ListQuery {
            filter: None,
            sort: None,
            start_index: start,
            count: 1000,
            after: None,
        };
        let page = store.list(&org.id, Kind::Group, &q).await?;
        for g in &page.records {
            if let Some(name) = g.doc.get("displayName").and_then(Value::as_str) {
                known.groups.insert(name.to_lowercase(), g.id.clone());
            }
        }
        start += page.records.len() as i64;
        if page.records.is_empty() || start > page.total {
            break;
        }
    }
    // Pending invitations (expired ones too: they still hold the email until revoked).
    known.invited = store
        .list_invitations(&org.id)
        .await?
        .into_iter()
        .filter(|i| i.status == "pending")
        .map(|i| i.email.to_lowercase())
        .collect();
    // Who is already a member: looked up per distinct valid email of the file, through the
    // indexes: a User named by it, or an active membership of the account it identifies (what
    // creating the invitation would refuse).
    let candidates = csv_import::plan(&rows, &known);
    for i in &candidates.invite {
        let norm = i.email.to_lowercase();
        let text = format!(
            "userName eq {0} or emails.value eq {0}",
            Value::String(i.email.clone())
        );
        let q = ListQuery {
            filter: Some(filter::parse(&text)?),
            sort: None,
            start_index: 1,
            count: 1,
            after: None,
        };
        let member = store.list(&org.id, Kind::User, &q).await?.total > 0
            || match store.account_by_email(&norm).await? {
                Some(account) => store
                    .memberships_of(&account.id)
                    .await?
                    .iter()
                    .any(|m| m.org.id == org.id && m.active),
                None => false,
            };
        if member {
            known.members.insert(norm);
        }
    }
    let plan = csv_import::plan(&rows, &known);
    let skip_json = |line: usize, code: &str, message: String| json!({"line": line, "reason": code, "message": message});
    let mut skipped: Vec<Value> = plan
        .skipped
        .iter()
        .map(|s| skip_json(s.line, s.reason.code(), s.reason.message()))
        .collect();
    let mut invited = Vec::new();
    for row in plan.invite {
        if dry_run {
            invited.push(json!({"line": row.line, "email": row.email}));
            continue;
        }
        let invitee = Invitee {
            email: row.email.clone(),
            first_name: String::new(),
            last_name: String::new(),
            role: "member".into(),
            groups: row.groups,
        };
        match invite(store, clock, org, inviter, audit, invitee, links).await {
            Ok((inv, link)) => invited
                .push(json!({"line": row.line, "email": row.email, "id": inv.id, "link": link})),
            Err(e) if e.status() == axum::http::StatusCode::CONFLICT => skipped.push(skip_json(
                row.line,
                "already_invited",
                "a pending invitation for this email exists (or the person just joined)".into(),
            )),
            Err(e) => {
                tracing::error!(line = row.line, error = %e, "CSV import row failed");
                skipped.push(skip_json(
                    row.line,
                    "internal_error",
                    "internal error; the server log has the cause".into(),
                ))
            }
        }
    }
    skipped.sort_by_key(|v| v["line"].as_u64());
    tracing::info!(org = %org.slug, dry_run, invited = invited.len(), skipped = skipped.len(), "CSV import");
    Ok(ImportReport {
        dry_run,
        invited,
        skipped,
    })
}

/// The invitation email: who invites whom to which organization, and the link.
pub fn email(org: &Org, inviter: &str, inv: &Invitation, link: &str) -> OutboxMessage {
    let name = format!("{} {}", inv.first_name, inv.last_name);
    let until = until(inv.expires_at);
    let text = format!(
        "Hello {name},\n\n{inviter} has invited you to join {org} on scimd.\n\n\
         Accept the invitation here:\n{link}\n\nThe link works until {until}. If you did not expect \
         this invitation, ignore this email.\n",
        org = org.name,
    );
    let html = format!(
        "<p>Hello {name},</p><p>{inviter} has invited you to join <strong>{org}</strong> on scimd.</p>\
         <p><a href=\"{link}\">Accept the invitation</a></p><p>The link works until {until}. If you did \
         not expect this invitation, ignore this email.</p>",
        name = escape(&name),
        inviter = escape(inviter),
        org = escape(&org.name),
        link = escape(link),
    );
    OutboxMessage {
        to: inv.email.clone(),
        subject: format!("You're invited to join {}", org.name),
        text,
        html: Some(html),
        organization_id: Some(org.id.clone()),
    }
}

/// When a link stops working, for people: `2026-11-29 10:30 UTC`.
fn until(expires_at: i64) -> String {
    let t = crate::service::render::timestamp(expires_at);
    format!("{} UTC", t.get(..16).unwrap_or(&t).replace('T', " "))
}

/// The account-setup email: someone (an admin, or the person signing up) created an account for
/// this address in these organizations; the link sets its password, proving the address is theirs.
pub fn setup_email(
    to: &str,
    by: &str,
    orgs: &[String],
    link: &str,
    expires_at: i64,
) -> OutboxMessage {
    let orgs = orgs.join(", ");
    password_link_email(
        to,
        format!("Your account in {orgs}"),
        &format!("{by} set up an account for {to} on scimd, in {orgs}."),
        link,
        expires_at,
    )
}

/// The password-reset email: the link sets a new password.
pub fn reset_email(to: &str, link: &str, expires_at: i64) -> OutboxMessage {
    password_link_email(
        to,
        "Choose a new password".to_owned(),
        &format!("Someone asked to set a new password for {to} on scimd."),
        link,
        expires_at,
    )
}

/// The answer to a sign-up with an address that already has an account: nothing was created;
/// sign in (or choose a new password with the link) and create the organization from there.
pub fn existing_account_email(to: &str, org: &str, link: &str, expires_at: i64) -> OutboxMessage {
    password_link_email(
        to,
        "You already have an account".to_owned(),
        &format!(
            "Someone signed up on scimd as {to} to create {org}. You already have an account, so \
             nothing was created: sign in and create the organization there. If you forgot your password, \
             the link below sets a new one."
        ),
        link,
        expires_at,
    )
}

/// An email whose link sets the account's password.
fn password_link_email(
    to: &str,
    subject: String,
    intro: &str,
    link: &str,
    expires_at: i64,
) -> OutboxMessage {
    let until = until(expires_at);
    let text = format!(
        "Hello,\n\n{intro}\n\nChoose your password here:\n{link}\n\nThe link works once, until \
         {until}. If you did not expect this email, ignore it.\n"
    );
    let html = format!(
        "<p>Hello,</p><p>{intro}</p><p><a href=\"{link}\">Choose your password</a></p>\
         <p>The link works once, until {until}. If you did not expect this email, ignore it.</p>",
        intro = escape(intro),
        link = escape(link),
    );
    OutboxMessage {
        to: to.to_owned(),
        subject,
        text,
        html: Some(html),
        organization_id: None,
    }
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn emails() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "x_y@a-b.io",
        ] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@example..com",
            ".a@example.com",
            "a@-x.com",
            "<a>@example.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
