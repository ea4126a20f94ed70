//! Real processes for the crash, outage and replica tests: the `scimd` binary itself on a
//! loopback port, a throwaway PostgreSQL cluster that can really be stopped and started, and SQL
//! checks run straight against the database. Every wait has a deadline, and every process is
//! killed (and every cluster stopped and removed) on drop, so a failing test cleans up too.

use sqlx::{Connection, Row};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SCIMD: &str = env!("CARGO_BIN_EXE_scimd");

/// A port nothing listens on at the moment it is returned.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An HTTP client whose every request gives up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client")
}

/// One running `scimd serve`. Killed with SIGKILL on drop.
pub struct Scimd {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Scimd {
    /// Starts `scimd serve` on a free loopback port and waits (30 s at most) until `/healthz`
    /// answers. `env` is added to the process environment (SMTP settings, say).
    pub async fn start(database_url: &str, env: &[(&str, String)]) -> Scimd {
        let log = std::env::temp_dir().join(format!("scimd-proc-{}.log", uuid::Uuid::new_v4()));
        let port = free_port();
        let out = std::fs::File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        let mut cmd = Command::new(SCIMD);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn scimd");
        let mut server = Scimd {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_healthy(Duration::from_secs(30)).await;
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_healthy(&mut self, limit: Duration) {
        let http = client(Duration::from_secs(2));
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "scimd exited with {status} before serving:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "scimd did not answer /healthz within {limit:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running (it has not crashed or exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`: no shutdown hook runs, requests in flight are cut off mid-way.
    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Scimd {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- scimd log ({}) ---\n{}", self.base, self.log_tail());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs a scimd subcommand against a database and returns its stdout (30 s at most).
pub async fn cli(database_url: &str, args: &[&str]) -> String {
    let run = tokio::process::Command::new(SCIMD)
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| panic!("scimd {args:?} did not finish within 30 s"))
        .expect("run scimd");
    assert!(
        out.status.success(),
        "scimd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A provider admin token, made the way an operator makes one (`scimd admin token create`).
pub async fn admin_token(database_url: &str) -> String {
    let out = cli(
        database_url,
        &["admin", "token", "create", "--name", "test"],
    )
    .await;
    out.lines()
        .last()
        .expect("the token on the last line")
        .trim()
        .to_owned()
}

/// A connection for checking the database with SQL of its own, outside scimd.
pub enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Db {
    pub async fn open(url: &str) -> Db {
        if url.starts_with("sqlite:") {
            Db::Sqlite(
                sqlx::SqliteConnection::connect(url)
                    .await
                    .expect("open SQLite"),
            )
        } else {
            Db::Postgres(
                sqlx::PgConnection::connect(url)
                    .await
                    .expect("open Postgres"),
            )
        }
    }

    /// The single integer a query returns (a `count(*)`, say).
    pub async fn int(&mut self, sql: &str) -> i64 {
        let row = match self {
            Db::Sqlite(c) => sqlx::query(sql)
                .fetch_one(c)
                .await
                .map(|r| r.get::<i64, _>(0)),
            Db::Postgres(c) => sqlx::query(sql)
                .fetch_one(c)
                .await
                .map(|r| r.get::<i64, _>(0)),
        };
        row.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// A PostgreSQL cluster of its own in a temporary directory, on a free loopback port, that a
/// test may stop and start at will (the shared server on 5432 is never touched). Made with the
/// server binaries of the installed PostgreSQL (`pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`), run as the `postgres` OS user when the test runs as root.
/// Stopped and removed on drop.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

fn pg_bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|d| d.join("initdb").exists());
    found.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("the PostgreSQL server binaries (initdb, pg_ctl) are required for this test")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    /// `initdb` and start; 60 s at most.
    pub fn start() -> PgCluster {
        let bin = pg_bindir();
        let dir = std::env::temp_dir().join(format!("scimd-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let cluster = PgCluster {
            dir,
            bin,
            port: free_port(),
        };
        if is_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            cluster.run(
                Command::new("chown").args(["postgres:", &cluster.path_str()]),
                "chown",
            );
        }
        let data = cluster.dir.join("data");
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.pg_ctl_start();
        cluster
    }

    fn path_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn run(&self, cmd: &mut Command, what: &str) {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs one of the server's programs, as the postgres user when we are root.
    fn pg(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(&self.dir);
        self.run(&mut cmd, program);
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.path_str()
        );
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &self.dir.join("server.log").to_string_lossy(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Starts the cluster again after [`PgCluster::stop`].
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Stops the server: `fast` ends every session at once (as a failover or an operator's
    /// restart does), waiting at most 60 s.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let args = [
            "-D",
            &*data.to_string_lossy(),
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ]
        .map(str::to_owned);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
