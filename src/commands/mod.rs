//! What each subcommand does, given its parsed arguments. `main.rs` dispatches here.

mod phone;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tracing::info;

use crate::call::control::ControlServer;
use crate::call::controller::{self, ControllerConfig, Mode};
use crate::call::history::History;
use crate::call::media::VideoSlots;
use crate::call::room::{RoomConfig, RoomVideo};
use crate::call::{ExitCode, UserCommand, ViewChannels};
use crate::cli::{
    Cli, Command, GlobalArgs, LoginArgs, MediaArgs, RoomArgs, ServeArgs, ServeCommand,
};
use crate::config::{MediaSettings, Settings};
use crate::signaling::auth::{self, Auth};
use crate::signaling::client::{self, ClientConfig, Fatal, SignalingEvent};
use crate::signaling::server::{
    ConnectionLimits, PresenceSharing, Server, ServerConfig, raise_open_file_limit,
};
use crate::signaling::turn::{IceOffer, TurnRest, TurnSecret};
use crate::ui::{Role, TuiOptions, VideoFeeds, ViewLink};

/// Runs the parsed command line; returns the process exit code.
///
/// # Errors
/// Anything that stops a command before it could produce its own exit code
/// (bad config, unreadable files, a server that cannot bind).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { global, command } = cli;
    let Some(command) = command else {
        return listen_on_profile(&global).await;
    };
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Login(args) => login(&global, args).await,
        Command::Logout => logout(&global),
        Command::Call(args) => {
            let settings = Settings::resolve(&global)?;
            let id = settings.require_id()?;
            let json = global.headless || !std::io::stdout().is_terminal();
            if let Some(code) =
                phone::call_via_running(&id, &args.peer, args.hangup_after, json).await
            {
                return Ok(code);
            }
            let mode = Mode::Call { peer: args.peer };
            session(&global, mode, args.hangup_after, &args.media).await
        }
        Command::Who(args) => phone::who(&global, args).await,
        Command::History(args) => phone::history(args),
        Command::Listen(args) => {
            let mode = Mode::Listen {
                auto_accept: args.auto_accept,
            };
            session(&global, mode, args.hangup_after, &args.media).await
        }
        Command::Room(args) => room(&global, args).await,
        Command::Devices(args) => {
            crate::devices::run_devices_command(args.json, &mut std::io::stdout().lock())?;
            Ok(ExitCode::Ok)
        }
        Command::Manpage => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock()) {
                // A reader that stops early (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::Error::new(e).context("cannot write the man page"))
                }
                _ => Ok(ExitCode::Ok),
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "rtc-cli",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::Ok)
        }
    }
}

