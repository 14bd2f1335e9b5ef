//! Command line: clap derive types. Parsing only; `main.rs` dispatches.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::call::peer::IceTransportPolicy;
use crate::media::audio::processing::{NoiseSuppressionLevel, Switch};
use crate::media::spec::{AudioSinkSpec, AudioSourceSpec, VideoSourceSpec};
use crate::signaling::protocol::{RoomId, UserId};

const EXIT_CODES: &str = "\
Exit codes of `call`:
  0   a connected call ended normally (either side hung up)
  1   other error (bad config, device error, ...)
  2   bad command line
  3   refused          4   busy             5   offline
  6   no answer        7   canceled         8   login refused (auth)
  9   server unreachable                    10  connection failed (ICE/DTLS, peer gone)
  11  logged in elsewhere (conflict)
`room` exits 0 when the user leaves, 12 when the room is full (4 members),
and with 1, 8, 9, 11 as above.";

/// A video-call client for the terminal: WebRTC camera and microphone, the other
/// side's video as colored half-blocks.
#[derive(Debug, Parser)]
#[command(name = "rtc-cli", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; without a subcommand, `listen` on the saved profile.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand takes. Precedence: flag > environment > config file > default.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Signaling server URL (ws:// or wss://) [default: ws://127.0.0.1:8787]; repeat
    /// (or comma-separate in RTC_CLI_SERVER) for servers sharing one Redis: the client
    /// moves to the next when it loses one
    #[arg(long, global = true, env = "RTC_CLI_SERVER", value_name = "URL", value_parser = parse_server_url, value_delimiter = ',')]
    pub server: Vec<String>,

    /// Our id (overrides the saved profile): 1-64 of A-Z a-z 0-9 . _ -
    #[arg(long, global = true, env = "RTC_CLI_ID", value_name = "ID")]
    pub id: Option<UserId>,

    /// Config file [default: ~/.config/rtc-cli/config.toml]
    #[arg(long, global = true, env = "RTC_CLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// No TUI: events as JSON lines on stdout, commands as lines on stdin
    #[arg(long, global = true)]
    pub headless: bool,

    /// More detail in the log file (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log file [default: ~/.local/state/rtc-cli/rtc-cli.log]
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// PEM file of a private CA to trust for wss:// besides the public roots
    #[arg(long, global = true, env = "RTC_CLI_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the signaling server that clients log in to
    Serve(ServeArgs),
    /// Sign in to a server and remember the profile
    Login(LoginArgs),
    /// Forget the saved profile
    Logout,
    /// Call someone
    #[command(after_help = EXIT_CODES)]
    Call(CallArgs),
    /// Wait for calls
    Listen(ListenArgs),
    /// Join a room of up to 4 (created by the first to join): every member sees and
    /// hears every other
    #[command(after_help = EXIT_CODES)]
    Room(RoomArgs),
    /// Who is online (asks the running listen of our id, else logs in briefly)
    Who(WhoArgs),
    /// Past calls, newest first
    History(HistoryArgs),
    /// List cameras (with formats), microphones and speakers
    Devices(DevicesArgs),
    /// Print shell completions
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `rtc-cli manpage > rtc-cli.1 && man ./rtc-cli.1`
    Manpage,
}

/// Who may log in to `serve` (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Any valid id may log in
    Open,
    /// A JWT signed with --token-secret-file is required
    Token,
}

