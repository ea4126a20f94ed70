//! The console in a real browser: Debian's Chromium, driven through chromedriver (WebDriver) by
//! fantoccini, against scimd listening on loopback, on SQLite and on Postgres. Every page the
//! walks open is checked by axe-core (no serious or critical violation). Mail goes through a
//! real SMTP conversation to a loopback sink, and the invitee follows the link in it.
//!
//! Chromium, chromedriver and axe-core come from `tests/browser/install.sh`: CI runs it, and the
//! tests run it themselves when something is missing; where it cannot install them, these tests
//! fail, never skip. At most two browsers run at once
//! (the machine has two cores), and every step waits for what it needs to see, never a fixed
//! time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is the failure report.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/sink.rs"]
mod sink;

use axum::http::Method;
use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use helpers::TestApp;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Browsers running at once.
static BROWSERS: Semaphore = Semaphore::const_new(2);
/// The longest any one step waits for the page it expects.
const STEP: Duration = Duration::from_secs(20);
const PASSWORD: &str = "correct horse battery staple";

/// Runs a walk once on SQLite and once on Postgres.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::Site::start(super::TestApp::sqlite().await, "sqlite").await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(super::Site::start(super::TestApp::postgres().await, "postgres").await).await
                }
            }
        )*
    };
}

both!(
    an_admin_manages_people_and_invites_them,
    an_invitee_joins_from_the_mail_and_sees_the_directory_read_only,
    sign_up_creates_an_organization_and_its_admin,
);

mod admin_pages;
mod provisioning;

/// scimd serving one test database on loopback, with an admin (Ada) and a member (Bob) in
/// organization `acme`, and a group `Engineering`.
struct Site {
    app: TestApp,
    origin: String,
    backend: &'static str,
    provider: String,
    ada: String,
    bob: String,
}

impl Site {
    async fn start(mut app: TestApp, backend: &'static str) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let public = origin.clone();
        app.configure(move |c| {
            c.public_url = Some(public);
            c.mail_configured = true;
        });
        let router = app.router.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let provider = scimd::token::generate();
        app.store
            .create_admin_token("browser", &scimd::token::digest(&provider), app.clock.now())
            .await
            .unwrap();
        let mut site = Site {
            app,
            origin,
            backend,
            provider,
            ada: String::new(),
            bob: String::new(),
        };
        site.ada = site.member("ada@acme.test", "Ada", "Admin", "admin").await;
        scimd::service::credentials::set_password_as_operator(
            &site.app.store,
            &site.app.clock,
            "ada@acme.test",
            PASSWORD,
        )
        .await
        .unwrap();
        site.bob = site
            .member("bob@acme.test", "Bob", "Builder", "member")
            .await;
        site.app.group("Engineering", &[]).await;
        site
    }

