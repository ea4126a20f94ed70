//! My profile: names, password, linked sign-in providers and signing out everywhere.

#![allow(clippy::result_large_err)]

use super::*;

#[derive(Template)]
#[template(path = "profile.html")]
pub(super) struct ProfilePage {
    chrome: Chrome,
    title: &'static str,
    name: String,
    given_name: String,
    family_name: String,
    identities: Vec<IdentityRow>,
    has_password: bool,
    notice: Option<String>,
    ok: bool,
    /// The field a refusal concerns (`given_name`, `family_name`), so it sits beside it.
    field: &'static str,
}

pub(super) struct IdentityRow {
    provider: String,
    label: String,
    subject: String,
    email: String,
    last_used: String,
}

/// My profile as it is now, with an outcome (`ok` false for a refusal) when there is one.
pub(super) async fn profile_view(
    st: &AppState,
    s: &Signed,
    status: StatusCode,
    notice: Option<String>,
    ok: bool,
    field: &'static str,
) -> Response {
    let account = &s.session.account;
    let (acct, identities) = match (
        st.store.account(account).await,
        st.store.identities_of(account).await,
    ) {
        (Ok(Some(a)), Ok(i)) => (a, i),
        (Ok(None), _) => return redirect("/"),
        (Err(e), _) | (_, Err(e)) => return crate::http::invite::internal(e),
    };
    let label = |name: &str| {
        st.federation
            .provider(name)
            .map_or_else(|| name.to_owned(), |p| p.label.clone())
    };
    let given_name = acct.given_name.unwrap_or_default();
    let family_name = acct.family_name.unwrap_or_default();
    page(
        status,
        &ProfilePage {
            chrome: s.chrome("me"),
            title: "My profile",
            name: format!("{given_name} {family_name}").trim().to_owned(),
            given_name,
            family_name,
            identities: identities
                .into_iter()
                .map(|i| IdentityRow {
                    label: label(&i.provider),
                    provider: i.provider,
                    subject: i.subject,
                    email: i.email,
                    last_used: i.last_used_at.map_or_else(|| "never".into(), users::day),
                })
                .collect(),
            has_password: acct.password_hash.is_some(),
            notice,
            ok,
            field,
        },
    )
}

pub(super) async fn profile_page(State(st): State<AppState>, signed: Signed) -> Response {
    profile_view(&st, &signed, StatusCode::OK, None, true, "").await
}

/// One's own names, through `people::set_names_as`.
pub(super) async fn change_names(
    State(st): State<AppState>,
    MeForm { signed, f }: MeForm,
) -> Response {
    let saved = crate::http::people::set_names_as(
        &st,
        &signed.session.account,
        Some(f.text("given_name")),
        Some(f.text("family_name")),
    )
    .await;
    match saved {
        Ok(()) => {
            let note = Some("Your name is saved.".to_owned());
            profile_view(&st, &signed, StatusCode::OK, note, true, "").await
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            let field = match e.field() {
                Some("givenName") => "given_name",
                Some("familyName") => "family_name",
                _ => "",
            };
            profile_view(&st, &signed, status, Some(capitalise(&text)), false, field).await
        }
    }
}

/// Unlinks one of one's own sign-in providers, through `people::unlink_as` (never the last way
/// to sign in).
pub(super) async fn unlink(State(st): State<AppState>, MeForm { signed, f }: MeForm) -> Response {
    let provider = f.text("provider");
    let done =
        crate::http::people::unlink_as(&st, &signed.session.account, &provider, &f.text("subject"))
            .await;
    match done {
        Ok(()) => {
            let note = Some(format!(
                "{provider} is unlinked. Signing in with it again links it again, as it vouches \
                 for your address."
            ));
            profile_view(&st, &signed, StatusCode::OK, note, true, "").await
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            profile_view(&st, &signed, status, Some(capitalise(&text)), false, "").await
        }
    }
}

/// The admin API's password change: the current password (counted like a sign-in), then every
/// session of the account ends, this one too.
pub(super) async fn change_password(
    State(st): State<AppState>,
    ip: ClientIp,
    MeForm { signed, f }: MeForm,
) -> Response {
    let changed = crate::http::people::change_password_as(
        &st,
        &signed.session.account,
        &ip.0,
        Some(f.text("current_password")),
        Some(f.text("new_password")),
    )
    .await;
    match changed {
        Ok(Ok(())) => signed_out_with(
            &st,
            "Your password is changed, and every session has ended. Sign in with the new one.",
        ),
        Ok(Err(wait)) => {
            profile_view(
                &st,
                &signed,
                StatusCode::TOO_MANY_REQUESTS,
                Some(format!("Too many attempts. Try again in {wait} seconds.")),
                false,
                "",
            )
            .await
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            profile_view(&st, &signed, status, Some(capitalise(&text)), false, "").await
        }
    }
}

/// Ends every session of the account, on every replica: browsers and admin API tokens alike.
pub(super) async fn sign_out_everywhere(
    State(st): State<AppState>,
    MeForm { signed, .. }: MeForm,
) -> Response {
    match st
        .store
        .revoke_sessions(&signed.session.account, None, st.clock.now())
        .await
    {
        Ok(n) => {
            tracing::info!(account = %signed.session.account, sessions = n, "signed out everywhere");
            signed_out_with(&st, "You are signed out everywhere.")
        }
        Err(e) => crate::http::invite::internal(e),
    }
}

/// The sign-in page with a note, the session cookie cleared.
pub(super) fn signed_out_with(st: &AppState, note: &str) -> Response {
    let mut resp = signin_with(st, StatusCode::OK, "", None, Some(note.to_owned()));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, sessions::COOKIE, "", "/", 0),
    );
    resp
}
