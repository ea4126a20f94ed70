//! An SMTP server on loopback that records what it is handed: the email tests and the browser
//! tests read the mail scimd really sent through it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One mail as the sink received it: the envelope and the DATA, dot-unstuffed.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) data: String,
}

/// An SMTP server on 127.0.0.1 speaking enough of RFC 5321 for a client to hand it mail.
pub(crate) struct Sink {
    pub(crate) port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    pub(crate) connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort(); // Closes the listener: the port refuses connections again.
    }
}

impl Sink {
    pub(crate) async fn start() -> Sink {
        Self::on(0, true).await
    }

    /// On a given port (0: any); `answer` false accepts connections and never says a word.
    pub(crate) async fn on(port: u16, answer: bool) -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (r, c) = (received.clone(), connections.clone());
        let task = tokio::spawn(async move {
            let mut silent = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                if answer {
                    tokio::spawn(session(sock, r.clone()));
                } else {
                    silent.push(sock);
                }
            }
        });
        Sink {
            port,
            received,
            connections,
            task,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn session(sock: TcpStream, received: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let (mut from, mut to) = (String::new(), Vec::new());
    w.write_all(b"220 sink.test ESMTP\r\n").await?;
    loop {
        let line = read_line(&mut r).await?;
        if line.is_empty() {
            return Ok(()); // The client hung up.
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if command.starts_with("MAIL FROM:") {
            from = angle_addr(&line);
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            to.push(angle_addr(&line));
            b"250 OK\r\n"
        } else if command == "DATA" {
            w.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                let line = read_line(&mut r).await?;
                if line.is_empty() || line == ".\r\n" {
                    break;
                }
                // RFC 5321 §4.5.2: a line the client began with an extra dot loses it.
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            received.lock().unwrap().push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n"
        } else if command == "RSET" || command == "NOOP" {
            b"250 OK\r\n"
        } else if command == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        w.write_all(reply).await?;
    }
}

async fn read_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn angle_addr(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end].to_owned()
}
