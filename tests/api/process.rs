//! Real processes for the crash, outage and replica tests: the `scimd` binary itself on a
//! loopback port, a throwaway PostgreSQL cluster that can really be stopped and started, and SQL
//! checks run straight against the database. Every wait has a deadline, and every process is
//! killed (and every cluster stopped and removed) on drop, so a failing test cleans up too.

use sqlx::{Connection, Row};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SCIMD: &str = env!("CARGO_BIN_EXE_scimd");

static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held by each test that runs scimd processes under load, so that at most one such test
/// loads the machine and the shared database at a time, beside the suite's ordinary tests.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.lock().await
}

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
    /// answers. `env` is added to the process environment (SMTP settings, say). Another process
    /// may take the port between our check and scimd's bind: then it tries another port.
    pub async fn start(database_url: &str, env: &[(&str, String)]) -> Scimd {
        for _ in 0..3 {
            let mut server = Self::spawn(database_url, env);
            match server.wait_healthy(Duration::from_secs(30)).await {
                Ok(()) => return server,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("scimd did not start: {log}"),
            }
        }
        panic!("scimd found no free port in three tries");
    }

    fn spawn(database_url: &str, env: &[(&str, String)]) -> Scimd {
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
        Scimd {
            child: cmd.spawn().expect("spawn scimd"),
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the log when the process exits or does not answer within `limit`.
    async fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let http = client(Duration::from_secs(2));
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", self.log_tail()));
            }
            if Instant::now() >= deadline {
                return Err(format!("no answer within {limit:?}:\n{}", self.log_tail()));
            }
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
        let mut cluster = PgCluster {
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
        let data = cluster.dir.join("data").to_string_lossy().into_owned();
        let initdb = [
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ];
        cluster.run(cluster.as_owner("initdb").args(initdb), "initdb");
        // Another process may take the port before the server binds it: then try another.
        for _ in 0..3 {
            let started = cluster
                .as_owner("pg_ctl")
                .args(cluster.start_args())
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success());
            if started {
                return cluster;
            }
            cluster.port = free_port();
        }
        let log = std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default();
        panic!("the test cluster did not start:\n{log}");
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

    /// One of the server's programs, run as the cluster's owner: the postgres user when we are
    /// root, in the cluster's directory.
    fn as_owner(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn start_args(&self) -> Vec<String> {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.path_str()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        let args = [
            "-D",
            &self.data(),
            "-l",
            &log,
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ];
        args.map(str::to_owned).to_vec()
    }

    /// Starts the cluster again after [`PgCluster::stop`], on the same port.
    pub fn restart(&self) {
        self.run(
            self.as_owner("pg_ctl").args(self.start_args()),
            "pg_ctl start",
        );
    }

    /// Stops the server: `fast` ends every session at once (as a failover or an operator's
    /// restart does), waiting at most 60 s.
    pub fn stop(&self) {
        let args = ["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"];
        self.run(self.as_owner("pg_ctl").args(args), "pg_ctl stop");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let args = [
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ];
        let _ = self
            .as_owner("pg_ctl")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
