//! Signed out: the sign-in, sign-up and forgotten-password pages. The two forms that have no
//! session yet carry a double-submit token of their own (`FORM_COOKIE`).

#![allow(clippy::result_large_err)]

use super::*;

/// The cookie of the double-submit token that the sign-in and sign-up forms carry: a page on
/// another site can post neither form, so it cannot sign a browser in to someone else's account.
pub(super) const FORM_COOKIE: &str = "scimd_form";

#[derive(Template)]
#[template(path = "signin.html")]
pub(super) struct SigninPage {
    chrome: Chrome,
    title: &'static str,
    providers: Vec<(String, String)>,
    email: String,
    error: Option<String>,
    /// Something done, said on the way to signing in again (a password changed, say).
    notice: Option<String>,
    form_token: String,
}

/// A fresh double-submit token, set as a cookie on the page that carries it.
pub(super) fn with_form_token(st: &AppState, mut resp: Response, token: &str) -> Response {
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, FORM_COOKIE, token, "/", 3600),
    );
    resp
}

pub(super) fn form_token_ok(headers: &HeaderMap, f: &FormFields) -> bool {
    let cookie = crate::http::auth::cookie(headers, FORM_COOKIE).unwrap_or_default();
    let field = f.get("form_token").unwrap_or_default();
    !cookie.is_empty()
        && cookie.len() == field.len()
        && subtle::ConstantTimeEq::ct_eq(cookie.as_bytes(), field.as_bytes()).into()
}

/// The sign-in page (also what `/` shows to a browser without a session).
pub(super) fn signin_view(
    st: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<String>,
) -> Response {
    signin_with(st, status, email, error, None)
}

pub(super) fn signin_with(
    st: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let token = crate::token::generate();
    let view = SigninPage {
        chrome: Chrome::signed_out(),
        title: "Sign in to scimd",
        providers: st
            .federation
            .providers()
            .iter()
            .map(|p| (p.name().to_owned(), p.label.clone()))
            .collect(),
        email: email.to_owned(),
        error,
        notice,
        form_token: token.clone(),
    };
    with_form_token(st, page(status, &view), &token)
}

pub(super) async fn signin_page(
    State(st): State<AppState>,
    MaybeSession(s): MaybeSession,
) -> Response {
    if s.is_some() {
        return redirect("/");
    }
    signin_view(&st, StatusCode::OK, "", None)
}

pub(super) async fn signin(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormFields::parse(&body);
    let email = f.text("email");
    if !form_token_ok(&headers, &f) {
        return signin_view(
            &st,
            StatusCode::FORBIDDEN,
            &email,
            Some("This sign-in form expired. Try again.".into()),
        );
    }
    let outcome = crate::http::people::password_sign_in(
        &st,
        &ip.0,
        Some(email.clone()),
        Some(f.text("password")),
    )
    .await;
    crate::metrics::sign_in(match &outcome {
        Ok(Ok(_)) => "success",
        Ok(Err(_)) => "limited",
        Err(e) if e.kind() == crate::error::ErrorKind::Unauthorized => "wrong",
        Err(e) if e.parts().0.is_client_error() => "invalid",
        Err(_) => "error",
    });
    let account = match outcome {
        Ok(Ok(account)) => account,
        Ok(Err(wait)) => {
            return signin_view(
                &st,
                StatusCode::TOO_MANY_REQUESTS,
                &email,
                Some(format!(
                    "Too many sign-in attempts. Try again in {wait} seconds."
                )),
            )
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            return signin_view(&st, status, &email, Some(capitalise(&text)));
        }
    };
    match sessions::start(
        &st.store,
        &st.clock,
        &account,
        "password",
        st.config.session_idle,
    )
    .await
    {
        Ok(started) => {
            let mut resp = redirect("/");
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &st,
                    sessions::COOKIE,
                    &started.secret,
                    "/",
                    sessions::MAX_MICROS / 1_000_000,
                ),
            );
            h.append(header::SET_COOKIE, set_cookie(&st, FORM_COOKIE, "", "/", 0));
            resp
        }
        Err(e) => crate::http::invite::internal(e),
    }
}

