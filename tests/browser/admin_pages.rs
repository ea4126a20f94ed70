//! The console's other admin pages and My profile in a real browser, one walk per database so
//! the suite starts one server and one browser for them all: the Users page's group filter, Add
//! user (an existing account, and a new one that follows the setup mail from the SMTP sink),
//! changing a pending invitation's role and groups, the Audit log with a filter, and My profile
//! (names, linked providers). Each step checks what the page shows after the action, and what
//! the admin API says, and axe-core checks each page.

use super::{Browser, Site, TestApp, PASSWORD};
use axum::http::Method;
use serde_json::{json, Value};

both!(an_admin_filters_adds_and_audits_and_the_added_person_edits_their_profile);

/// The admin API's members of acme: `(email, role, status)`.
async fn members(site: &Site) -> Vec<(String, String, String)> {
    let r = site
        .admin(Method::GET, "/orgs/acme/members?count=200", Value::Null)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (s(&m["email"]), s(&m["role"]), s(&m["status"])))
        .collect()
}

async fn an_admin_filters_adds_and_audits_and_the_added_person_edits_their_profile(site: Site) {
    // Bob is in Builders; Ada is in no group.
    let builders = site.app.group("Builders", &[site.bob.as_str()]).await;
    let builders = builders["id"].as_str().unwrap().to_owned();
    // Kim has an account on this server (another organization's, say), but not in acme.
    scimd::service::credentials::set_password_as_operator(
        &site.app.store,
        &site.app.clock,
        "kim@elsewhere.test",
        PASSWORD,
    )
    .await
    .unwrap();

    let b = Browser::open().await;
    b.sign_in(&site, "ada@acme.test", PASSWORD).await;

    // The Users page's group filter: only Builders' members, the group still chosen.
    b.click_to("ul.orgs a[href='/o/acme/users']", "#group")
        .await;
    b.wait_text("#total", "2 people").await;
    b.wait("#group")
        .await
        .select_by_value(&builders)
        .await
        .unwrap();
    b.click_to("form.filters button[type=submit]", "#total")
        .await;
    b.wait_text("#total", "1 person").await;
    let table = b.wait_text("table.users tbody", "Bob Builder").await;
    assert!(!table.contains("Ada Admin"), "{table}");
    assert!(table.contains("Builders"), "{table}");
    let chosen = b
        .wait(&format!("#group option[value='{builders}']"))
        .await
        .is_selected()
        .await
        .unwrap();
    assert!(chosen, "the filter shows the group it applies");
    b.axe("the Users page filtered by group").await;
    b.screenshot(&site, "users-group-filter").await;

    // Add user, an existing account: a member at once, no setup mail needed.
    b.goto(&site.url("/o/acme/users")).await;
    b.click_to("#add-user", "#add-email").await;
    b.axe("the Add user page").await;
    b.fill("#add-email", "kim@elsewhere.test").await;
    b.wait("#add-role")
        .await
        .select_by_value("admin")
        .await
        .unwrap();
    b.click("#add-user-submit").await;
    b.wait_text("#add-notice", "kim@elsewhere.test is now an admin of Acme")
        .await;
    let all = members(&site).await;
    assert!(
        all.iter()
            .any(|m| m == &("kim@elsewhere.test".into(), "admin".into(), "active".into())),
        "{all:?}"
    );
    // The same address again is refused beside the field.
    b.fill("#add-email", "kim@elsewhere.test").await;
    b.click("#add-user-submit").await;
    b.wait_text("#email-error", "already").await;
    b.axe("the Add user page with a refusal").await;

    // Add user, a new address: a member now, and a setup mail with a link that works.
    b.fill("#add-email", "lee@acme.test").await;
    b.fill("#add-given", "Lee").await;
    b.fill("#add-family", "Lane").await;
    b.click("#add-user-submit").await;
    b.wait_text("#add-notice", "lee@acme.test is now a member of Acme")
        .await;
    b.screenshot(&site, "add-user").await;
    let all = members(&site).await;
    assert!(
        all.iter()
            .any(|m| m.0 == "lee@acme.test" && m.1 == "member"),
        "{all:?}"
    );
    let setup = site.mailed_link("lee@acme.test", "/setup/").await;

    // A pending invitation's role and groups, changed from the Invitations page.
    let r = site
        .admin(
            Method::POST,
            "/orgs/acme/invitations",
            json!({"email": "max@acme.test", "firstName": "Max", "lastName": "Moss"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let invitation = r.body["id"].as_str().unwrap().to_owned();
    b.goto(&site.url("/o/acme/invitations")).await;
    b.click_to(
        "a[aria-label='Change the role or groups of the invitation to max@acme.test']",
        "#edit-role",
    )
    .await;
    b.axe("the invitation's edit page").await;
    b.wait("#edit-role")
        .await
        .select_by_value("admin")
        .await
        .unwrap();
    b.click(&format!("input[name=groups][value='{builders}']"))
        .await;
    b.click_to("#save-invitation", "#invitations-notice").await;
    b.wait_text(
        "#invitations-notice",
        "The invitation to max@acme.test now gives the admin role and 1 group",
    )
    .await;
    let row = b.wait_text(&format!("#inv-{invitation}"), "Builders").await;
    assert!(row.contains("admin"), "{row}");
    let stored = site
        .admin(Method::GET, "/orgs/acme/invitations", Value::Null)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == invitation.as_str())
        .unwrap()
        .clone();
    assert_eq!(stored["role"], "admin", "{stored}");
    assert_eq!(stored["groups"], json!([builders]), "{stored}");

    // The Audit log, filtered by action: that change alone, by Ada.
    b.click_to("nav a[href='/o/acme/audit']", "#f-action").await;
    b.wait_text("table.audit tbody", "Invitation.create").await;
    b.wait("#f-action")
        .await
        .select_by_label("Invitation.update")
        .await
        .unwrap();
    b.click_to("#filter-audit", "table.audit").await;
    b.wait_text("table.audit caption", "1 entry").await;
    let rows = b.wait_text("table.audit tbody", "Invitation.update").await;
    assert!(rows.contains("ada@acme.test"), "{rows}");
    assert!(!rows.contains("Invitation.create"), "{rows}");
    b.axe("the Audit log filtered by action").await;
    b.screenshot(&site, "audit").await;
    // The same filter over a range of days: today has it, tomorrow nothing.
    let day = |micros: i64| scimd::service::render::timestamp(micros)[..10].to_owned();
    let now = site.app.clock.now();
    let tomorrow = day(now + 24 * 3600 * 1_000_000);
    b.goto(&site.url(&format!(
        "/o/acme/audit?action=Invitation.update&from={}&to={}",
        day(now),
        day(now)
    )))
    .await;
    b.wait_text("table.audit caption", "1 entry").await;
    b.goto(&site.url(&format!(
        "/o/acme/audit?action=Invitation.update&from={tomorrow}"
    )))
    .await;
    b.wait_text("table.audit caption", "No entries").await;
    // A filter the API refuses is said beside its field.
    b.fill("#f-actor", "nobody-at-all").await;
    b.click_to("#filter-audit", "table.audit").await;
    b.wait("#actor-error").await;
    b.axe("the Audit log with a refused filter").await;
    b.click_to("form[action='/auth/logout'] button", "#password")
        .await;

    // Lee follows the setup mail, signs in and edits their profile, where a linked provider
    // is listed.
    b.goto(&setup).await;
    b.fill("input[name=given_name]", "Lee").await;
    b.fill("input[name=family_name]", "Lane").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click_to("form button[type=submit]", "a[href='/']").await;
    let lee = site
        .app
        .store
        .account_by_email("lee@acme.test")
        .await
        .unwrap()
        .unwrap();
    site.app
        .store
        .link_identity(
            "google",
            "lee-google-subject",
            &lee.id,
            "lee@acme.test",
            site.app.clock.now(),
        )
        .await
        .unwrap();
    b.sign_in(&site, "lee@acme.test", PASSWORD).await;
    b.wait_text("ul.orgs", "Acme (member, active)").await;
    b.click_to("a[href='/me']", "#save-names").await;
    b.wait_text("main", "(Lee Lane)").await;
    let linked = b.wait_text("#linked-providers", "google").await;
    assert!(linked.contains("lee@acme.test"), "{linked}");
    let today = scimd::service::render::timestamp(site.app.clock.now());
    assert!(
        linked.contains(&format!("last used {}", &today[..10])),
        "{linked}"
    );
    b.wait("button[aria-label='Unlink google (lee@acme.test)']")
        .await;
    b.fill("#given_name", "Leona").await;
    b.fill("#family_name", "Lane-Lopez").await;
    b.click_to("#save-names", "#profile-notice").await;
    b.wait_text("#profile-notice", "Your name is saved.").await;
    b.wait_text("main", "(Leona Lane-Lopez)").await;
    let value = b.wait("#given_name").await.prop("value").await.unwrap();
    assert_eq!(value.as_deref(), Some("Leona"));
    let lee = site.app.store.account(&lee.id).await.unwrap().unwrap();
    assert_eq!(lee.given_name.as_deref(), Some("Leona"));
    assert_eq!(lee.family_name.as_deref(), Some("Lane-Lopez"));
    b.axe("My profile after saving names").await;
    b.screenshot(&site, "profile").await;

    // Made a provider admin by the operator, Lee sees every organization and opens another
    // one's pages with an admin's controls.
    site.app.other_org("globex").await;
    site.app
        .store
        .set_provider_admin(&lee.id, true, site.app.clock.now())
        .await
        .unwrap();
    b.goto(&site.url("/")).await;
    let all = b.wait_text("#all-orgs", "globex").await;
    assert!(all.contains("Acme"), "{all}");
    b.axe("the switcher of a provider admin").await;
    b.screenshot(&site, "switcher-provider-admin").await;
    b.click_to("#all-orgs a[href='/o/globex/users']", "#total")
        .await;
    b.wait_text("#total", "0 people").await;
    b.wait("#add-user").await;
    b.wait("nav a[href='/o/globex/audit']").await;
    b.axe("another organization's Users page, for a provider admin")
        .await;
    b.close().await;
}