/// `rtc-cli serve` options.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// `serve token`, instead of running the server.
    #[command(subcommand)]
    pub command: Option<ServeCommand>,

    /// Address to listen on (0.0.0.0:8787 for a LAN)
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Who may log in
    #[arg(long, value_enum, default_value = "open")]
    pub auth: AuthMode,

    /// File holding the HS256 secret for --auth token (at least 32 bytes)
    #[arg(long, value_name = "FILE", required_if_eq("auth", "token"))]
    pub token_secret_file: Option<PathBuf>,

    /// How long a call rings before it ends with no-answer
    #[arg(long, default_value = "45s", value_parser = parse_duration, value_name = "DURATION")]
    pub ring_timeout: Duration,

    /// Time a new connection gets to finish its WebSocket upgrade
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub upgrade_timeout: Duration,

    /// Time a connection gets, after the upgrade, to log in
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub login_timeout: Duration,

    /// Connections held at once, logged in or not; more are refused (HTTP 503)
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_connections: u32,

    /// Connections held at once from one IP address; more are refused (HTTP 503)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_connections_per_address: u32,

    /// PEM certificate chain: serve wss:// instead of ws:// (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// STUN server handed out to clients at login (repeatable), e.g. stun:turn.example.org:3478
    #[arg(long, value_name = "URL", value_parser = parse_stun_url)]
    pub stun: Vec<String>,

    /// TURN server handed out to clients at login with TURN REST credentials (repeatable),
    /// e.g. turn:turn.example.org:3478
    #[arg(long, value_name = "URL", value_parser = parse_turn_url, requires = "turn_secret_file")]
    pub turn: Vec<String>,

    /// File holding the TURN server's static-auth-secret (at least 16 bytes)
    #[arg(long, value_name = "FILE", requires = "turn")]
    pub turn_secret_file: Option<PathBuf>,

    /// How long the TURN credentials handed out at login stay valid
    #[arg(long, default_value = "12h", value_parser = parse_duration, value_name = "DURATION")]
    pub turn_ttl: Duration,

    /// Whether clients that ask learn who is online (all: a friends' server; none: nobody)
    #[arg(long, value_enum, default_value = "all")]
    pub presence: PresenceArg,

    /// Share presence, calls and rooms with the other servers on this Redis,
    /// e.g. redis://127.0.0.1:6379/0 (without it, everything stays in this process)
    #[arg(long, env = "RTC_CLI_REDIS", value_name = "URL", value_parser = parse_redis_url)]
    pub redis: Option<String>,
}

/// `serve --presence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresenceArg {
    /// Clients that subscribe see every online id and whether it is busy
    All,
    /// Nobody sees who is online
    None,
}

/// Subcommands of `serve`.
#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Print a login token for an id
    Token {
        /// Who the token logs in
        id: UserId,
        /// File holding the HS256 secret
        #[arg(long, value_name = "FILE")]
        token_secret_file: PathBuf,
        /// How long the token is valid
        #[arg(long, default_value = "30d", value_parser = parse_duration, value_name = "DURATION")]
        ttl: Duration,
    },
}

/// `rtc-cli login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Who to log in as
    pub id: UserId,
    /// Login token, for servers that run --auth token
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// `rtc-cli call` options.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Who to call
    pub peer: UserId,
    /// End a connected call by itself after this long (e.g. 10s, 1m)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub hangup_after: Option<Duration>,
    /// Sources, sinks, codecs and ICE.
    #[command(flatten)]
    pub media: MediaArgs,
}

/// `rtc-cli listen` options.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Answer incoming calls at once
    #[arg(long)]
    pub auto_accept: bool,
    /// End each connected call by itself after this long
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub hangup_after: Option<Duration>,
    /// Sources, sinks, codecs and ICE.
    #[command(flatten)]
    pub media: MediaArgs,
}

/// `rtc-cli room` options.
#[derive(Debug, Args)]
pub struct RoomArgs {
    /// The room: 1-64 of A-Z a-z 0-9 . _ -
    pub room: RoomId,
    /// Leave the room by itself this long after joining (e.g. 10s, 1m)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub hangup_after: Option<Duration>,
    /// Record each member's received video and audio to DIR/ID.y4m and DIR/ID.wav (ID: the member)
    #[arg(long, value_name = "DIR")]
    pub record_dir: Option<PathBuf>,
    /// Sources, sinks, codecs and ICE.
    #[command(flatten)]
    pub media: MediaArgs,
}

/// `rtc-cli who` options.
#[derive(Debug, Args)]
pub struct WhoArgs {
    /// One JSON array of {id, status}
    #[arg(long)]
    pub json: bool,
}

/// `rtc-cli history` options.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// One JSON array of calls
    #[arg(long)]
    pub json: bool,
    /// How many calls to show
    #[arg(short, default_value_t = 20, value_name = "N")]
    pub n: usize,
}

/// `rtc-cli devices` options.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// One JSON document with `cameras`, `inputs` and `outputs`
    #[arg(long)]
    pub json: bool,
}

