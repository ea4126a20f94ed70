//! The admin API's JSON views of organizations, memberships and invitations; the console shows
//! the same values.

use crate::domain::InvitationStatus;
use crate::service::render::timestamp;
use crate::store::{Invitation, MembershipOf, Org};
use serde_json::{json, Value};

/// An organization.
pub fn org_json(o: &Org) -> Value {
    json!({"id": o.id, "slug": o.slug, "name": o.name, "createdAt": timestamp(o.created_at)})
}

/// One of a person's memberships, as their organization list shows it.
pub fn membership_json(m: &MembershipOf) -> Value {
    let mut v = org_json(&m.org);
    v["memberId"] = json!(m.member_id);
    v["role"] = json!(m.role);
    v["status"] = json!(if m.active { "active" } else { "inactive" });
    v
}

/// An invitation, with `expired` for a pending one past its expiry.
pub fn invitation_json(inv: &Invitation, now: i64) -> Value {
    let status = InvitationStatus::of(&inv.status, inv.expires_at, now).as_str();
    let ts = timestamp;
    json!({
        "id": inv.id,
        "email": inv.email,
        "firstName": inv.first_name,
        "lastName": inv.last_name,
        "role": inv.role,
        "groups": inv.groups,
        "status": status,
        "expiresAt": ts(inv.expires_at),
        "acceptedAt": inv.accepted_at.map(ts),
        "invitedBy": inv.invited_by,
        "createdAt": ts(inv.created_at),
        "updatedAt": ts(inv.updated_at),
    })
}
