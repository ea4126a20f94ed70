//! Adding people: the checked fields of a person to add or sign up, an organization's name, and
//! the membership document (a SCIM User) `PeopleStore::enrol` writes for them.

use crate::domain::{Email, Name};
use crate::error::{Error, Result};
use crate::scim::schema::Kind;
use serde_json::json;

/// A person to add, checked: email and optional names.
pub struct Person {
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

impl Person {
    pub fn check(
        email: Option<String>,
        given_name: Option<String>,
        family_name: Option<String>,
    ) -> Result<Person> {
        let email = Email::parse("email", email.as_deref().unwrap_or_default())?.into_string();
        Ok(Person {
            email,
            given_name: optional_name("givenName", given_name)?,
            family_name: optional_name("familyName", family_name)?,
        })
    }
}

/// A person's given or family name, checked: at most 200 characters, trimmed; empty is none.
pub fn optional_name(field: &'static str, v: Option<String>) -> Result<Option<String>> {
    Ok(Name::optional(field, v.as_deref())?.map(Name::into_string))
}

/// A slug for a new organization, refused naming the `slug` field.
pub fn check_slug_field(slug: &str) -> Result<()> {
    super::check_slug(slug).map_err(|m| Error::invalid("slug", m))
}

/// An organization's display name: the given one (at most 200 characters) or its slug.
pub fn org_name(name: Option<String>, slug: &str) -> Result<String> {
    Ok(Name::optional("name", name.as_deref())?.map_or_else(|| slug.to_owned(), Name::into_string))
}

/// What `PeopleStore::enrol` writes for a person: their membership document built from their email
/// and names (a SCIM User, so an identity provider can take it over later).
pub fn enrolment(
    email: &str,
    given_name: Option<String>,
    family_name: Option<String>,
    found: Option<(String, String)>,
    join: Vec<(String, String)>,
    setup: Option<crate::store::SetupLink>,
) -> Result<crate::store::Enrolment> {
    let mut user = json!({
        "userName": email,
        "emails": [{"value": email, "primary": true}],
        "active": true,
    });
    if given_name.is_some() || family_name.is_some() {
        user["name"] = json!({"givenName": given_name, "familyName": family_name});
        let display: Vec<&str> = [&given_name, &family_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        user["displayName"] = json!(display.join(" "));
    }
    let doc = crate::scim::resource::normalize(Kind::User.schema(), &user)?;
    Ok(crate::store::Enrolment {
        email: email.to_owned(),
        doc,
        given_name,
        family_name,
        found,
        join,
        setup,
    })
}
