//! Streams a build's output to the server in chunks, by offset, so that after any network
//! failure it resumes exactly where the server's copy ends: nothing lost, nothing twice.

use crate::backoff::Backoff;
use crate::client::{CallError, Client};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Send once this much output is waiting...
const FLUSH_BYTES: usize = 64 * 1024;
/// ...or once output has waited this long.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The server's limit on one chunk.
const MAX_CHUNK: usize = 1024 * 1024;

/// How streaming ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streamed {
    /// Every byte reached the server.
    Complete { bytes: u64 },
    /// The server said the lease is gone; the rest was dropped.
    LeaseLost,
    /// Given up on (the build is being abandoned).
    Abandoned,
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

/// Uploads everything `output` yields until it closes, then flushes the rest.
pub(crate) async fn stream(
    client: &Client,
    build: i64,
    mut output: mpsc::Receiver<Vec<u8>>,
    abandon: CancellationToken,
) -> Streamed {
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush = tokio::select! {
            chunk = output.recv() => match chunk {
                Some(chunk) => {
                    pending.bytes.extend_from_slice(&chunk);
                    pending.bytes.len() >= FLUSH_BYTES
                }
                None => break,
            },
            _ = tick.tick() => !pending.bytes.is_empty(),
            () = abandon.cancelled() => return Streamed::Abandoned,
        };
        if flush && let Some(end) = upload(client, build, &mut pending, &abandon).await {
            return end;
        }
    }
    match upload(client, build, &mut pending, &abandon).await {
        Some(end) => end,
        None => Streamed::Complete {
            bytes: pending.offset,
        },
    }
}

/// Sends all pending bytes; `Some` when streaming must stop.
async fn upload(
    client: &Client,
    build: i64,
    pending: &mut Pending,
    abandon: &CancellationToken,
) -> Option<Streamed> {
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
            Err(CallError::Gone) => return Some(Streamed::LeaseLost),
            Err(CallError::Unavailable(error)) => {
                let delay = backoff.next_delay();
                tracing::warn!(build_id = build, %error, retry_in_ms = delay.as_millis(), "log upload failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = abandon.cancelled() => return Some(Streamed::Abandoned),
                }
            }
            Err(error) => {
                tracing::error!(build_id = build, %error, "log upload refused; dropping the rest of the log");
                return Some(Streamed::Abandoned);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Pending, Streamed, stream};
    use crate::client::Client;
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
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

    /// About 240 KB of output: more than three times `FLUSH_BYTES`, so that several chunks go
    /// out on size alone, whenever the flush timer happens to fire.
    const LINES: u32 = 4_000;

    #[tokio::test]
    async fn lost_answers_neither_lose_nor_duplicate_bytes() {
        let server = Arc::new(Lossy::default());
        let app = axum::Router::new()
            .route("/api/v1/jobs/{id}/log", axum::routing::post(append))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(&format!("http://{address}"), "token").expect("a client");

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
        let streamed = stream(&client, 1, output, CancellationToken::new()).await;
        writer.await.expect("the writer finishes");
        assert_eq!(
            streamed,
            Streamed::Complete {
                bytes: expected.len() as u64
            }
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
