//! scimd-bench: a load benchmark that speaks only SCIM, so it measures scimd or any other SCIM
//! server the same way. It stores N users with realistic attributes, then measures `userName eq`
//! lookups (hits and misses) at several concurrencies, paging through every user, group member
//! changes at 0 and at N members, and the server's memory.
//!
//! Without `--url` it starts `target/release/scimd` on a fresh database itself and reads its
//! memory from /proc; with `--url` (plus `--token`, and `--pid` for memory) it measures any
//! running server.

use anyhow::{bail, Context, Result};
use clap::Parser;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Load benchmark for SCIM servers")]
struct Args {
    /// SCIM base URL of a running server (e.g. http://127.0.0.1:8080/scim/v2). Without it, the
    /// benchmark starts scimd itself on a fresh database.
    #[arg(long)]
    url: Option<String>,
    /// Bearer token for --url.
    #[arg(long, env = "SCIM_TOKEN")]
    token: Option<String>,
    /// PID of the server behind --url, to report its memory.
    #[arg(long)]
    pid: Option<u32>,
    /// The scimd binary to start when --url is not given.
    #[arg(long, default_value = "target/release/scimd")]
    scimd: String,
    /// Database for the started scimd (default: a new SQLite file in a temporary directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Stored-user counts to measure at, in increasing order.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Concurrency levels for the load phases.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,
    /// Seconds each load phase runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Phases to run: lookup, page, group, patch, put.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lookup,page,group,patch,put"
    )]
    phases: Vec<String>,
    /// Servers to start on the one database (without --url): requests go to them in turn, as
    /// behind a load balancer. Two on one Postgres show whether replicas serialise each other.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// An extra option for the started `scimd serve`, e.g. `--serve-arg=--request-log=off`
    /// (repeat for several).
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
}

struct Target {
    /// Base URLs of the servers, used in turn.
    bases: Vec<String>,
    next: AtomicU64,
    auth: String,
    client: Client,
    pid: Option<u32>,
    _servers: Vec<Server>,
}

/// A scimd started by the benchmark; killed when dropped.
struct Server {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Target {
    fn base(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        &self.bases[i % self.bases.len()]
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base()))
            .header("authorization", &self.auth)
            .header("content-type", "application/scim+json")
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, v))
    }

    /// Peak and current resident memory of the server, in MiB (Linux /proc).
    fn memory(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let field = |name: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        };
        Some((field("VmHWM:")?, field("VmRSS:")?))
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start(args: &Args) -> Result<Target> {
    let client = Client::builder().pool_max_idle_per_host(256).build()?;
    if let Some(url) = &args.url {
        let token = args.token.clone().context("--url needs --token")?;
        return Ok(Target {
            bases: vec![url.trim_end_matches('/').to_owned()],
            next: AtomicU64::new(0),
            auth: format!("Bearer {token}"),
            client,
            pid: args.pid,
            _servers: Vec::new(),
        });
    }
    let dir = std::env::temp_dir().join(format!("scimd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}/bench.db", dir.display()));
    let cli = |extra: &[&str]| -> Result<String> {
        let out = std::process::Command::new(&args.scimd)
            .args(extra)
            .args(["--database-url", &db])
            .output()
            .with_context(|| format!("running {}", args.scimd))?;
        if !out.status.success() {
            bail!(
                "scimd {extra:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned())
    };
    cli(&["org", "create", "bench"])?;
    let token = cli(&["token", "create", "--org", "bench", "--name", "bench"])?;
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for i in 0..args.replicas.max(1) {
        let port = free_port()?;
        let child = std::process::Command::new(&args.scimd)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &db,
            ])
            .args(&args.serve_arg)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()?;
        // Only the first server owns (and removes) the temporary directory.
        let dir = if i == 0 {
            dir.clone()
        } else {
            std::env::temp_dir().join(format!("scimd-bench-{}-{i}", std::process::id()))
        };
        servers.push(Server { child, dir });
        let up = async {
            for _ in 0..100 {
                if client
                    .get(format!("http://127.0.0.1:{port}/healthz"))
                    .send()
                    .await
                    .is_ok()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        if !up.await {
            bail!("scimd did not come up on port {port}");
        }
        bases.push(format!("http://127.0.0.1:{port}/scim/v2"));
    }
    Ok(Target {
        bases,
        next: AtomicU64::new(0),
        auth: format!("Bearer {token}"),
        client,
        pid: servers.first().map(|s| s.child.id()),
        _servers: servers,
    })
}

fn user_name(i: usize) -> String {
    format!("user{i:07}@bench.example")
}

fn user_body(i: usize) -> Value {
    let title = ["Engineer", "Manager", "Analyst", "Designer"][i % 4];
    let department = ["R&D", "Sales", "Ops"][i % 3];
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": user_name(i),
        "externalId": format!("ext-{i}"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{}", i % 997), "formatted": format!("Given{i} Family{}", i % 997)},
        "displayName": format!("Given{i} Family{}", i % 997),
        "title": title,
        "active": true,
        "emails": [
            {"value": user_name(i), "type": "work", "primary": true},
            {"value": format!("home{i}@mail.example"), "type": "home"}
        ],
        "phoneNumbers": [{"value": format!("+1-555-{:07}", i), "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": format!("{i}"), "department": department, "costCenter": format!("CC{}", i % 50)
        }
    })
}

/// A tiny deterministic PRNG so request choice costs nothing and runs repeat.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Stores users `from..to` with 32 concurrent POSTs; returns their ids in index order.
async fn seed(t: &Arc<Target>, from: usize, to: usize, ids: &mut Vec<String>) -> Result<f64> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(from as u64));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (t, next) = (t.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= to {
                    return Ok::<_, anyhow::Error>(out);
                }
                let (status, mut body) = t.json(Method::POST, "/Users", Some(user_body(i))).await?;
                if status == StatusCode::CONFLICT {
                    // Stored by an earlier run: find it, so runs can repeat on one server.
                    let path = format!("/Users?filter=userName%20eq%20%22{}%22", user_name(i));
                    body = t.json(Method::GET, &path, None).await?.1["Resources"][0].take();
                } else if status != StatusCode::CREATED {
                    bail!("creating user {i}: {status} {body}");
                }
                out.push((i, body["id"].as_str().unwrap_or_default().to_owned()));
            }
        }));
    }
    ids.resize(to, String::new());
    for task in tasks {
        for (i, id) in task.await?? {
            ids[i] = id;
        }
    }
    Ok((to - from) as f64 / started.elapsed().as_secs_f64())
}

