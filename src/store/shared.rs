//! What more than one area uses: the row decoders of records, organizations and tokens, and the
//! writes several areas make inside their own transactions (a User's or Group's rows, an
//! account found by email, an organization, an audit entry). A helper that one area alone uses
//! stays in that area's file.

use super::backend::for_both;
use super::{columns, new_id, shard, Audit, GroupRef, Org, Record, TokenInfo, COUNT_UPSERT};
use crate::error::{Error, Result, ScimType};
use crate::scim::schema::Kind;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{Column, Row};

/// Most ids in one `in (…)` list; longer lists are sent in chunks.
pub(super) const CHUNK: usize = 500;

/// The columns of a record read for a response; Users carry their groups along.
pub(super) fn read_columns(kind: Kind, groups: &str) -> String {
    match kind {
        Kind::User => {
            format!(
                "r.id, r.doc, r.version, r.created_at, r.updated_at, r.role, r.role_assigned, {groups} as groups"
            )
        }
        Kind::Group => "r.id, r.doc, r.version, r.created_at, r.updated_at".to_owned(),
    }
}

/// An organization's total and change count for a kind (summed over its shards), as a subquery
/// that a page query joins, so both come from the page's own snapshot.
pub(super) const COUNT_SUM: &str = "select cast(coalesce(sum(n), 0) as bigint) as c_total, cast(coalesce(sum(changes), 0) as bigint) as c_changes \
     from resource_count where organization_id = $1 and kind = $2";

/// `$from, $from+1, …` for `n` values.
pub(super) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_members(missing: &[&String]) -> Error {
    let list: Vec<&str> = missing.iter().take(10).map(|s| s.as_str()).collect();
    Error::bad(
        ScimType::InvalidValue,
        format!(
            "members: no User with id {} in this organization{}",
            list.join(", "),
            if missing.len() > 10 {
                format!(" (and {} more)", missing.len() - 10)
            } else {
                String::new()
            }
        ),
    )
}

