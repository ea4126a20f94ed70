//! The email outbox and its delivery worker, over a real SMTP conversation: lettre talks TCP to
//! a small SMTP sink on loopback that records what it is handed.

use crate::both;
use crate::helpers::TestApp;
pub(crate) use crate::sink::Sink;
use scimd::email::{
    backoff, enqueue_pg, enqueue_sqlite, OutboxMessage, OutboxStore, SmtpConfig, Status, TlsMode,
    Worker, LEASE, MAX_ATTEMPTS,
};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

/// A port on which nothing listens (until a sink is started on it).
async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn smtp(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        username: None,
        password: None,
        from: "scimd <noreply@scimd.test>".into(),
    }
}

/// A worker with its own database connection, as another replica would have.
pub(crate) async fn worker(app: &TestApp, port: u16) -> (Worker, OutboxStore) {
    let store = OutboxStore::connect(&app.url).await.unwrap();
    let w = Worker::new(store.clone(), &smtp(port), app.clock.clone()).unwrap();
    (w, store)
}

fn message(to: &str, subject: &str) -> OutboxMessage {
    OutboxMessage {
        to: to.into(),
        subject: subject.into(),
        text: "Hello from scimd.\n.This line starts with a dot.\n".into(),
        html: Some("<p>Hello from <b>scimd</b>.</p>".into()),
        organization_id: None,
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap()
}

async fn delivered_once_with_both_parts(app: TestApp) {
    let sink = Sink::start().await;
    let (w, store) = worker(&app, sink.port).await;
    let mut msg = message("Ada Lovelace <ada@example.com>", "Welcome to Acme");
    msg.organization_id = Some(app.org.id.clone());
    let id = store.enqueue(&msg, app.clock.now()).await.unwrap();
    assert_eq!(store.count(Status::Pending).await.unwrap(), 1);

    assert_eq!(w.deliver_due().await.unwrap(), 1);
    let got = sink.received();
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    assert_eq!(mail.from, "noreply@scimd.test");
    assert_eq!(mail.to, ["ada@example.com"]);
    let data = &mail.data;
    assert!(data.contains("Subject: Welcome to Acme\r\n"), "{data}");
    assert!(
        data.contains("To: \"Ada Lovelace\" <ada@example.com>\r\n")
            || data.contains("To: Ada Lovelace <ada@example.com>\r\n"),
        "{data}"
    );
    assert!(
        data.contains(&format!("Message-ID: <{id}@scimd.test>")),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: multipart/alternative"),
        "{data}"
    );
    assert!(data.contains("Content-Type: text/plain"), "{data}");
    assert!(data.contains("Content-Type: text/html"), "{data}");
    // The dot-stuffed line came through whole.
    assert!(
        data.contains("Hello from scimd.\r\n.This line starts with a dot.\r\n"),
        "{data}"
    );
    assert!(data.contains("<p>Hello from <b>scimd</b>.</p>"), "{data}");

    let row = store.get(&id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Sent);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.organization_id.as_deref(), Some(app.org.id.as_str()));
    assert!(row.sent_at.is_some() && row.claimed_until.is_none() && row.last_error.is_none());

    // Sent is done: later rounds leave it alone.
    assert_eq!(w.deliver_due().await.unwrap(), 0);
    assert_eq!(sink.received().len(), 1);
}

async fn concurrent_workers_send_each_mail_once(app: TestApp) {
    let sink = Sink::start().await;
    let (w1, store) = worker(&app, sink.port).await;
    let (w2, _) = worker(&app, sink.port).await;

    // One mail, two workers claiming at the same moment.
    store
        .enqueue(&message("one@example.com", "only once"), app.clock.now())
        .await
        .unwrap();
    let (a, b) = tokio::join!(w1.deliver_due(), w2.deliver_due());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(sink.received().len(), 1);

    // A backlog of several batches, drained by both at once on two threads.
    for i in 0..25 {
        let msg = message(&format!("user{i}@example.com"), &format!("mail {i}"));
        store.enqueue(&msg, app.clock.now()).await.unwrap();
    }
    let drain = |w: Worker| async move {
        let mut sent = 0;
        loop {
            match w.deliver_due().await.unwrap() {
                0 => return sent,
                n => sent += n,
            }
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(drain(w1)), tokio::spawn(drain(w2)));
    assert_eq!(a.unwrap() + b.unwrap(), 25);
    let got = sink.received();
    assert_eq!(got.len(), 26);
    for i in 0..25 {
        let subject = format!("Subject: mail {i}\r\n");
        let copies = got.iter().filter(|m| m.data.contains(&subject)).count();
        assert_eq!(copies, 1, "mail {i} was sent {copies} times");
    }
    assert_eq!(store.count(Status::Sent).await.unwrap(), 26);
    assert_eq!(store.count(Status::Pending).await.unwrap(), 0);
}

/// Enqueues inside a transaction of the caller's and ends it with `$end` (commit or rollback).
macro_rules! in_transaction {
    ($store:expr, $msg:expr, $now:expr, $end:ident) => {
        match $store {
            OutboxStore::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                enqueue_sqlite(&mut tx, $msg, $now).await.unwrap();
                tx.$end().await.unwrap();
            }
            OutboxStore::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                enqueue_pg(&mut tx, $msg, $now).await.unwrap();
                tx.$end().await.unwrap();
            }
        }
    };
}

