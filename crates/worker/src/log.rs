//! Streams a build's output to the server in chunks, by offset, so that after any network
//! failure it resumes exactly where the server's copy ends: nothing lost, nothing twice.
//!
//! The log never changes a build's result. Output past the server's limit is read and thrown
//! away, and the log ends with a line saying so; a server that refuses the log outright still
//! has the output read to its end. Either way the script never blocks on a full pipe (or dies
//! of SIGPIPE) because of its log. What the log should hold, its length and SHA-256, goes with
//! the report, so that the server can tell a log cut short on the way.

use crate::backoff::Backoff;
use crate::client::{CallError, Client, LogAccount};
use sha2::{Digest as _, Sha256};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Send once this much output is waiting...
const FLUSH_BYTES: usize = 64 * 1024;
/// ...or once output has waited this long.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The server's limit on one chunk.
const MAX_CHUNK: usize = 1024 * 1024;

/// The server's limit when it names none (an older server): its 64 MiB.
pub(crate) const DEFAULT_LOG_LIMIT: u64 = 64 * 1024 * 1024;

/// How streaming ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Streamed {
    /// The output ended; this is what the log should hold. The server has all of it unless it
    /// refused the log on the way, which the report's account then shows.
    Ended(LogAccount),
    /// The server said the lease is gone; the rest was dropped.
    LeaseLost,
    /// Given up on (the build is being abandoned).
    Abandoned,
}

/// What the log should hold: the output up to the limit, then the notice that it was cut.
#[derive(Debug)]
struct Account {
    /// The most the log may hold, the notice included.
    limit: u64,
    bytes: u64,
    sha256: Sha256,
    truncated: bool,
}

impl Account {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            bytes: 0,
            sha256: Sha256::new(),
            truncated: false,
        }
    }

    /// The notice that ends a truncated log.
    fn notice(&self) -> String {
        format!(
            "\n[lockstep] log truncated at {} MiB: the rest of the output was read but not kept\n",
            self.limit / (1024 * 1024)
        )
    }

    /// The part of `chunk` the log keeps: all of it while it fits; at the cut, what fits
    /// before the notice, then the notice; nothing after.
    fn keep(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.truncated {
            return Vec::new();
        }
        let notice = self.notice();
        let room = self.limit.saturating_sub(notice.len() as u64 + self.bytes);
        let kept = if (chunk.len() as u64) <= room {
            chunk.to_vec()
        } else {
            self.truncated = true;
            let fits = usize::try_from(room).unwrap_or(usize::MAX).min(chunk.len());
            let mut kept = chunk[..fits].to_vec();
            kept.extend_from_slice(notice.as_bytes());
            kept
        };
        self.bytes += kept.len() as u64;
        self.sha256.update(&kept);
        kept
    }

    fn finish(self) -> LogAccount {
        LogAccount {
            bytes: self.bytes,
            sha256: hex::encode(self.sha256.finalize()),
        }
    }
}

/// Why uploading stopped before the output ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    LeaseLost,
    Abandoned,
    /// The server refused the log; the output is still read, not sent.
    Refused,
}

/// Output not yet acknowledged, and the server offset its first byte goes to.
#[derive(Debug, Default)]
struct Pending {
    offset: u64,
    bytes: Vec<u8>,
}

impl Pending {
    /// The server now holds everything before `end`: drop what it acknowledged.
    fn acknowledge(&mut self, end: u64) {
        let held = usize::try_from(end.saturating_sub(self.offset)).unwrap_or(usize::MAX);
        if end < self.offset || held > self.bytes.len() {
            // The server's log is not the one we were writing: something else appended or it
            // lost data. Keep writing at its end rather than fail the build over its log.
            tracing::warn!(
                end,
                offset = self.offset,
                "log offsets disagree; continuing at the server's end"
            );
            self.bytes.clear();
        } else {
            self.bytes.drain(..held);
        }
        self.offset = end;
    }
}