macro_rules! shared {
    ($store:ty, $db:ty, $dialect:expr, $for_update:literal, $groups:expr, $enqueue:path) => {
        impl $store {
            pub(super) fn record(row: &<$db as sqlx::Database>::Row) -> Result<Record> {
                let Json(doc): Json<Map<String, Value>> = row.try_get("doc")?;
                let groups = if row.columns().iter().any(|c| c.name() == "groups") {
                    let Json(pairs): Json<Vec<(String, String)>> = row.try_get("groups")?;
                    Some(pairs.into_iter().map(|(id, display)| GroupRef { id, display }).collect())
                } else {
                    None
                };
                let role = if row.columns().iter().any(|c| c.name() == "role") && row.try_get::<bool, _>("role_assigned")? {
                    Some(row.try_get("role")?)
                } else {
                    None
                };
                Ok(Record {
                    id: row.try_get("id")?,
                    doc,
                    groups,
                    role,
                    version: row.try_get("version")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            pub(super) fn org(row: &<$db as sqlx::Database>::Row) -> Result<Org> {
                Ok(Org {
                    id: row.try_get("id")?,
                    slug: row.try_get("slug")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            pub(super) fn token(row: &<$db as sqlx::Database>::Row) -> Result<TokenInfo> {
                Ok(TokenInfo {
                    id: row.try_get("id")?,
                    organization_id: row.try_get("organization_id")?,
                    org_slug: row.try_get("org_slug")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    rotated_from: row.try_get("rotated_from")?,
                })
            }

            /// Adds member rows after checking every id is a User of the organization.
            pub(super) async fn add_members(tx: &mut sqlx::Transaction<'_, $db>, org: &str, group: &str, ids: &[String], now: i64) -> Result<()> {
                let mut ids: Vec<&String> = ids.iter().collect();
                ids.sort();
                ids.dedup();
                for chunk in ids.chunks(CHUNK) {
                    // By primary key only: with `organization_id = $1` as well, SQLite may
                    // walk the organization's whole index instead (26 ms at 100k users).
                    let text = format!("select id, organization_id from membership where id in ({})", placeholders(1, chunk.len()));
                    let mut q = sqlx::query(&text);
                    for id in chunk {
                        q = q.bind(id.as_str());
                    }
                    let mut found = std::collections::HashSet::with_capacity(chunk.len());
                    for row in q.fetch_all(&mut **tx).await? {
                        if row.try_get::<String, _>("organization_id")? == org {
                            found.insert(row.try_get::<String, _>("id")?);
                        }
                    }
                    let missing: Vec<&String> = chunk.iter().copied().filter(|id| !found.contains(*id)).collect();
                    if !missing.is_empty() {
                        return Err(unknown_members(&missing));
                    }
                    let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, $2, $2)", i + 3)).collect();
                    let text = format!(
                        "insert into team_member (team_id, membership_id, created_at, updated_at) values {} on conflict do nothing",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&text).bind(group).bind(now);
                    for id in chunk {
                        q = q.bind(id.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Keeps `membership_email` equal to the document's emails.
            pub(super) async fn write_emails(tx: &mut sqlx::Transaction<'_, $db>, id: &str, emails: &[String], now: i64, replace: bool) -> Result<()> {
                if replace {
                    sqlx::query("delete from membership_email where membership_id = $1")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                for chunk in emails.chunks(CHUNK) {
                    let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, $2, $2)", i + 3)).collect();
                    let text = format!(
                        "insert into membership_email (membership_id, value_norm, created_at, updated_at) values {}",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&text).bind(id).bind(now);
                    for e in chunk {
                        q = q.bind(e.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// A new organization; a taken slug is a 409 (see `error::on_unique_violation`).
            pub(super) async fn insert_org(conn: &mut <$db as sqlx::Database>::Connection, slug: &str, name: &str, now: i64) -> Result<Org> {
                let org = Org { id: new_id(), slug: slug.to_owned(), name: name.to_owned(), created_at: now };
                sqlx::query("insert into organization (id, slug, name, created_at, updated_at) values ($1, $2, $3, $4, $4)")
                    .bind(&org.id)
                    .bind(&org.slug)
                    .bind(&org.name)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                Ok(org)
            }

            /// The id of the account with this email, created (with no membership) if none has it.
            pub(super) async fn ensure_account(conn: &mut <$db as sqlx::Database>::Connection, email: &str, now: i64) -> Result<String> {
                let norm = email.to_lowercase();
                sqlx::query(
                    "insert into account (id, email, email_norm, created_at, updated_at) values ($1, $2, $3, $4, $4) \
                     on conflict (email_norm) do nothing",
                )
                .bind(new_id())
                .bind(email)
                .bind(&norm)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(sqlx::query("select id from account where email_norm = $1")
                    .bind(&norm)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get::<String, _>("id")?)
            }

            /// Revokes the pending invitations to `org` addressed to the person behind a membership:
            /// once they have a membership there (deactivated or not), or it is removed, an old
            /// invitation must never bring them back.
            pub(super) async fn revoke_invitations_of(tx: &mut sqlx::Transaction<'_, $db>, org: &str, member: &str, now: i64, audit: &Audit) -> Result<()> {
                let revoked = sqlx::query(
                    "update invitation set status = 'revoked', updated_at = $3 where organization_id = $1 and status = 'pending' \
                     and email_norm = (select a.email_norm from membership m join account a on a.id = m.account_id where m.id = $2) \
                     returning id",
                )
                .bind(org)
                .bind(member)
                .bind(now)
                .fetch_all(&mut **tx)
                .await?;
                for row in revoked {
                    let id: String = row.try_get("id")?;
                    Self::record_audit(tx, org, audit, "Invitation.revoke", &id, now).await?;
                    tracing::info!(invitation = %id, member, "pending invitation revoked: the person has a membership, or lost it");
                }
                Ok(())
            }

            /// Adds `delta` (1 for a create, -1 for a delete) to one of the organization's
            /// counter shards, inside the change's transaction (see `COUNT_SHARDS`).
            pub(super) async fn count(tx: &mut sqlx::Transaction<'_, $db>, org: &str, kind: Kind, delta: i64) -> Result<()> {
                sqlx::query(COUNT_UPSERT).bind(org).bind(kind.name()).bind(shard()).bind(delta).execute(&mut **tx).await?;
                Ok(())
            }

            /// Records a change in the audit log, inside the change's transaction.
            pub(super) async fn record_audit(tx: &mut sqlx::Transaction<'_, $db>, org: &str, audit: &Audit, action: &str, target: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "insert into audit_event (id, organization_id, actor, action, target, request_id, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(new_id())
                .bind(org)
                .bind(&audit.actor)
                .bind(action)
                .bind(target)
                .bind(&audit.request_id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Creates a User or Group inside `tx`: for a User the account is found by email or
            /// created, and the organization's counter and the audit log follow.
            #[allow(clippy::too_many_arguments)]
            pub(super) async fn insert_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &str,
                org: &str,
                kind: Kind,
                doc: &Map<String, Value>,
                members: &[String],
                role: Option<&str>,
                now: i64,
                audit: &Audit,
            ) -> Result<()> {
                let c = columns(kind, doc);
            match kind {
                Kind::User => {
                    // The person behind the membership: found by email, or created. The
                    // organization gets a membership, never control of the account.
                    let account_id = match &c.email {
                        Some(email) => Self::ensure_account(tx, email, now).await?,
                        None => {
                            let account = new_id();
                            sqlx::query("insert into account (id, created_at, updated_at) values ($1, $2, $2)")
                                .bind(&account)
                                .bind(now)
                                .execute(&mut **tx)
                                .await?;
                            account
                        }
                    };
                    sqlx::query(
                        "insert into membership (id, organization_id, account_id, user_name, user_name_norm, external_id, active, \
                         doc, version, created_at, updated_at, role, role_assigned, search) values ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11, $12)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(&account_id)
                    .bind(&c.name)
                    .bind(&c.name_norm)
                    .bind(&c.external_id)
                    .bind(c.active)
                    .bind(Json(doc))
                    .bind(now)
                    .bind(role.unwrap_or("member"))
                    .bind(role.is_some())
                    .bind(&c.search)
                    .execute(&mut **tx)
                    .await?;
                    Self::write_emails(tx, id, &c.emails, now, false).await?;
                    Self::revoke_invitations_of(tx, org, id, now, audit).await?;
                }
                Kind::Group => {
                    sqlx::query(
                        "insert into team (id, organization_id, display_name, display_name_norm, external_id, doc, version, \
                         created_at, updated_at) values ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
                    )
                    .bind(id)
                    .bind(org)
                    .bind(&c.name)
                    .bind(&c.name_norm)
                    .bind(&c.external_id)
                    .bind(Json(doc))
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    if !members.is_empty() {
                        Self::add_members(tx, org, id, members, now).await?;
                    }
                }
            }
            Self::count(tx, org, kind, 1).await?;
            Self::record_audit(tx, org, audit, &format!("{}.create", kind.name()), id, now).await?;
                Ok(())
            }
        }
    };
}

for_both!(shared);