async fn rolled_back_transaction_sends_nothing(app: TestApp) {
    let sink = Sink::start().await;
    let (w, store) = worker(&app, sink.port).await;
    let msg = message("rollback@example.com", "never sent");
    in_transaction!(&store, &msg, app.clock.now(), rollback);
    assert_eq!(store.count(Status::Pending).await.unwrap(), 0);
    assert_eq!(w.deliver_due().await.unwrap(), 0);
    assert!(sink.received().is_empty());

    let msg = message("commit@example.com", "sent after commit");
    in_transaction!(&store, &msg, app.clock.now(), commit);
    assert_eq!(w.deliver_due().await.unwrap(), 1);
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["commit@example.com"]);
}

async fn server_down_retries_later(app: TestApp) {
    let port = free_port().await;
    let (w, store) = worker(&app, port).await;
    let before = app.clock.now();
    let id = store
        .enqueue(&message("later@example.com", "retried"), before)
        .await
        .unwrap();

    assert_eq!(w.deliver_due().await.unwrap(), 0);
    let row = store.get(&id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Pending);
    assert_eq!(row.attempts, 1);
    assert!(
        row.next_attempt_at >= before + micros(backoff(1)),
        "{row:?}"
    );
    assert!(
        row.last_error.is_some() && row.claimed_until.is_none(),
        "{row:?}"
    );

    // The server is back, but the retry is not due yet.
    let sink = Sink::on(port, true).await;
    assert_eq!(w.deliver_due().await.unwrap(), 0);
    assert_eq!(store.get(&id).await.unwrap().unwrap().attempts, 1);
    assert!(sink.received().is_empty());

    app.clock.advance(micros(backoff(1)) + 1_000_000);
    assert_eq!(w.deliver_due().await.unwrap(), 1);
    let row = store.get(&id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (Status::Sent, 2));
    assert_eq!(sink.received().len(), 1);
}

async fn gives_up_after_max_attempts(app: TestApp) {
    let port = free_port().await;
    let (w, store) = worker(&app, port).await;
    let id = store
        .enqueue(&message("nobody@example.com", "bounced"), app.clock.now())
        .await
        .unwrap();
    for n in 1..=MAX_ATTEMPTS {
        assert_eq!(w.deliver_due().await.unwrap(), 0);
        let row = store.get(&id).await.unwrap().unwrap();
        assert_eq!(row.attempts, n);
        let status = if n < MAX_ATTEMPTS {
            Status::Pending
        } else {
            Status::Failed
        };
        assert_eq!(row.status, status, "after {n} attempts");
        app.clock.advance(micros(backoff(n)) + 1_000_000);
    }
    // A failed mail is never tried again, even with the server up.
    let sink = Sink::on(port, true).await;
    assert_eq!(w.deliver_due().await.unwrap(), 0);
    assert!(sink.received().is_empty());
    let row = store.get(&id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (Status::Failed, MAX_ATTEMPTS));
    assert!(row.last_error.is_some());
    assert_eq!(store.count(Status::Failed).await.unwrap(), 1);
}

async fn a_dead_workers_claim_expires(app: TestApp) {
    // The first worker dies mid-conversation with a server that never answers.
    let mute = Sink::on(0, false).await;
    let (w1, store) = worker(&app, mute.port).await;
    let id = store
        .enqueue(
            &message("patient@example.com", "after a crash"),
            app.clock.now(),
        )
        .await
        .unwrap();
    let crashed = tokio::spawn(async move { w1.deliver_due().await });
    for _ in 0..200 {
        if mute.connections.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(mute.connections.load(Ordering::SeqCst), 1);
    crashed.abort();
    let row = store.get(&id).await.unwrap().unwrap();
    assert!(
        row.claimed_until.is_some_and(|t| t > app.clock.now()),
        "{row:?}"
    );

    // Another worker leaves the row alone while the lease runs, then takes it over.
    let sink = Sink::start().await;
    let (w2, _) = worker(&app, sink.port).await;
    assert_eq!(w2.deliver_due().await.unwrap(), 0);
    app.clock.advance(micros(LEASE) + 1_000_000);
    assert_eq!(w2.deliver_due().await.unwrap(), 1);
    assert_eq!(sink.received().len(), 1);
    let row = store.get(&id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (Status::Sent, 1));
}

both!(
    delivered_once_with_both_parts,
    concurrent_workers_send_each_mail_once,
    rolled_back_transaction_sends_nothing,
    server_down_retries_later,
    gives_up_after_max_attempts,
    a_dead_workers_claim_expires,
);