/// Uploads what the log keeps of everything `output` yields, until it closes, then flushes the
/// rest. Reads `output` to its end whatever the server says, unless the lease is lost or the
/// build abandoned (the script is being stopped then anyway).
pub(crate) async fn stream(
    client: &Client,
    build: i64,
    mut output: mpsc::Receiver<Vec<u8>>,
    limit: u64,
    abandon: CancellationToken,
) -> Streamed {
    // The output is read by a task of its own, never held up by an upload being retried: a
    // server that is away must not fill the script's pipe. What it keeps waits here, at most
    // the log's limit.
    let (keep, mut kept) = mpsc::unbounded_channel::<Vec<u8>>();
    let reader = tokio::spawn(async move {
        let mut account = Account::new(limit);
        while let Some(chunk) = output.recv().await {
            let bytes = account.keep(&chunk);
            if !bytes.is_empty() {
                let _ = keep.send(bytes);
            }
        }
        account.finish()
    });
    let mut pending = Pending::default();
    let mut sending = true;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush = tokio::select! {
            chunk = kept.recv() => match chunk {
                Some(chunk) => {
                    if sending {
                        pending.bytes.extend_from_slice(&chunk);
                    }
                    pending.bytes.len() >= FLUSH_BYTES
                }
                None => break,
            },
            _ = tick.tick() => !pending.bytes.is_empty(),
            () = abandon.cancelled() => return Streamed::Abandoned,
        };
        if flush {
            match upload(client, build, &mut pending, &abandon).await {
                None => {}
                Some(Halt::Refused) => sending = false,
                Some(Halt::LeaseLost) => return Streamed::LeaseLost,
                Some(Halt::Abandoned) => return Streamed::Abandoned,
            }
        }
    }
    match upload(client, build, &mut pending, &abandon).await {
        None | Some(Halt::Refused) => match reader.await {
            Ok(account) => Streamed::Ended(account),
            Err(_) => Streamed::Abandoned,
        },
        Some(Halt::LeaseLost) => Streamed::LeaseLost,
        Some(Halt::Abandoned) => Streamed::Abandoned,
    }
}