    /// Adds a person to acme through the admin API; their member id.
    async fn member(&self, email: &str, given: &str, family: &str, role: &str) -> String {
        let body = json!({"email": email, "givenName": given, "familyName": family, "role": role});
        let r = self.admin(Method::POST, "/orgs/acme/members", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> helpers::Resp {
        let body = (!body.is_null()).then_some(body);
        self.app
            .send(
                method,
                &format!("/admin/v1{path}"),
                Some(&self.provider),
                body.as_ref(),
                &[],
            )
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Delivers the outbox to a fresh SMTP sink; the newest link under `path` mailed to `to`.
    async fn mailed_link(&self, to: &str, path: &str) -> String {
        let sink = sink::Sink::start().await;
        let outbox = scimd::email::OutboxStore::connect(&self.app.url)
            .await
            .unwrap();
        let smtp = scimd::email::SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.port,
            tls: scimd::email::TlsMode::None,
            username: None,
            password: None,
            from: "scimd <noreply@scimd.test>".into(),
        };
        scimd::email::Worker::new(outbox, &smtp, self.app.clock.clone())
            .unwrap()
            .deliver_due()
            .await
            .unwrap();
        let mail = sink.received();
        let m = mail
            .iter()
            .rev()
            .find(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .unwrap_or_else(|| panic!("no mail to {to} among {mail:?}"));
        let data = m.data.replace("=\r\n", "");
        let prefix = self.url(path);
        let at = data
            .find(&prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in {data}"));
        data[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || ":/._-".contains(*c))
            .collect()
    }

    /// Whether the screenshots for the README are taken by this run (once, on SQLite).
    fn shoots(&self) -> bool {
        self.backend == "sqlite"
    }
}

/// Runs `tests/browser/install.sh` once per test run when Chromium, chromedriver or axe-core is
/// missing, so the README's `cargo test` works on a fresh machine as it does in CI (the script
/// installs from Debian and npm; where it cannot, it fails and so do these tests).
fn install_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let missing = !which("chromium")
            || !which("chromedriver")
            || !dir.join("node_modules/axe-core/axe.min.js").exists();
        if missing {
            let ok = std::process::Command::new("bash")
                .arg(dir.join("install.sh"))
                .status()
                .expect("run tests/browser/install.sh");
            assert!(ok.success(), "installing the browser test tools failed");
        }
    });
}

/// One headless Chromium with its own chromedriver on a free loopback port.
struct Browser {
    c: Client,
    driver: tokio::process::Child,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Browser {
    async fn open() -> Browser {
        let slot = BROWSERS.acquire().await.unwrap();
        install_once();
        for tool in ["chromium", "chromedriver"] {
            assert!(
                which(tool),
                "{tool} is missing: the browser tests need it (bash tests/browser/install.sh)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        // Ready once it accepts connections.
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(started.elapsed() < STEP, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": which_path("chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let c = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromedriver session");
        Browser {
            c,
            driver,
            _slot: slot,
        }
    }

    async fn goto(&self, url: &str) {
        self.c.goto(url).await.unwrap();
    }

    async fn wait(&self, css: &str) -> Element {
        self.c
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
    }

    /// Waits until the element `css` holds `text`.
    async fn wait_text(&self, css: &str, text: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if t.contains(text) {
                        return t;
                    }
                }
            }
            if started.elapsed() > STEP {
                let body = self.c.source().await.unwrap_or_default();
                panic!("{css} never held {text:?}; the page: {body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.wait(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.wait(css).await.click().await.unwrap();
    }

    /// Clicks something that loads a new page, and waits for `then` on it.
    async fn click_to(&self, css: &str, then: &str) -> Element {
        self.click(css).await;
        self.wait(then).await
    }

    async fn sign_in(&self, site: &Site, email: &str, password: &str) {
        self.goto(&site.url("/")).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click_to("form[action='/signin'] button[type=submit]", "ul.orgs")
            .await;
    }

    /// axe-core over the page as it stands: no serious or critical violation.
    async fn axe(&self, what: &str) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/node_modules/axe-core/axe.min.js"
        );
        let src = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run bash tests/browser/install.sh"));
        self.c.execute(&src, vec![]).await.unwrap();
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
                          v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        let found: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(found.is_empty(), "accessibility of {what}: {found:#?}");
    }

    /// Saves a screenshot to `target/screenshots`, or with `SCIMD_UPDATE_SCREENSHOTS=1` to
    /// `docs/screenshots` for the README: a plain test run leaves the checkout as it was (the
    /// pages show the time, so every run's pictures differ).
    async fn screenshot(&self, site: &Site, name: &str) {
        if !site.shoots() {
            return;
        }
        let png = self.c.screenshot().await.unwrap();
        let dir = if std::env::var_os("SCIMD_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots")
        } else {
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots")
        };
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }

    async fn close(mut self) {
        let _ = self.c.close().await;
        let _ = self.driver.kill().await;
    }
}

fn which_path(tool: &str) -> String {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn which(tool: &str) -> bool {
    !which_path(tool).is_empty()
}

async fn an_admin_manages_people_and_invites_them(site: Site) {
    let b = Browser::open().await;
    b.goto(&site.url("/")).await;
    b.wait("#password").await;
    b.axe("the sign-in page").await;

    // A wrong password is said next to the form; the right one signs in.
    b.fill("#email", "ada@acme.test").await;
    b.fill("#password", "not the password").await;
    b.click("form[action='/signin'] button[type=submit]").await;
    b.wait_text("#signin-error", "not right").await;
    b.sign_in(&site, "ada@acme.test", PASSWORD).await;
    b.axe("the organization switcher").await;
    b.click_to("ul.orgs a[href='/o/acme/users']", "#total")
        .await;
    b.wait_text("#total", "2 people").await;
    b.axe("the Users page").await;
    b.screenshot(&site, "users").await;

    // Change Bob's role: the row comes back with the outcome in it.
    let bob_row = format!("#row-{}", site.bob);
    b.wait(&format!("{bob_row} select[name=role]"))
        .await
        .select_by_value("admin")
        .await
        .unwrap();
    b.wait_text(&bob_row, "Role changed to admin").await;
    let r = site
        .admin(Method::GET, "/orgs/acme/members", Value::Null)
        .await;
    let bob = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == site.bob.as_str())
        .unwrap()
        .clone();
    assert_eq!(bob["role"], "admin", "{bob}");
    b.wait(&format!("{bob_row} select[name=role]"))
        .await
        .select_by_value("member")
        .await
        .unwrap();
    b.wait_text(&bob_row, "Role changed to member").await;

    // A refused action says why inline: Ada cannot deactivate herself.
    b.click("input[aria-label='Ada Admin is active']").await;
    let said = b
        .wait_text(
            &format!("#row-{}", site.ada),
            "cannot deactivate themselves",
        )
        .await;
    assert!(said.contains("Ada Admin"), "{said}");
    assert!(b
        .wait("input[aria-label='Ada Admin is active']")
        .await
        .is_selected()
        .await
        .unwrap());
    b.axe("the Users page with a refusal").await;

    // Toggle Bob inactive: the database says so too.
    b.click("input[aria-label='Bob Builder is active']").await;
    b.wait_text(&bob_row, "Deactivated.").await;
    let r = site.app.get(&format!("/Users/{}", site.bob)).await;
    assert_eq!(r.body["active"], false, "{}", r.body);

    // Search and filters.
    b.goto(&site.url("/o/acme/users?q=build")).await;
    b.wait_text("#total", "1 person").await;
    b.goto(&site.url("/o/acme/users?status=inactive&role=member"))
        .await;
    b.wait_text("#total", "1 person").await;
    b.wait_text("table.users tbody", "Bob Builder").await;

    // Invite one, with names and a group.
    b.goto(&site.url("/o/acme/invite")).await;
    b.fill("#addresses", "carol@acme.test").await;
    b.fill("#first_name", "Carol").await;
    b.fill("#last_name", "Cook").await;
    b.click("fieldset input[type=checkbox]").await;
    b.click("#send-invites").await;
    b.wait_text("#invite-results", "carol@acme.test").await;
    b.wait_text("#invite-results", "Invited.").await;

    // Invite several at once: the bad address is refused alone, the others are invited.
    b.fill(
        "#addresses",
        "dan@acme.test, not-an-address\nerin@acme.test",
    )
    .await;
    b.click("#send-invites").await;
    let results = b.wait_text("#invite-results", "erin@acme.test").await;
    assert!(
        results.contains("not-an-address") && results.contains("not a valid email address"),
        "{results}"
    );
    assert_eq!(results.matches("Invited.").count(), 2, "{results}");
    b.axe("the invite panel").await;
    b.screenshot(&site, "invite").await;
    let invited = site
        .admin(Method::GET, "/orgs/acme/invitations", Value::Null)
        .await;
    let emails: Vec<&str> = invited.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["email"].as_str())
        .collect();
    for e in ["carol@acme.test", "dan@acme.test", "erin@acme.test"] {
        assert!(emails.contains(&e), "{e} in {emails:?}");
    }