#[derive(Default)]
struct Load {
    requests: u64,
    errors: u64,
    seconds: f64,
    micros: Vec<u64>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    fn pct(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        self.micros[i] as f64 / 1000.0
    }
}

/// Runs `make(n)` requests from `concurrency` workers for `seconds`, expecting `expect`.
async fn load<F>(
    t: &Arc<Target>,
    concurrency: usize,
    seconds: u64,
    expect: StatusCode,
    make: F,
) -> Result<Load>
where
    F: Fn(&Target, &mut Rng) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (t, make) = (t.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1));
            let mut l = Load::default();
            while Instant::now() < deadline {
                let req = make(&t, &mut rng);
                let s = Instant::now();
                let ok = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let _ = resp.bytes().await;
                        status == expect
                    }
                    Err(_) => false,
                };
                l.micros.push(s.elapsed().as_micros() as u64);
                l.requests += 1;
                l.errors += u64::from(!ok);
            }
            l
        }));
    }
    let mut total = Load::default();
    for task in tasks {
        let l = task.await?;
        total.requests += l.requests;
        total.errors += l.errors;
        total.micros.extend(l.micros);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total.micros.sort_unstable();
    Ok(total)
}

struct Report {
    rows: Vec<(String, String)>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn add(&mut self, key: &str, text: String, value: Value) {
        println!("{key:<48} {text}");
        self.rows.push((key.to_owned(), text));
        self.json.insert(key.to_owned(), value);
    }
    fn load(&mut self, key: &str, l: &Load) {
        self.add(
            key,
            format!("{:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}", l.rate(), l.pct(0.5), l.pct(0.99), l.errors),
            json!({"req_per_s": l.rate().round(), "p50_ms": l.pct(0.5), "p99_ms": l.pct(0.99), "errors": l.errors}),
        );
    }
    fn memory(&mut self, key: &str, t: &Target) {
        if let Some((peak, now)) = t.memory() {
            self.add(
                key,
                format!("peak {peak:.1} MiB, now {now:.1} MiB"),
                json!({"peak_mib": peak, "rss_mib": now}),
            );
        }
    }
}

async fn lookups(t: &Arc<Target>, args: &Args, n: usize, r: &mut Report) -> Result<()> {
    // Sanity: a hit finds exactly one user, a miss none.
    let probe = format!("/Users?filter=userName%20eq%20%22{}%22", user_name(n / 2));
    let (_, body) = t.json(Method::GET, &probe, None).await?;
    if body["totalResults"] != 1 {
        bail!("lookup of a stored user did not find exactly one: {body}");
    }
    for &c in &args.concurrency {
        let hit = load(t, c, args.seconds, StatusCode::OK, move |t, rng| {
            let i = (rng.next() % n as u64) as usize;
            t.req(
                Method::GET,
                &format!("/Users?filter=userName%20eq%20%22{}%22", user_name(i)),
            )
        })
        .await?;
        r.load(&format!("users={n} lookup hit  c={c}"), &hit);
        let miss = load(t, c, args.seconds, StatusCode::OK, move |t, rng| {
            t.req(
                Method::GET,
                &format!(
                    "/Users?filter=userName%20eq%20%22missing{}%40bench.example%22",
                    rng.next() % 1_000_000
                ),
            )
        })
        .await?;
        r.load(&format!("users={n} lookup miss c={c}"), &miss);
    }
    Ok(())
}

