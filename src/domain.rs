//! Values parsed once at the edge, so the layers below take them as given: a [`Role`], an
//! [`Email`] address and a [`Name`]. Each parse answers a refusal naming the field at fault.

use crate::error::{Error, Result};
use std::fmt;

/// Most characters (Unicode scalar values, not bytes) in a name: a person's given or family
/// name, a display name, an organization's or a token's name.
pub const MAX_NAME_CHARS: usize = 200;

/// A person's role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// `admin` or `member`, exactly; anything else is refused naming `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(Error::invalid(
                field,
                format!(
                    "{field} must be admin or member; got {:?}",
                    crate::error::excerpt(other, 64)
                ),
            )),
        }
    }

    /// A stored role: anything but `admin` is a member's rights.
    pub fn of_stored(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An email address as people type it, trimmed, checked by [`valid_email`]. Case is kept; the
/// store compares addresses case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, s: &str) -> Result<Email> {
        let s = s.trim();
        if valid_email(s) {
            Ok(Email(s.to_owned()))
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "{:?} is not a valid email address",
                    crate::error::excerpt(s, 320)
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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

/// Where an invitation stands. `expired` is not stored: a pending invitation past its expiry is
/// expired from that moment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    /// The status of an invitation stored as `stored` that expires at `expires_at`, at `now`.
    pub fn of(stored: &str, expires_at: i64, now: i64) -> InvitationStatus {
        match stored {
            "pending" if expires_at <= now => InvitationStatus::Expired,
            "pending" => InvitationStatus::Pending,
            "accepted" => InvitationStatus::Accepted,
            "revoked" => InvitationStatus::Revoked,
            _ => InvitationStatus::Expired,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
        }
    }
}

/// Text a client filters by is compared with stored text: a control character (NUL above all,
/// which Postgres text cannot hold) can match nothing and is refused naming `field`.
pub fn refuse_control(field: &'static str, s: &str) -> Result<()> {
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// A point in time as people and clients write it: an RFC 3339 timestamp
/// (`2026-11-29T08:30:00Z`) or a calendar date (`2026-11-29`, its midnight UTC), as
/// microseconds since the epoch (how scimd stores times). Anything else is refused naming
/// `field`.
pub fn parse_time(field: &'static str, s: &str) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let at = time::OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
            .ok()
            .map(|d| d.midnight().assume_utc())
    });
    match at {
        Some(t) => Ok((t.unix_timestamp_nanos() / 1000) as i64),
        None => Err(Error::invalid(
            field,
            format!(
                "{field} must be a date (2026-11-29) or an RFC 3339 time (2026-11-29T08:30:00Z); got {:?}",
                crate::error::excerpt(s, 64)
            ),
        )),
    }
}

/// A name: trimmed, 1 to [`MAX_NAME_CHARS`] characters, counted one way everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// A required name; blank or too long is refused naming `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Name> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > MAX_NAME_CHARS {
            return Err(Error::invalid(
                field,
                format!("{field} must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        Ok(Name(s.to_owned()))
    }
    /// An optional name: blank means none; too long is refused naming `field`.
    pub fn optional(field: &'static str, s: Option<&str>) -> Result<Option<Name>> {
        match s.map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) if s.chars().count() > MAX_NAME_CHARS => Err(Error::invalid(
                field,
                format!("{field} must be at most {MAX_NAME_CHARS} characters"),
            )),
            Some(s) => Ok(Some(Name(s.to_owned()))),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn roles_are_exactly_admin_or_member() {
        assert_eq!(Role::parse("role", "admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("role", "member").unwrap(), Role::Member);
        for bad in ["Admin", "", "owner", " admin"] {
            let e = Role::parse("role", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid);
            assert_eq!(e.field(), Some("role"));
        }
        assert_eq!(Role::of_stored("admin"), Role::Admin);
        assert_eq!(Role::of_stored("anything"), Role::Member);
    }

    #[test]
    fn filters_refuse_control_characters() {
        assert!(refuse_control("target", "User.update 42").is_ok());
        for bad in ["a\0b", "\u{b}", "x\u{8b}"] {
            let e = refuse_control("target", bad).unwrap_err();
            assert_eq!(e.field(), Some("target"));
        }
    }

    #[test]
    fn a_pending_invitation_expires_at_its_expiry() {
        assert_eq!(
            InvitationStatus::of("pending", 10, 9),
            InvitationStatus::Pending
        );
        assert_eq!(
            InvitationStatus::of("pending", 10, 10),
            InvitationStatus::Expired
        );
        assert_eq!(
            InvitationStatus::of("accepted", 10, 99),
            InvitationStatus::Accepted
        );
        assert_eq!(InvitationStatus::of("revoked", 10, 99).as_str(), "revoked");
    }

    #[test]
    fn names_count_characters_not_bytes() {
        let two_hundred_e_acute = "é".repeat(200);
        assert!(Name::parse("givenName", &two_hundred_e_acute).is_ok());
        assert!(Name::parse("givenName", &"é".repeat(201)).is_err());
        assert!(Name::parse("givenName", "   ").is_err());
        assert_eq!(Name::parse("givenName", "  Ada ").unwrap().as_str(), "Ada");
        assert_eq!(Name::optional("familyName", Some(" ")).unwrap(), None);
        let e = Name::optional("familyName", Some(&"x".repeat(201))).unwrap_err();
        assert_eq!(e.field(), Some("familyName"));
    }

    #[test]
    fn emails_are_trimmed_and_checked() {
        assert_eq!(
            Email::parse("email", " ada@example.com ").unwrap().as_str(),
            "ada@example.com"
        );
        for ok in [
            "a@b.co",
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "x_y@a-b.io",
            "ü@exämple.de",
        ] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@.co",
            "a b@c.co",
            "a@b..co",
            ".a@b.co",
            "a.@b.co",
            "a..b@c.co",
            "a@-b.co",
            "<a@b.co>",
            "a@b.co,c@d.co",
            "a@@example.com",
            "<a>@example.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
            let e = Email::parse("email", bad).unwrap_err();
            assert_eq!(e.field(), Some("email"));
        }
    }

    #[test]
    fn times_are_dates_or_rfc3339_and_nothing_else() {
        assert_eq!(parse_time("since", "1970-01-02").unwrap(), 86_400_000_000);
        assert_eq!(
            parse_time("since", " 1970-01-01T00:00:01Z ").unwrap(),
            1_000_000
        );
        assert_eq!(
            parse_time("since", "1970-01-01T01:00:00+01:00").unwrap(),
            0,
            "the offset is applied"
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-29 08:30",
            "1732867200",
        ] {
            let e = parse_time("until", bad).unwrap_err();
            assert_eq!(e.field(), Some("until"), "{bad}");
        }
    }
}