/// `rtc-cli` alone: `listen` with its defaults when a profile is saved, else the help.
async fn listen_on_profile(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    use clap::{Args, CommandFactory, FromArgMatches};
    let settings = Settings::resolve(global)?;
    if settings.id.is_none() {
        Cli::command().print_help()?;
        eprintln!(
            "\nrtc-cli: no saved profile: run `rtc-cli login <id>` first, then `rtc-cli` listens"
        );
        return Ok(ExitCode::Usage);
    }
    let matches = crate::cli::ListenArgs::augment_args(clap::Command::new("listen"))
        .try_get_matches_from(["listen"])?;
    let args = crate::cli::ListenArgs::from_arg_matches(&matches)?;
    let mode = Mode::Listen {
        auto_accept: args.auto_accept,
    };
    session(global, mode, args.hangup_after, &args.media).await
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(ServeCommand::Token {
        id,
        token_secret_file,
        ttl,
    }) = args.command
    {
        let Auth::Token { secret } = Auth::from_secret_file(&token_secret_file)? else {
            unreachable!("from_secret_file returns token auth");
        };
        println!("{}", auth::issue_token(&secret, &id, ttl)?);
        return Ok(ExitCode::Ok);
    }
    let auth = match (&args.auth, &args.token_secret_file) {
        (crate::cli::AuthMode::Token, Some(path)) => Auth::from_secret_file(path)?,
        (crate::cli::AuthMode::Token, None) => {
            anyhow::bail!("--auth token needs --token-secret-file FILE")
        }
        (crate::cli::AuthMode::Open, _) => Auth::Open,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::signaling::tls::server_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let turn = match &args.turn_secret_file {
        Some(path) if !args.turn.is_empty() => Some(TurnRest {
            urls: args.turn.clone(),
            secret: TurnSecret::from_file(path)?,
            ttl: args.turn_ttl,
        }),
        _ => None,
    };
    let config = ServerConfig {
        listen: args.listen,
        tls,
        ice: IceOffer {
            stun: args.stun.clone(),
            turn,
        },
        auth,
        ring_timeout: args.ring_timeout,
        upgrade_timeout: args.upgrade_timeout,
        login_timeout: args.login_timeout,
        limits: ConnectionLimits {
            total: args.max_connections as usize,
            per_address: args.max_connections_per_address as usize,
        },
        presence: match args.presence {
            crate::cli::PresenceArg::All => PresenceSharing::All,
            crate::cli::PresenceArg::None => PresenceSharing::None,
        },
        redis: args.redis.clone(),
        ..ServerConfig::default()
    };
    check_open_file_limit(config.limits.total);
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    println!("rtc-cli serve: listening on {scheme}://{addr}");
    std::io::stdout().flush().ok();
    server.run(shutdown_signal()).await;
    println!("rtc-cli serve: stopped");
    Ok(ExitCode::Ok)
}

/// Raises the soft open-file limit to the hard one and logs when it still cannot hold
/// `max_connections` sockets (one file handle each).
fn check_open_file_limit(max_connections: usize) {
    match raise_open_file_limit() {
        Ok(files) if files < max_connections as u64 => {
            tracing::warn!(
                files,
                max_connections,
                "the open-file limit is below --max-connections; past it, connections that \
                 have not logged in are shed to keep accepting"
            );
        }
        Ok(files) => info!(files, "open-file limit"),
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn login(global: &GlobalArgs, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(global)?;
    let mut config = ClientConfig::new(
        settings.servers.clone(),
        args.id.clone(),
        args.token.clone(),
    );
    config.initial_attempts = Some(1);
    config.tls = settings.client_tls()?;
    let mut client = client::spawn(config);
    let outcome = tokio::time::timeout(Duration::from_secs(10), client.events.recv()).await;
    let code = match outcome {
        Ok(Some(SignalingEvent::LoggedIn { id, .. })) => {
            let mut file = settings.file.clone();
            file.server = Some(settings.server().to_owned());
            file.servers = settings.servers[1..].to_vec();
            file.id = Some(id.clone());
            file.token = args.token;
            file.save(&settings.config_path)?;
            println!(
                "Logged in as {id} on {} (profile saved to {})",
                settings.servers.join(", "),
                settings.config_path.display()
            );
            ExitCode::Ok
        }
        Ok(Some(SignalingEvent::Fatal(fatal))) => {
            eprintln!("rtc-cli: {fatal}");
            match fatal {
                Fatal::AuthFailed(_) | Fatal::Conflict(_) => ExitCode::AuthFailed,
                Fatal::Unreachable { .. } => ExitCode::ServerUnreachable,
            }
        }
        Ok(other) => {
            eprintln!("rtc-cli: unexpected answer from the server: {other:?}");
            ExitCode::Error
        }
        Err(_) => {
            eprintln!(
                "rtc-cli: the server at {} did not answer in 10 s",
                settings.server()
            );
            ExitCode::ServerUnreachable
        }
    };
    drop(client.handle);
    let _ = tokio::time::timeout(Duration::from_secs(2), client.task).await;
    Ok(code)
}

fn logout(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(global)?;
    let mut file = settings.file.clone();
    let who = file.id.take();
    file.token = None;
    file.server = None;
    file.servers.clear();
    file.save(&settings.config_path)?;
    match who {
        Some(id) => println!(
            "Logged out {id}; profile removed from {}",
            settings.config_path.display()
        ),
        None => println!("No saved profile in {}", settings.config_path.display()),
    }
    Ok(ExitCode::Ok)
}

/// What `call`, `listen` and `room` share before their controller starts: the profile,
/// the media settings (sources and sinks checked), the signaling client's settings and
/// whether the view is headless.
struct Prepared {
    id: crate::call::UserId,
    media: MediaSettings,
    client: ClientConfig,
    headless: bool,
}

async fn prepare(global: &GlobalArgs, media_args: &MediaArgs) -> anyhow::Result<Prepared> {
    let settings = Settings::resolve(global)?;
    let id = settings.require_id()?;
    let media = MediaSettings::resolve(media_args, &settings.file)?;
    let check = media.clone();
    tokio::task::spawn_blocking(move || crate::call::media::check_media(&check))
        .await
        .context("the media check panicked")??;
    let mut client =
        ClientConfig::new(settings.servers.clone(), id.clone(), settings.token.clone());
    client.tls = settings.client_tls()?;
    let headless = global.headless || !std::io::stdout().is_terminal();
    Ok(Prepared {
        id,
        media,
        client,
        headless,
    })
}

/// `room`: the room controller and a view (the TUI on a terminal, else headless).
async fn room(global: &GlobalArgs, args: RoomArgs) -> anyhow::Result<ExitCode> {
    if args.media.record_video.is_some() || args.media.record_audio.is_some() {
        anyhow::bail!(
            "--record-video and --record-audio record the one peer of a call; in a room, \
             --record-dir DIR records each member to DIR/ID.y4m and DIR/ID.wav"
        );
    }
    let Prepared {
        id,
        media,
        client,
        headless,
    } = prepare(global, &args.media).await?;
    if let Some(dir) = &args.record_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --record-dir {}", dir.display()))?;
    }
    info!(%id, room = %args.room, headless, "room session starting");
    let (events_tx, events_rx) = mpsc::channel(256);
    let (commands_tx, commands_rx) = mpsc::channel(32);
    let tiles = RoomVideo::new();
    let stderr_to_log = headless.then(crate::stderr::StderrToLog::capture);
    let view = spawn_view(
        headless,
        events_rx,
        commands_tx,
        VideoFeeds::Room(tiles.clone()),
        TuiOptions {
            max_fps: media.max_draw_fps,
            render: media.render,
            title: format!("rtc-cli: {id} in {}", args.room),
            role: Role::Room,
        },
    );
    let code = crate::call::room::run(
        RoomConfig {
            room: args.room,
            client,
            hangup_after: args.hangup_after,
            media,
            record_dir: args.record_dir,
            tiles,
        },
        ViewChannels {
            events: events_tx,
            commands: commands_rx,
        },
    )
    .await;
    finish_view(view, stderr_to_log).await?;
    Ok(code)
}

/// Starts the view: the headless JSON-lines view (with signals turned into `quit`), or
/// the TUI.
fn spawn_view(
    headless: bool,
    events: mpsc::Receiver<crate::call::TimedEvent>,
    commands: mpsc::Sender<UserCommand>,
    video: VideoFeeds,
    options: TuiOptions,
) -> tokio::task::JoinHandle<anyhow::Result<Vec<String>>> {
    if headless {
        let signals = tokio::spawn(quit_on_signal(commands.clone()));
        tokio::spawn(async move {
            crate::ui::headless::run(events, commands).await;
            signals.abort();
            Ok(Vec::new())
        })
    } else {
        let link = ViewLink {
            events,
            commands,
            video,
        };
        tokio::spawn(crate::ui::run(link, options))
    }
}

/// Waits for the view to end and says on the restored terminal how the call ended.
async fn finish_view(
    view: tokio::task::JoinHandle<anyhow::Result<Vec<String>>>,
    stderr_to_log: Option<crate::stderr::StderrToLog>,
) -> anyhow::Result<()> {
    let farewell = view.await.context("the view task failed")??;
    drop(stderr_to_log);
    for line in farewell {
        eprintln!("rtc-cli: {line}");
    }
    Ok(())
}

/// `call` and `listen`: a controller and a view (the TUI on a terminal, else headless).
async fn session(
    global: &GlobalArgs,
    mode: Mode,
    hangup_after: Option<Duration>,
    media_args: &MediaArgs,
) -> anyhow::Result<ExitCode> {
    let Prepared {
        id,
        media,
        mut client,
        headless,
    } = prepare(global, media_args).await?;
    let (control, control_rx) = match mode {
        Mode::Listen { .. } => {
            client.initial_attempts = None;
            client.presence = true;
            let (tx, rx) = mpsc::channel(8);
            match ControlServer::bind(&id, tx).await {
                Ok(server) => (Some(server), Some(rx)),
                Err(e) => {
                    tracing::warn!("no control socket: {e:#}");
                    (None, None)
                }
            }
        }
        Mode::Call { .. } => (None, None),
    };
    info!(%id, servers = ?client.servers, ?mode, headless, "session starting");

    let (events_tx, events_rx) = mpsc::channel(256);
    let (commands_tx, commands_rx) = mpsc::channel(32);
    let slots = VideoSlots::new();
    let role = match mode {
        Mode::Call { .. } => Role::Call,
        Mode::Listen { .. } => Role::Listen,
    };
    // The TUI captures stderr when it takes the terminal; headless, from here on.
    let stderr_to_log = headless.then(crate::stderr::StderrToLog::capture);
    let view = spawn_view(
        headless,
        events_rx,
        commands_tx,
        VideoFeeds::Call {
            remote: slots.remote.subscribe(),
            local: slots.local.subscribe(),
        },
        TuiOptions {
            max_fps: media.max_draw_fps,
            render: media.render,
            title: format!("rtc-cli: {id}"),
            role,
        },
    );
    let code = controller::run(
        ControllerConfig {
            mode,
            client,
            hangup_after,
            media,
            slots,
            history: crate::call::history::default_path().map(History::at),
            control: control_rx,
            preview: !headless,
        },
        ViewChannels {
            events: events_tx,
            commands: commands_rx,
        },
    )
    .await;
    drop(control);
    // The call screen is gone: say on the restored terminal how it ended.
    finish_view(view, stderr_to_log).await?;
    Ok(code)
}

/// Turns SIGINT, SIGTERM and SIGHUP into `quit` (hang up first, then exit).
async fn quit_on_signal(commands: mpsc::Sender<UserCommand>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
            _ = hup.recv() => {},
        }
        if commands.send(UserCommand::Quit).await.is_err() {
            return;
        }
    }
}
