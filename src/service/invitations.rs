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
            Err(e) if matches!(e.kind(), crate::error::ErrorKind::Conflict(_)) => {
                skipped.push(skip_json(
                    row.line,
                    "already_invited",
                    "a pending invitation for this email exists (or the person just joined)".into(),
                ))
            }
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

/// The invitation email's two bodies (`templates/email/invitation.*`; the HTML one escapes).
#[derive(askama::Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    name: &'a str,
    inviter: &'a str,
    org: &'a str,
    link: &'a str,
    until: &'a str,
}

#[derive(askama::Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    name: &'a str,
    inviter: &'a str,
    org: &'a str,
    link: &'a str,
    until: &'a str,
}

/// An email whose link sets the account's password (`templates/email/password_link.*`).
#[derive(askama::Template)]
#[template(path = "email/password_link.txt")]
struct PasswordLinkText<'a> {
    intro: &'a str,
    link: &'a str,
    until: &'a str,
}

#[derive(askama::Template)]
#[template(path = "email/password_link.html")]
struct PasswordLinkHtml<'a> {
    intro: &'a str,
    link: &'a str,
    until: &'a str,
}

/// A rendered body, with the final newline a text email ends with.
fn body(t: &impl askama::Template) -> String {
    let mut out = t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "an email template failed to render");
        String::new()
    });
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The invitation email: who invites whom to which organization, and the link.
pub fn email(org: &Org, inviter: &str, inv: &Invitation, link: &str) -> OutboxMessage {
    let name = format!("{} {}", inv.first_name, inv.last_name);
    let until = until(inv.expires_at);
    let (name, org_name, until) = (name.as_str(), org.name.as_str(), until.as_str());
    OutboxMessage {
        to: inv.email.clone(),
        subject: format!("You're invited to join {}", org.name),
        text: body(&InvitationText {
            name,
            inviter,
            org: org_name,
            link,
            until,
        }),
        html: Some(body(&InvitationHtml {
            name,
            inviter,
            org: org_name,
            link,
            until,
        })),
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
    let until = until.as_str();
    OutboxMessage {
        to: to.to_owned(),
        subject,
        text: body(&PasswordLinkText { intro, link, until }),
        html: Some(body(&PasswordLinkHtml { intro, link, until })),
        organization_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_bodies_escape_html_and_keep_text_plain() {
        let org = Org {
            id: "o1".into(),
            slug: "acme".into(),
            name: "Acme <R&D>".into(),
            created_at: 0,
        };
        let inv = Invitation {
            id: "i1".into(),
            organization_id: "o1".into(),
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "<b>Lovelace</b>".into(),
            role: "member".into(),
            groups: Vec::new(),
            status: "pending".into(),
            expires_at: 0,
            accepted_at: None,
            invited_by: "bob".into(),
            created_at: 0,
            updated_at: 0,
        };
        let m = email(
            &org,
            "Bob \"admin\"",
            &inv,
            "https://scimd.example/invite/s3cret?a=1&b=2",
        );
        let html = m.html.unwrap();
        assert!(
            html.contains("<strong>Acme &#60;R&#38;D&#62;</strong>")
                || html.contains("<strong>Acme &lt;R&amp;D&gt;</strong>"),
            "{html}"
        );
        assert!(!html.contains("<b>Lovelace</b>"), "{html}");
        assert!(m.text.contains("Hello Ada <b>Lovelace</b>,"), "{}", m.text);
        assert!(m.text.contains("Acme <R&D> on scimd"), "{}", m.text);
        assert!(
            m.text
                .contains("https://scimd.example/invite/s3cret?a=1&b=2\n"),
            "{}",
            m.text
        );
        assert!(m.text.ends_with("ignore this email.\n"), "{:?}", m.text);
        let r = reset_email("ada@example.com", "https://scimd.example/reset/x", 0);
        assert!(
            r.text
                .contains("Choose your password here:\nhttps://scimd.example/reset/x\n"),
            "{}",
            r.text
        );
        assert!(r
            .html
            .unwrap()
            .contains("<a href=\"https://scimd.example/reset/x\">"));
    }
}