/// Pages through every user with count=100: by startIndex, and by cursor when advertised.
async fn paging(t: &Arc<Target>, n: usize, cursor: bool, r: &mut Report) -> Result<()> {
    let mut lat = Vec::new();
    let started = Instant::now();
    let mut seen = 0;
    let mut next: Option<String> = Some(String::new());
    let mut start = 1;
    loop {
        let path = if cursor {
            match &next {
                Some(c) => format!("/Users?count=100&cursor={c}"),
                None => break,
            }
        } else {
            format!("/Users?count=100&startIndex={start}")
        };
        let s = Instant::now();
        let (status, body) = t.json(Method::GET, &path, None).await?;
        lat.push(s.elapsed().as_secs_f64() * 1000.0);
        if status != StatusCode::OK {
            bail!("paging {path}: {status} {body}");
        }
        let got = body["Resources"].as_array().map_or(0, Vec::len);
        seen += got;
        start += 100;
        next = body["nextCursor"].as_str().map(str::to_owned);
        if got == 0 || (!cursor && start > n) {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let avg = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let k = lat.len().min(10);
    let (first, last) = (avg(&lat[..k]), avg(&lat[lat.len() - k..]));
    let how = if cursor { "cursor" } else { "startIndex" };
    r.add(
        &format!("users={n} page all by {how} (count=100)"),
        format!("{:>9.0} users/s  first {first:.2} ms  last {last:.2} ms  ({seen} users)", seen as f64 / secs),
        json!({"users_per_s": (seen as f64 / secs).round(), "first_page_ms": first, "last_page_ms": last, "users": seen}),
    );
    Ok(())
}

fn members(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Adding 100 members at group size 0 and at size `n - 1000`; reading the big group.
async fn groups(t: &Arc<Target>, ids: &[String], r: &mut Report) -> Result<()> {
    let n = ids.len();
    let (status, g) = t
        .json(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": format!("bench-{n}")})),
        )
        .await?;
    if status != StatusCode::CREATED {
        bail!("creating a group: {status} {g}");
    }
    let path = format!("/Groups/{}", g["id"].as_str().unwrap_or_default());
    let spare = &ids[n - 1000..];
    let add_remove = |label: String, rounds: usize| {
        let (t, path) = (t.clone(), path.clone());
        async move {
            let mut lat = Vec::new();
            for round in 0..rounds {
                let batch = &spare[(round % 10) * 100..(round % 10) * 100 + 100];
                let s = Instant::now();
                let (st, b) = t
                    .json(
                        Method::PATCH,
                        &path,
                        Some(patch(
                            json!([{"op": "add", "path": "members", "value": members(batch)}]),
                        )),
                    )
                    .await?;
                lat.push(s.elapsed().as_secs_f64() * 1000.0);
                if !st.is_success() {
                    bail!("adding members: {st} {b}");
                }
                t.json(
                    Method::PATCH,
                    &path,
                    Some(patch(
                        json!([{"op": "remove", "path": "members", "value": members(batch)}]),
                    )),
                )
                .await?;
            }
            lat.sort_by(f64::total_cmp);
            let p99 = lat[((lat.len() - 1) as f64 * 0.99).round() as usize];
            let p50 = lat[lat.len() / 2];
            Ok::<_, anyhow::Error>((label, p50, p99))
        }
    };
    let mut rows = vec![add_remove("group of 0: PATCH add 100 members".into(), 50).await?];
    // Grow the group to n - 1000 members, 1000 per request.
    for chunk in ids[..n - 1000].chunks(1000) {
        let (st, b) = t
            .json(
                Method::PATCH,
                &path,
                Some(patch(
                    json!([{"op": "add", "path": "members", "value": members(chunk)}]),
                )),
            )
            .await?;
        if !st.is_success() {
            bail!("growing the group: {st} {b}");
        }
    }
    rows.push(add_remove(format!("group of {}: PATCH add 100 members", n - 1000), 50).await?);
    for (label, p50, p99) in rows {
        r.add(
            &label,
            format!("p50 {p50:>6.2} ms  p99 {p99:>6.2} ms"),
            json!({"p50_ms": p50, "p99_ms": p99}),
        );
    }
    let lean = load(t, 1, 3, StatusCode::OK, {
        let path = path.clone();
        move |t, _| t.req(Method::GET, &format!("{path}?excludedAttributes=members"))
    })
    .await?;
    r.load(
        &format!("group of {}: GET excludedAttributes=members", n - 1000),
        &lean,
    );
    let before = t.memory();
    let s = Instant::now();
    let (st, body) = t.json(Method::GET, &path, None).await?;
    let ms = s.elapsed().as_secs_f64() * 1000.0;
    let count = body["members"].as_array().map_or(0, Vec::len);
    if st != StatusCode::OK || count != n - 1000 {
        bail!("full GET of the group: {st}, {count} members");
    }
    let after = t.memory();
    let rise = match (before, after) {
        (Some((_, b)), Some((peak, _))) => peak - b,
        _ => f64::NAN,
    };
    r.add(
        &format!("group of {}: full GET", n - 1000),
        format!("{ms:.0} ms, server RSS rise {rise:.1} MiB"),
        json!({"ms": ms, "rss_rise_mib": rise}),
    );
    Ok(())
}

async fn deactivations(t: &Arc<Target>, args: &Args, ids: &[String], r: &mut Report) -> Result<()> {
    let n = ids.len();
    let ids = Arc::new(ids.to_vec());
    for &c in &args.concurrency {
        let ids = ids.clone();
        let body = patch(json!([{"op": "replace", "value": {"active": false}}])).to_string();
        let l = load(t, c, args.seconds, StatusCode::OK, move |t, rng| {
            let id = &ids[(rng.next() % ids.len() as u64) as usize];
            t.req(Method::PATCH, &format!("/Users/{id}"))
                .body(body.clone())
        })
        .await?;
        r.load(&format!("users={n} PATCH active=false c={c}"), &l);
    }
    Ok(())
}

/// PUT replacing whole users (a changed title), as Okta's profile push does.
async fn replacements(t: &Arc<Target>, args: &Args, ids: &[String], r: &mut Report) -> Result<()> {
    let n = ids.len();
    let ids = Arc::new(ids.to_vec());
    for &c in &args.concurrency {
        let ids = ids.clone();
        let l = load(t, c, args.seconds, StatusCode::OK, move |t, rng| {
            let i = (rng.next() % ids.len() as u64) as usize;
            let mut body = user_body(i);
            body["title"] = json!(format!("Title {}", rng.next() % 1000));
            t.req(Method::PUT, &format!("/Users/{}", ids[i]))
                .body(body.to_string())
        })
        .await?;
        r.load(&format!("users={n} PUT replace c={c}"), &l);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let t = Arc::new(start(&args).await?);
    let (_, spc) = t.json(Method::GET, "/ServiceProviderConfig", None).await?;
    let cursor = spc["pagination"]["cursor"] == true;
    let mut r = Report {
        rows: Vec::new(),
        json: serde_json::Map::new(),
    };
    println!(
        "scimd-bench against {} ({} cores here)",
        t.bases.join(" and "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut ids = Vec::new();
    let want = |p: &str| args.phases.iter().any(|x| x == p);
    for &n in &args.sizes {
        // In steps of 10,000, so the rate at the start and at the end of the size show whether
        // creates stay flat as the directory grows.
        let from = ids.len();
        let started = Instant::now();
        let mut last = 0.0;
        while ids.len() < n {
            let to = (ids.len() + 10_000).min(n);
            last = seed(&t, ids.len(), to, &mut ids).await?;
            if from == 0 && to <= 10_000 {
                r.add(
                    &format!("seed first {to} (POST, c=32)"),
                    format!("{last:>9.0} users/s"),
                    json!({"users_per_s": last.round()}),
                );
            }
        }
        let rate = (n - from) as f64 / started.elapsed().as_secs_f64();
        r.add(
            &format!("users={n} seed (POST, c=32)"),
            format!("{rate:>9.0} users/s  (last step of up to 10000: {last:.0} users/s)"),
            json!({"users_per_s": rate.round(), "last_10000_users_per_s": last.round()}),
        );
        r.memory(&format!("users={n} server memory after seeding"), &t);
        if want("lookup") {
            lookups(&t, &args, n, &mut r).await?;
        }
        if want("page") {
            paging(&t, n, false, &mut r).await?;
            if cursor {
                paging(&t, n, true, &mut r).await?;
            }
        }
    }
    if want("group") && ids.len() > 1000 {
        groups(&t, &ids, &mut r).await?;
    }
    if want("patch") {
        deactivations(&t, &args, &ids, &mut r).await?;
    }
    if want("put") {
        replacements(&t, &args, &ids, &mut r).await?;
    }
    r.memory("server memory at the end", &t);
    println!("{}", Value::Object(r.json));
    Ok(())
}