/// Sends all pending bytes; `Some` when sending must stop.
async fn upload(
    client: &Client,
    build: i64,
    pending: &mut Pending,
    abandon: &CancellationToken,
) -> Option<Halt> {
    let mut backoff = Backoff::default();
    while !pending.bytes.is_empty() {
        let size = pending.bytes.len().min(MAX_CHUNK);
        let chunk = pending.bytes[..size].to_vec();
        match client.append_log(build, pending.offset, chunk).await {
            Ok(end) | Err(CallError::Offset(end)) => {
                // A 416 usually means an earlier send arrived but its answer did not.
                pending.acknowledge(end);
                backoff.reset();
            }
            Err(CallError::Gone) => return Some(Halt::LeaseLost),
            Err(CallError::Unavailable(error)) => {
                let delay = backoff.next_delay();
                tracing::warn!(build_id = build, %error, retry_in_ms = delay.as_millis(), "log upload failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = abandon.cancelled() => return Some(Halt::Abandoned),
                }
            }
            Err(error) => {
                tracing::error!(build_id = build, %error, "log upload refused; the rest of the output is read but not sent");
                pending.bytes.clear();
                return Some(Halt::Refused);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Account, DEFAULT_LOG_LIMIT, Pending, Streamed, stream};
    use crate::client::{Client, LogAccount};
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use sha2::{Digest as _, Sha256};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio_util::sync::CancellationToken;

    /// A stand-in for the server's log endpoint that stores each chunk but, every other time,
    /// answers 503 as if the answer had been lost on the way back.
    #[derive(Default)]
    struct Lossy {
        log: Mutex<Vec<u8>>,
        calls: Mutex<u32>,
    }

    async fn append(
        State(server): State<Arc<Lossy>>,
        Query(query): Query<HashMap<String, u64>>,
        body: axum::body::Bytes,
    ) -> Response {
        let mut log = server.log.lock().expect("lock");
        let end = log.len() as u64;
        if query["offset"] != end {
            let body =
                format!(r#"{{"error":{{"code":"log_offset","message":"m","offset":{end}}}}}"#);
            return (StatusCode::RANGE_NOT_SATISFIABLE, body).into_response();
        }
        log.extend_from_slice(&body);
        let mut calls = server.calls.lock().expect("lock");
        *calls += 1;
        if *calls % 2 == 1 {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        axum::Json(serde_json::json!({ "offset": log.len() })).into_response()
    }

    /// Serves `app` on a port of its own; a client for it.
    async fn serve(app: axum::Router) -> Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Client::new(&format!("http://{address}"), "token").expect("a client")
    }

    /// About 240 KB of output: more than three times `FLUSH_BYTES`, so that several chunks go
    /// out on size alone, whenever the flush timer happens to fire.
    const LINES: u32 = 4_000;

    #[tokio::test]
    async fn lost_answers_neither_lose_nor_duplicate_bytes() {
        let server = Arc::new(Lossy::default());
        let app = axum::Router::new()
            .route("/api/v1/jobs/{id}/log", axum::routing::post(append))
            .with_state(server.clone());
        let client = serve(app).await;

        let (sender, output) = tokio::sync::mpsc::channel(4);
        let mut expected = Vec::new();
        let writer = tokio::spawn(async move {
            for i in 0..LINES {
                let line = format!(
                    "line {i} {}\n",
                    "x".repeat(usize::try_from(i % 97).expect("small"))
                );
                sender
                    .send(line.into_bytes())
                    .await
                    .expect("the stream reads");
            }
        });
        for i in 0..LINES {
            expected.extend_from_slice(
                format!(
                    "line {i} {}\n",
                    "x".repeat(usize::try_from(i % 97).expect("small"))
                )
                .as_bytes(),
            );
        }
        let streamed = stream(
            &client,
            1,
            output,
            DEFAULT_LOG_LIMIT,
            CancellationToken::new(),
        )
        .await;
        writer.await.expect("the writer finishes");
        assert_eq!(
            streamed,
            Streamed::Ended(LogAccount {
                bytes: expected.len() as u64,
                sha256: hex::encode(Sha256::digest(&expected)),
            })
        );
        assert!(
            *server.log.lock().expect("lock") == expected,
            "the server's log differs"
        );
        assert!(
            *server.calls.lock().expect("lock") > 2,
            "several chunks were sent"
        );
    }

    /// A server that refuses every chunk as too large, like one whose limit is lower than the
    /// runner thought.
    async fn refuse() -> Response {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":{"code":"log_too_large","message":"m"}}"#,
        )
            .into_response()
    }

    /// The server refusing the log must not stop the output being read: a script whose pipe
    /// fills up blocks, or dies of SIGPIPE once the reader is gone.
    #[tokio::test]
    async fn a_refused_log_is_still_read_to_the_end() {
        let client =
            serve(axum::Router::new().route("/api/v1/jobs/{id}/log", axum::routing::post(refuse)))
                .await;
        // A channel of one: the writer gets through only if every chunk is taken.
        let (sender, output) = tokio::sync::mpsc::channel(1);
        let writer = tokio::spawn(async move {
            for _ in 0..100 {
                sender.send(vec![b'x'; 100 * 1024]).await.expect("read");
            }
        });
        let streamed = stream(
            &client,
            1,
            output,
            DEFAULT_LOG_LIMIT,
            CancellationToken::new(),
        )
        .await;
        writer.await.expect("every chunk was read");
        let Streamed::Ended(account) = streamed else {
            panic!("{streamed:?}");
        };
        assert_eq!(
            account.bytes,
            100 * 100 * 1024,
            "the account says what it should hold"
        );
    }

    #[test]
    fn output_past_the_limit_is_cut_with_a_notice_and_nothing_after() {
        let mut account = Account::new(100);
        let notice = account.notice();
        let room = 100 - notice.len();
        assert_eq!(account.keep(&vec![b'a'; room - 10]).len(), room - 10);
        let cut = account.keep(&[b'b'; 30]);
        assert_eq!(cut.len(), 10 + notice.len());
        assert!(cut.starts_with(&[b'b'; 10]) && cut.ends_with(notice.as_bytes()));
        assert!(account.keep(b"after").is_empty());
        let mut whole = vec![b'a'; room - 10];
        whole.extend_from_slice(&cut);
        let finished = account.finish();
        assert_eq!(finished.bytes, 100);
        assert_eq!(finished.sha256, hex::encode(Sha256::digest(&whole)));
        assert!(
            notice.contains("[lockstep] log truncated at 0 MiB"),
            "{notice}"
        );
    }

    #[test]
    fn an_acknowledgement_drops_exactly_what_the_server_holds() {
        let mut pending = Pending {
            offset: 10,
            bytes: b"abcdef".to_vec(),
        };
        pending.acknowledge(13);
        assert_eq!(
            (pending.offset, pending.bytes.as_slice()),
            (13, &b"def"[..])
        );
        pending.acknowledge(16);
        assert_eq!((pending.offset, pending.bytes.len()), (16, 0));
    }

    #[test]
    fn an_end_outside_what_we_sent_moves_to_the_servers_end() {
        let mut pending = Pending {
            offset: 10,
            bytes: b"abc".to_vec(),
        };
        pending.acknowledge(99);
        assert_eq!((pending.offset, pending.bytes.len()), (99, 0));
    }
}
