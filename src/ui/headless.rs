//! Headless view: events as JSON lines on stdout, commands as lines on stdin.
//!
//! Each event is one JSON object with `event` (its kind), `ts` (RFC 3339 UTC with
//! milliseconds) and the event's fields, e.g.
//! `{"event":"state","call_id":"…","peer":"jerry","direction":"outgoing","state":"ringing","ts":"2026-11-21T08:00:00.000Z"}`.
//! Commands are `accept`, `refuse`, `hangup`, `mute`, `unmute`, `camera off`,
//! `camera on` and `quit`, one per line. EOF on stdin does not end a call.

use std::io::Write;

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tracing::debug;

use crate::call::{AppEvent, TimedEvent, UserCommand};

/// One event as the JSON object a line carries: its fields and `ts`.
pub fn event_value(event: &TimedEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(&event.event)
        .unwrap_or_else(|e| serde_json::json!({"event": "error", "message": e.to_string()}));
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "ts".into(),
            humantime::format_rfc3339_millis(event.at)
                .to_string()
                .into(),
        );
    }
    value
}

/// Serializes one event as a JSON line (without the newline).
pub fn event_line(event: &TimedEvent) -> String {
    event_value(event).to_string()
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) is not worth failing a call over.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Prints events until the controller closes the channel, while a task feeds stdin
/// lines to `commands`. Returns when the event channel closes.
pub async fn run(mut events: mpsc::Receiver<TimedEvent>, commands: mpsc::Sender<UserCommand>) {
    let reader = tokio::spawn(read_commands(commands));
    while let Some(event) = events.recv().await {
        print_line(&event_line(&event));
    }
    reader.abort();
}

async fn read_commands(commands: mpsc::Sender<UserCommand>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) if line.trim().is_empty() => {}
            Ok(Some(line)) => match line.parse::<UserCommand>() {
                Ok(cmd) => {
                    if commands.send(cmd).await.is_err() {
                        return;
                    }
                }
                Err(message) => print_line(&event_line(&TimedEvent::now(AppEvent::Error {
                    message,
                    fatal: false,
                }))),
            },
            Ok(None) => {
                debug!("stdin closed; commands end, the call goes on");
                return;
            }
            Err(e) => {
                debug!("stdin unreadable: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn event_lines_carry_kind_fields_and_timestamp() {
        let ev = TimedEvent {
            at: UNIX_EPOCH + Duration::from_millis(1_500),
            event: AppEvent::Notice {
                message: "hi".into(),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&event_line(&ev)).unwrap();
        assert_eq!(v["event"], "notice");
        assert_eq!(v["message"], "hi");
        assert_eq!(v["ts"], "1970-01-01T00:00:01.500Z");
    }
}
