//! Who may do what in an organization: the caller, the rights an operation needs, and the one
//! rule that decides. Every admin API operation and every console page goes through
//! [`check`], so the two can never disagree.

use crate::domain::Role;
use crate::error::{Error, Result};
use crate::store::MembershipOf;

/// Who is calling: a provider admin (a token from `scimd admin token create`, rights in every
/// organization) or a person signed in with an access token (the rights of their memberships).
#[derive(Clone, Debug)]
pub enum Caller {
    Provider {
        id: String,
        name: String,
    },
    Person {
        account: String,
        session: String,
        email: String,
        name: String,
    },
}

impl Caller {
    /// The actor the audit log names.
    pub fn actor(&self) -> String {
        match self {
            Caller::Provider { id, .. } => format!("admin:{id}"),
            Caller::Person { account, .. } => format!("account:{account}"),
        }
    }

    /// How emails name the caller.
    pub fn display(&self) -> String {
        match self {
            Caller::Provider { name, .. } => format!("{name} (an administrator)"),
            Caller::Person { name, email, .. } if !name.is_empty() => format!("{name} ({email})"),
            Caller::Person { email, .. } => email.clone(),
        }
    }
}

/// The rights an operation needs in an organization.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any active member: reading the directory.
    Member,
    /// An active admin of the organization.
    Admin,
}

/// Whether a person with `membership` (their active membership in organization `slug`, if any)
/// has the rights `need` names. A person who is not an active member gets the same refusal
/// whether or not the organization exists.
pub fn check(membership: Option<&MembershipOf>, slug: &str, need: Need) -> Result<Role> {
    let needed = match need {
        Need::Member => "member (or admin)",
        Need::Admin => "admin",
    };
    let Some(m) = membership.filter(|m| m.active) else {
        return Err(Error::forbidden(format!(
            "this needs the {needed} role in organization {slug:?}, and you are not an active member of it"
        )));
    };
    let role = Role::of_stored(&m.role);
    allows(role, slug, need)?;
    Ok(role)
}

/// The same rule for a caller whose role in organization `slug` is already known (an access
/// checked by [`check`], then passed to a function that the console calls too).
pub fn allows(role: Role, slug: &str, need: Need) -> Result<()> {
    if need == Need::Admin && role != Role::Admin {
        return Err(Error::forbidden(format!(
            "this needs the admin role in organization {slug:?}; your role there is {role}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::store::Org;

    fn membership(role: &str, active: bool) -> MembershipOf {
        MembershipOf {
            member_id: "m1".into(),
            org: Org {
                id: "o1".into(),
                slug: "acme".into(),
                name: "Acme".into(),
                created_at: 0,
            },
            role: role.into(),
            active,
            last_active_at: None,
        }
    }

    #[test]
    fn admins_may_do_what_members_may() {
        let admin = membership("admin", true);
        assert_eq!(
            check(Some(&admin), "acme", Need::Admin).unwrap(),
            Role::Admin
        );
        assert_eq!(
            check(Some(&admin), "acme", Need::Member).unwrap(),
            Role::Admin
        );
    }

    #[test]
    fn members_are_refused_admin_operations_naming_their_role() {
        let member = membership("member", true);
        assert_eq!(
            check(Some(&member), "acme", Need::Member).unwrap(),
            Role::Member
        );
        let e = check(Some(&member), "acme", Need::Admin).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert!(e.detail().contains("your role there is member"), "{e}");
    }

    #[test]
    fn inactive_and_absent_memberships_get_the_same_refusal() {
        let inactive = membership("admin", false);
        let a = check(Some(&inactive), "acme", Need::Member).unwrap_err();
        let b = check(None, "acme", Need::Member).unwrap_err();
        assert_eq!(a.kind(), ErrorKind::Forbidden);
        assert_eq!(a.detail(), b.detail());
    }

    #[test]
    fn a_known_role_meets_the_same_rule() {
        assert!(allows(Role::Admin, "acme", Need::Admin).is_ok());
        assert!(allows(Role::Member, "acme", Need::Member).is_ok());
        let e = allows(Role::Member, "acme", Need::Admin).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert!(
            e.detail().contains("your role there is member"),
            "{}",
            e.detail()
        );
        // The same refusal as `check` gives the same member.
        let m = membership("member", true);
        let by_check = check(Some(&m), "acme", Need::Admin).unwrap_err();
        assert_eq!(by_check.detail(), e.detail());
    }
}
