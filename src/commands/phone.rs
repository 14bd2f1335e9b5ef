//! The commands that make a running `listen` a phone: `call` through the running
//! client's control socket, `who` and `history`.

use std::time::Duration;

use crate::call::control::{self, Reply, Request};
use crate::call::history::{self, History};
use crate::call::{ExitCode, Presence, UserId};
use crate::cli::{GlobalArgs, HistoryArgs, WhoArgs};
use crate::config::Settings;
use crate::signaling::client::{self, ClientConfig, SignalingEvent};
use crate::ui::phone::history_line;

/// `call`: places the call through the running client of `id` on this machine, if
/// there is one; `None` when there is none (the caller goes on by itself).
///
/// Prints each event of the call (JSON lines when `json`, else a line of text each)
/// and returns the exit code `call` has for its outcome.
pub async fn call_via_running(
    id: &UserId,
    peer: &UserId,
    hangup_after: Option<Duration>,
    json: bool,
) -> Option<ExitCode> {
    let request = Request::Call {
        to: peer.clone(),
        hangup_after_secs: hangup_after.map(|d| d.as_secs().max(1)),
    };
    let mut answers = control::connect(id, &request).await?;
    if !json {
        eprintln!("rtc-cli: calling {peer} through the running rtc-cli of {id}");
    }
    while let Some(reply) = answers.next().await {
        if json {
            print_json(&reply);
        }
        match reply {
            Reply::Done {
                exit_code, message, ..
            } => {
                if let Some(message) = message.filter(|_| !json) {
                    eprintln!("rtc-cli: {message}");
                }
                return Some(ExitCode::from_code(exit_code));
            }
            Reply::Event(event) if !json => {
                if let Some(line) = describe(&event) {
                    eprintln!("rtc-cli: {line}");
                }
            }
            Reply::Event(_) => {}
        }
    }
    eprintln!("rtc-cli: the running client closed before the call ended");
    Some(ExitCode::Error)
}

/// Prints `reply` as a headless event line; the last line gets a `ts` of its own.
fn print_json(reply: &Reply) {
    let mut value = serde_json::to_value(reply).unwrap_or_default();
    if let Some(obj) = value.as_object_mut().filter(|o| !o.contains_key("ts")) {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        obj.insert("ts".into(), now.to_string().into());
    }
    println!("{value}");
}

/// A call event from the control socket in words, for a terminal.
fn describe(event: &serde_json::Value) -> Option<String> {
    let field = |name: &str| event.get(name).and_then(|v| v.as_str());
    match field("event")? {
        "state" => match (field("state")?, field("reason")) {
            ("ended", Some(reason)) => {
                Some(format!("call with {} ended: {reason}", field("peer")?))
            }
            (state, _) => Some(format!("{}: {state}", field("peer")?)),
        },
        "error" | "notice" => field("message").map(str::to_owned),
        _ => None,
    }
}

/// `who`: who is online, from the running client of our id, else from a login of our
/// own (subscribed to presence, logged out at once).
pub async fn who(global: &GlobalArgs, args: WhoArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(global)?;
    let id = settings.require_id()?;
    let users = match from_running(&id).await {
        Some(answer) => answer,
        None => from_login(&settings, &id).await?,
    };
    let users = match users {
        Ok(users) => users,
        Err(message) => {
            eprintln!("rtc-cli: {message}");
            return Ok(ExitCode::Error);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&users)?);
    } else if users.is_empty() {
        println!("nobody else is online");
    } else {
        for p in &users {
            println!("{:<24} {}", p.id.as_str(), p.status);
        }
    }
    Ok(ExitCode::Ok)
}

/// The presence list of the running client of `id`; `None` when none runs.
async fn from_running(id: &UserId) -> Option<Result<Vec<Presence>, String>> {
    let mut answers = control::connect(id, &Request::Who).await?;
    let answer = match answers.next().await {
        Some(Reply::Event(mut event)) => event
            .get_mut("users")
            .map(serde_json::Value::take)
            .and_then(|users| serde_json::from_value(users).ok())
            .ok_or_else(|| "the running client answered something else".to_owned()),
        Some(Reply::Done { message, .. }) => Err(message.unwrap_or_default()),
        None => Err("the running client closed without an answer".to_owned()),
    };
    Some(answer)
}

/// The presence list from a short login of our own.
async fn from_login(
    settings: &Settings,
    id: &UserId,
) -> anyhow::Result<Result<Vec<Presence>, String>> {
    let mut config =
        ClientConfig::new(settings.servers.clone(), id.clone(), settings.token.clone());
    config.initial_attempts = Some(1);
    config.tls = settings.client_tls()?;
    config.presence = true;
    let mut client = client::spawn(config);
    let first = tokio::time::timeout(Duration::from_secs(10), client.events.recv()).await;
    let answer = match first {
        Ok(Some(SignalingEvent::LoggedIn {
            presence: Some(users),
            ..
        })) => Ok(users),
        Ok(Some(SignalingEvent::LoggedIn { presence: None, .. })) => {
            Err("the server does not share presence".to_owned())
        }
        Ok(Some(SignalingEvent::Fatal(fatal))) => Err(fatal.to_string()),
        Ok(_) => Err("unexpected answer from the server".to_owned()),
        Err(_) => Err(format!(
            "the server at {} did not answer in 10 s",
            settings.server()
        )),
    };
    drop(client.handle);
    let _ = tokio::time::timeout(Duration::from_secs(2), client.task).await;
    Ok(answer)
}

/// `history`: the newest calls, newest first.
pub fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = history::default_path() else {
        anyhow::bail!("no home directory to keep a call history in");
    };
    let calls = History::at(path).recent(args.n)?;
    if args.json {
        println!("{}", serde_json::to_string(&calls)?);
    } else if calls.is_empty() {
        println!("no calls yet");
    } else {
        for entry in &calls {
            println!("{}", history_line(entry));
        }
    }
    Ok(ExitCode::Ok)
}