    // A CSV with bad rows: the dry run lists each skipped row by line, then confirm.
    let csv = std::env::temp_dir().join(format!("scimd-invite-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(
        &csv,
        "email,group membership\nfred@acme.test,Engineering\nnot-an-email,\n\
         gina@acme.test,No Such Group\ncarol@acme.test,\n",
    )
    .unwrap();
    b.wait("#csv-file")
        .await
        .send_keys(&csv.display().to_string())
        .await
        .unwrap();
    b.click("#check-csv").await;
    let summary = b.wait_text("#csv-summary", "would be invited").await;
    assert!(
        summary.starts_with("1 would be invited; 3 rows are skipped"),
        "{summary}"
    );
    let skipped = b.wait_text("#csv-skipped", "already_invited").await;
    for line in ["3", "4", "5"] {
        assert!(skipped.contains(line), "line {line} in {skipped}");
    }
    b.axe("the CSV summary").await;
    b.screenshot(&site, "csv-summary").await;
    b.click("#confirm-csv").await;
    let done = b.wait_text("#csv-summary", "invited;").await;
    assert!(done.starts_with("1 invited; 3 rows were skipped"), "{done}");
    std::fs::remove_file(&csv).unwrap();

    // Invitations: each with its status; revoke one, send one again.
    b.click_to("nav a[href='/o/acme/invitations']", "table.invitations")
        .await;
    b.wait_text("table.invitations", "fred@acme.test").await;
    b.click("button[aria-label='Revoke the invitation to dan@acme.test']")
        .await;
    b.wait_text("#invitations-notice", "dan@acme.test is revoked")
        .await;
    let dan = b.wait_text("table.invitations", "revoked").await;
    assert!(dan.contains("dan@acme.test"), "{dan}");
    b.click("button[aria-label='Resend the invitation to erin@acme.test']")
        .await;
    b.wait_text("#invitations-notice", "Sent again to erin@acme.test")
        .await;
    b.axe("the Invitations page").await;

    // Groups: create one, add Bob from the organization's members, rename, remove, delete.
    b.click_to("nav a[href='/o/acme/groups']", "#group-total")
        .await;
    b.wait_text("table.groups", "Engineering").await;
    b.fill("#group-name", "Design").await;
    b.click_to("#create-group", "#add-member").await;
    b.axe("a group's page").await;
    b.fill("#add-member", "bob@acme.test").await;
    b.click("#add-to-group").await;
    b.wait_text("#group-notice", "Added bob@acme.test.").await;
    b.wait_text("table.members", "Bob Builder").await;
    b.fill("#add-member", "nobody@acme.test").await;
    b.click("#add-to-group").await;
    b.wait_text("#group-notice", "Nobody in this organization")
        .await;
    b.fill("#rename", "Design team").await;
    b.click("#rename-group").await;
    b.wait_text("#group-notice", "Renamed.").await;
    b.wait_text("h1", "Design team").await;
    b.click("button[aria-label='Remove Bob Builder from the group']")
        .await;
    b.wait_text("#group-notice", "Removed from the group.")
        .await;
    b.wait_text("table.members caption", "0 members").await;
    b.click("#delete-sure").await;
    b.click_to("#delete-group", "#group-total").await;
    let groups = b.wait_text("table.groups", "Engineering").await;
    assert!(!groups.contains("Design"), "{groups}");
    b.axe("the Groups page").await;

    // Bulk removal with a refused row: Bob goes, Ada (herself) stays, and the page says so.
    b.goto(&site.url("/o/acme/users")).await;
    b.click("input[aria-label='Select Ada Admin']").await;
    b.click("input[aria-label='Select Bob Builder']").await;
    b.click_to("#bulk-remove", "#confirm-remove").await;
    b.axe("the removal confirmation").await;
    b.click_to("#confirm-remove", "#remove-results").await;
    let results = b.wait_text("#remove-results", "Removed.").await;
    assert!(results.contains("Bob Builder"), "{results}");
    assert!(
        results.contains("Not removed: an admin cannot remove themselves"),
        "{results}"
    );
    b.axe("the removal results").await;
    let r = site.app.get(&format!("/Users/{}", site.bob)).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Sign out ends the session on the server: its pages are gone.
    b.click_to("form[action='/auth/logout'] button", "#password")
        .await;
    b.goto(&site.url("/o/acme/users")).await;
    b.wait("#password").await;
    b.close().await;
}

async fn an_invitee_joins_from_the_mail_and_sees_the_directory_read_only(site: Site) {
    let r = site
        .admin(
            Method::POST,
            "/orgs/acme/invitations",
            json!({"email": "hal@acme.test", "firstName": "Hal", "lastName": "Hill"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let link = site.mailed_link("hal@acme.test", "/invite/").await;
    let b = Browser::open().await;
    b.goto(&link).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click("form button[type=submit]").await;
    b.click_to("a[href='/o/acme/users']", "#password").await;
    b.sign_in(&site, "hal@acme.test", PASSWORD).await;
    b.click_to("ul.orgs a[href='/o/acme/users']", "#read-only")
        .await;
    b.wait_text("table.users", "Hal Hill").await;
    let controls =
        b.c.find_all(Locator::Css("table.users select, table.users input, #bulk"))
            .await
            .unwrap();
    assert!(controls.is_empty(), "a member gets no controls");
    b.axe("the member's Users page").await;
    // The admin pages refuse a member, in words.
    b.goto(&site.url("/o/acme/invite")).await;
    b.wait_text("main", "needs the admin role").await;
    b.goto(&site.url("/o/acme/provisioning")).await;
    b.wait_text("main", "needs the admin role").await;
    b.axe("the Provisioning page refused to a member").await;

    // Deactivated by an admin, Hal loses the organization's pages on the next request.
    let hal = site
        .admin(Method::GET, "/orgs/acme/members", Value::Null)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "hal@acme.test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let off = site
        .admin(
            Method::PATCH,
            &format!("/orgs/acme/members/{hal}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    b.goto(&site.url("/o/acme/users")).await;
    b.wait_text("main", "not an active member").await;
    b.close().await;
}

async fn sign_up_creates_an_organization_and_its_admin(site: Site) {
    let b = Browser::open().await;
    b.goto(&site.url("/signup")).await;
    b.wait("#org_slug").await;
    b.axe("the sign-up page").await;
    b.fill("#email", "ivy@initech.test").await;
    b.fill("#given_name", "Ivy").await;
    b.fill("#family_name", "Ives").await;
    b.fill("#org_name", "Initech").await;
    b.fill("#org_slug", "initech").await;
    b.click_to("form[action='/signup'] button", "#signup-done")
        .await;
    let link = site.mailed_link("ivy@initech.test", "/setup/").await;
    b.goto(&link).await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click_to("form button[type=submit]", "a[href='/']").await;
    b.sign_in(&site, "ivy@initech.test", PASSWORD).await;
    b.wait_text("ul.orgs", "Initech (admin, active)").await;
    b.click_to("ul.orgs a[href='/o/initech/users']", "#total")
        .await;
    b.wait_text("#total", "1 person").await;
    // The Invite users entry is there for the new admin.
    b.wait("nav a[href='/o/initech/invite']").await;
    b.click_to("form[action='/auth/logout'] button", "#password")
        .await;

    // Forgot password: a reset link by mail sets a new one.
    b.click_to("a[href='/forgot']", "#email").await;
    b.axe("the forgot-password page").await;
    b.fill("#email", "ivy@initech.test").await;
    b.click_to("form[action='/forgot'] button", "#forgot-done")
        .await;
    let link = site.mailed_link("ivy@initech.test", "/setup/").await;
    b.goto(&link).await;
    b.fill("input[name=password]", "a brand new passphrase")
        .await;
    b.click_to("form button[type=submit]", "a[href='/']").await;
    b.sign_in(&site, "ivy@initech.test", "a brand new passphrase")
        .await;

    // My profile: a wrong current password is refused in words; a change ends every session.
    b.click_to("a[href='/me']", "#change-password").await;
    b.axe("My profile").await;
    b.fill("#current_password", "not it at all").await;
    b.fill("#new_password", "yet another passphrase").await;
    b.click("#change-password").await;
    b.wait_text("#profile-notice", "current password is not right")
        .await;
    b.fill("#current_password", "a brand new passphrase").await;
    b.fill("#new_password", "yet another passphrase").await;
    b.click("#change-password").await;
    b.wait_text("#signin-notice", "every session has ended")
        .await;
    b.sign_in(&site, "ivy@initech.test", "yet another passphrase")
        .await;
    b.click_to("a[href='/me']", "#sign-out-everywhere").await;
    b.click_to("#sign-out-everywhere", "#password").await;
    b.goto(&site.url("/me")).await;
    b.wait("#password").await;
    b.close().await;
}