/// Media options of `call` and `listen`. Unset values come from the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct MediaArgs {
    /// Video source: a camera index or name, `test`, `file:PATH.y4m`, `none` [default: auto]
    #[arg(long, value_name = "SOURCE")]
    pub camera: Option<VideoSourceSpec>,
    /// Audio source: a microphone index or name, `tone`, `tone:HZ`, `file:PATH.wav`, `none` [default: auto]
    #[arg(long, value_name = "SOURCE")]
    pub mic: Option<AudioSourceSpec>,
    /// Audio output: a speaker index or name, `file:PATH.wav`, `none` [default: auto]
    #[arg(long, value_name = "SINK")]
    pub speaker: Option<AudioSinkSpec>,
    /// Size of the video we send, WxH [default: 640x480]
    #[arg(long, value_parser = parse_size, value_name = "WxH")]
    pub video_size: Option<(u32, u32)>,
    /// Frame rate of the video we send [default: 30]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=60), value_name = "N")]
    pub fps: Option<u32>,
    /// Video bitrate target, kbit/s [default: 800]
    #[arg(long, value_parser = clap::value_parser!(u32).range(50..=20_000), value_name = "KBPS")]
    pub video_bitrate: Option<u32>,
    /// Opus bitrate, kbit/s [default: 32]
    #[arg(long, value_parser = clap::value_parser!(u32).range(6..=510), value_name = "KBPS")]
    pub audio_bitrate: Option<u32>,
    /// Acoustic echo cancellation of what the speaker plays [default: on when the
    /// microphone and the speaker are devices, else off]
    #[arg(long, value_enum, value_name = "on|off")]
    pub echo_cancellation: Option<Switch>,
    /// Noise suppression of the microphone [default: high with devices, else off]
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub noise_suppression: Option<NoiseSuppressionLevel>,
    /// Automatic gain control of the microphone [default: on with devices, else off]
    #[arg(long, value_enum, value_name = "on|off")]
    pub auto_gain: Option<Switch>,
    /// No ring tone for incoming calls and no ringback while an outgoing call rings
    /// (the terminal bell and notification still come)
    #[arg(long)]
    pub no_ring: bool,
    /// Write every decoded remote frame to this Y4M file
    #[arg(long, value_name = "PATH.y4m")]
    pub record_video: Option<PathBuf>,
    /// Write the received audio (48 kHz mono) to this WAV file
    #[arg(long, value_name = "PATH.wav")]
    pub record_audio: Option<PathBuf>,
    /// STUN or TURN server URL (repeatable), e.g. stun:stun.example.org:3478
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// Username for the --ice-server TURN servers
    #[arg(long, value_name = "NAME")]
    pub ice_username: Option<String>,
    /// Credential for the --ice-server TURN servers
    #[arg(long, value_name = "SECRET")]
    pub ice_credential: Option<String>,
    /// Which ICE candidates to use: `relay` sends everything through TURN, hiding our
    /// addresses from the peer [default: all]
    #[arg(long, value_enum, value_name = "POLICY")]
    pub ice_transport_policy: Option<IceTransportPolicy>,
    /// Local address to gather ICE candidates on (repeatable) [default: all interfaces]
    #[arg(long, value_name = "ADDR")]
    pub bind: Vec<IpAddr>,
    /// Most video frames per second the call screen draws [default: 30]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=120), value_name = "N")]
    pub max_draw_fps: Option<u32>,
    /// How the call screen draws video: half-blocks (2 pixels per cell, any font),
    /// quadrants (4), sextants (6), octants (8; need a font with Unicode 16 octants),
    /// kitty graphics or sixel (real pixels) [default: auto: asks the terminal, then
    /// kitty graphics, sixel or half-blocks]
    #[arg(long, value_enum, value_name = "MODE")]
    pub render: Option<crate::ui::video::RenderMode>,
    /// How long a call whose connection dropped keeps trying ICE restarts before it
    /// ends `ice-failed` [default: 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub reconnect_timeout: Option<Duration>,
    /// Where received files are saved [default: the XDG download dir, ~/Downloads]
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,
    /// Refuse received files larger than this many MiB [default: 2048]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_file_size: Option<u64>,
    /// Refuse every file a peer sends
    #[arg(long)]
    pub refuse_files: bool,
}

/// Parses durations like `1s`, `500ms`, `2m`, `30d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 10s, 2m, 30d)"))
}

/// Checks a `--stun` URL has the `stun:` or `stuns:` scheme and a host (RFC 7064).
pub fn parse_stun_url(s: &str) -> Result<String, String> {
    parse_ice_url(s, &["stun:", "stuns:"])
}