#[derive(Default)]
pub(super) struct SignupForm {
    email: String,
    given_name: String,
    family_name: String,
    org_name: String,
    org_slug: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub(super) struct SignupPage {
    chrome: Chrome,
    title: &'static str,
    form: SignupForm,
    error: Option<String>,
    done: bool,
    form_token: String,
}

pub(super) fn signup_view(
    st: &AppState,
    status: StatusCode,
    form: SignupForm,
    error: Option<String>,
    done: bool,
) -> Response {
    let token = crate::token::generate();
    let view = SignupPage {
        chrome: Chrome::signed_out(),
        title: if done {
            "Check your email"
        } else {
            "Create an organization"
        },
        form,
        error,
        done,
        form_token: token.clone(),
    };
    with_form_token(st, page(status, &view), &token)
}

pub(super) async fn signup_page(State(st): State<AppState>) -> Response {
    signup_view(&st, StatusCode::OK, SignupForm::default(), None, false)
}

/// Sign-up: the admin API's own (a new organization whose creator is its admin, an
/// account-setup email proving the address, the same answer whether or not it had an account).
pub(super) async fn signup(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormFields::parse(&body);
    let form = SignupForm {
        email: f.text("email"),
        given_name: f.text("given_name"),
        family_name: f.text("family_name"),
        org_name: f.text("org_name"),
        org_slug: f.text("org_slug"),
    };
    if !form_token_ok(&headers, &f) {
        let e = "This form expired. Try again.".to_owned();
        return signup_view(&st, StatusCode::FORBIDDEN, form, Some(e), false);
    }
    let request = crate::http::people::Signup {
        email: Some(form.email.clone()),
        given_name: Some(form.given_name.clone()),
        family_name: Some(form.family_name.clone()),
        organization: Some(crate::http::people::SignupOrg {
            slug: Some(form.org_slug.trim().to_owned()),
            name: Some(form.org_name.clone()),
        }),
    };
    let request_id = crate::http::extract::request_id(&headers);
    match crate::http::people::sign_up(&st, &ip.0, request_id, request).await {
        Ok(Ok(())) => signup_view(&st, StatusCode::OK, SignupForm::default(), None, true),
        Ok(Err(wait)) => {
            let e = format!("Too many attempts from here. Try again in {wait} seconds.");
            signup_view(&st, StatusCode::TOO_MANY_REQUESTS, form, Some(e), false)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            signup_view(&st, status, form, Some(capitalise(&text)), false)
        }
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
pub(super) struct ForgotPage {
    chrome: Chrome,
    title: &'static str,
    email: String,
    error: Option<String>,
    done: bool,
    form_token: String,
}

pub(super) fn forgot_view(
    st: &AppState,
    status: StatusCode,
    email: String,
    error: Option<String>,
    done: bool,
) -> Response {
    let token = crate::token::generate();
    let view = ForgotPage {
        chrome: Chrome::signed_out(),
        title: "Forgot your password?",
        email,
        error,
        done,
        form_token: token.clone(),
    };
    with_form_token(st, page(status, &view), &token)
}

pub(super) async fn forgot_page(State(st): State<AppState>) -> Response {
    forgot_view(&st, StatusCode::OK, String::new(), None, false)
}

/// The admin API's password reset: a link by email, and the same answer whether or not the
/// address has an account.
pub(super) async fn forgot(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = FormFields::parse(&body);
    let email = f.text("email");
    if !form_token_ok(&headers, &f) {
        let e = "This form expired. Try again.".to_owned();
        return forgot_view(&st, StatusCode::FORBIDDEN, email, Some(e), false);
    }
    match crate::http::people::request_reset(&st, &ip.0, &email).await {
        Ok(Ok(())) => forgot_view(&st, StatusCode::OK, String::new(), None, true),
        Ok(Err(wait)) => {
            let e = format!("Too many attempts. Try again in {wait} seconds.");
            forgot_view(&st, StatusCode::TOO_MANY_REQUESTS, email, Some(e), false)
        }
        Err(e) => {
            let (status, text) = refusal(&e);
            forgot_view(&st, status, email, Some(capitalise(&text)), false)
        }
    }
}