/// Checks a `--turn` URL has the `turn:` or `turns:` scheme and a host (RFC 7065).
pub fn parse_turn_url(s: &str) -> Result<String, String> {
    parse_ice_url(s, &["turn:", "turns:"])
}

fn parse_ice_url(s: &str, schemes: &[&str]) -> Result<String, String> {
    let rest = schemes
        .iter()
        .find_map(|scheme| s.strip_prefix(scheme))
        .ok_or_else(|| format!("{s:?} must start with {}", schemes.join(" or ")))?;
    if rest.is_empty() || rest.starts_with(':') {
        return Err(format!("{s:?} has no host"));
    }
    Ok(s.to_owned())
}

/// Parses a `WxH` size with both sides even and 16-4096.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WxH like 640x480, got {s:?}"))?;
    let side = |v: &str| -> Result<u32, String> {
        let n: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("{v:?} is not a number"))?;
        if !(16..=4096).contains(&n) || !n.is_multiple_of(2) {
            return Err(format!("{n} must be even and between 16 and 4096"));
        }
        Ok(n)
    };
    Ok((side(w)?, side(h)?))
}

/// The text after the port colon of a URI authority (`user@host:port`, `[::1]:port`),
/// if it has one.
fn port_text(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = host_port
        .rsplit_once(']')
        .map_or(host_port, |(_, rest)| rest);
    after_host.rsplit_once(':').map(|(_, port)| port)
}

/// Checks a `--redis` URL: `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`. The error
/// never repeats the URL (it may hold a password).
pub fn parse_redis_url(s: &str) -> Result<String, String> {
    if !s.starts_with("redis://") {
        return Err("a Redis URL must start with redis:// (redis://HOST:PORT[/DB])".into());
    }
    redis::Client::open(s).map_err(|e| format!("not a usable Redis URL ({:?})", e.kind()))?;
    Ok(s.to_owned())
}

/// Checks a signaling server URL is `ws://` or `wss://` with a host, and that it parses
/// as a URI (RFC 3986: e.g. `ws://[::1` is refused, where it would only fail when
/// connecting). An error here is a bad command line (exit 2).
pub fn parse_server_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("ws://")
        .or_else(|| s.strip_prefix("wss://"))
        .ok_or_else(|| format!("server URL must start with ws:// or wss://, got {s:?}"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') {
        return Err(format!("server URL {s:?} has no host"));
    }
    let uri: tokio_tungstenite::tungstenite::http::Uri = s
        .parse()
        .map_err(|e| format!("server URL {s:?} is not a valid URL: {e}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("server URL {s:?} has no host"));
    }
    if let Some(port) = uri.authority().and_then(|a| port_text(a.as_str()))
        && port.parse::<u16>().is_err()
    {
        return Err(format!("server URL {s:?} has a bad port {port:?}"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_urls_are_validated() {
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        assert!(parse_size("641x480").is_err());
        assert!(parse_size("640").is_err());
        assert!(parse_size("0x0").is_err());
        assert!(parse_server_url("ws://host:8787").is_ok());
        assert!(parse_server_url("wss://host").is_ok());
        assert!(parse_server_url("http://host").is_err());
        assert!(parse_server_url("ws://").is_err());
        assert!(parse_server_url("ws://[::1]:8787").is_ok());
        assert!(parse_server_url("ws://[::1").is_err());
        assert!(parse_server_url("ws://host:port").is_err());
        assert!(parse_server_url("ws://a b").is_err());
    }

    #[test]
    fn call_flags_parse() {
        let cli = Cli::try_parse_from([
            "rtc-cli",
            "--headless",
            "call",
            "jerry",
            "--hangup-after",
            "1s",
            "--camera",
            "test",
            "--mic",
            "file:a.wav",
            "--bind",
            "127.0.0.1",
        ])
        .unwrap();
        assert!(cli.global.headless);
        let Some(Command::Call(args)) = cli.command else {
            panic!("expected call")
        };
        assert_eq!(args.peer.as_str(), "jerry");
        assert_eq!(args.hangup_after, Some(Duration::from_secs(1)));
        assert_eq!(args.media.camera, Some(VideoSourceSpec::TestPattern));
        assert_eq!(args.media.bind, vec![IpAddr::from([127, 0, 0, 1])]);
        assert!(Cli::try_parse_from(["rtc-cli", "call", "bad id"]).is_err());
        assert!(Cli::try_parse_from(["rtc-cli", "serve", "--auth", "token"]).is_err());
    }
}
