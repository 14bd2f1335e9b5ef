//! The profile and settings file: TOML at `~/.config/rtc-cli/config.toml` (XDG),
//! written atomically with mode 0600 because it holds the login token.
//!
//! Precedence for every setting: flag > environment > this file > default. clap
//! handles flag > environment; [`Settings::resolve`] applies the file and defaults.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::call::peer::IceTransportPolicy;
use crate::cli::{GlobalArgs, MediaArgs};
use crate::media::audio::processing::{NoiseSuppressionLevel, ProcessingSettings, Switch};
use crate::media::spec::{AudioSinkSpec, AudioSourceSpec, VideoSourceSpec};
use crate::signaling::protocol::UserId;

/// The server used when neither flag, environment nor file names one.
pub const DEFAULT_SERVER: &str = "ws://127.0.0.1:8787";

/// A STUN or TURN server of `[[ice_servers]]`: the same shape as the servers `serve`
/// hands out in `login_ok`.
pub use crate::signaling::protocol::IceServer as IceServerConfig;

/// The `[media]` table: defaults for `call` and `listen`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaFile {
    /// Default `--camera`.
    pub camera: Option<VideoSourceSpec>,
    /// Default `--mic`.
    pub mic: Option<AudioSourceSpec>,
    /// Default `--speaker`.
    pub speaker: Option<AudioSinkSpec>,
    /// Default `--video-size`, e.g. "640x480".
    pub video_size: Option<String>,
    /// Default `--fps`.
    pub fps: Option<u32>,
    /// Default `--video-bitrate`, kbit/s.
    pub video_bitrate_kbps: Option<u32>,
    /// Default `--audio-bitrate`, kbit/s.
    pub audio_bitrate_kbps: Option<u32>,
    /// Default `--max-draw-fps`.
    pub max_draw_fps: Option<u32>,
    /// Default `--render`: "auto", "halfblock", "quadrant", "sextant", "octant",
    /// "kitty" or "sixel".
    pub render: Option<crate::ui::video::RenderMode>,
    /// Default `--reconnect-timeout`, e.g. "30s".
    pub reconnect_timeout: Option<String>,
    /// Default `--ice-transport-policy`: "all" or "relay".
    pub ice_transport_policy: Option<IceTransportPolicy>,
    /// `false` is `--no-ring`.
    pub ring: Option<bool>,
    /// Default `--echo-cancellation`: "on" or "off".
    pub echo_cancellation: Option<Switch>,
    /// Default `--noise-suppression`: "off", "low", "moderate", "high", "very-high".
    pub noise_suppression: Option<NoiseSuppressionLevel>,
    /// Default `--auto-gain`: "on" or "off".
    pub auto_gain: Option<Switch>,
}

/// The config file's contents. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Saved by `login`: the server URL.
    pub server: Option<String>,
    /// Saved by `login`: further servers sharing state with `server` (`serve --redis`),
    /// tried in turn when the connection is lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Saved by `login`: our id.
    pub id: Option<UserId>,
    /// Saved by `login`: the token, for servers that run `--auth token`.
    pub token: Option<String>,
    /// Default `--ca-file`: a PEM private CA trusted for `wss://` besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// Media defaults.
    #[serde(default, skip_serializing_if = "is_default")]
    pub media: MediaFile,
    /// STUN/TURN servers, added to any `--ice-server`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServerConfig>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The default config path: `$XDG_CONFIG_HOME/rtc-cli/config.toml`.
///
/// # Errors
/// No home directory can be found.
pub fn default_config_path() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "rtc-cli")
        .context("cannot find a home directory for the config file; pass --config FILE")?;
    Ok(dirs.config_dir().join("config.toml"))
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty config.
    ///
    /// # Errors
    /// The file exists but cannot be read or is not valid TOML of this shape
    /// (the message names the file and the offending key).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))
    }

    /// Writes the config atomically (temp file + rename) with mode 0600, creating
    /// the directory (mode 0700) if needed.
    ///
    /// # Errors
    /// The directory or file cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let text = toml::to_string_pretty(self).context("cannot serialize the config")?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("config"),
            std::process::id()
        ));
        let result = write_private(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, path).map_err(anyhow::Error::from));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.with_context(|| format!("cannot write {}", path.display()))
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Settings of a client command after flag > env > file > default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Path of the config file in use.
    pub config_path: PathBuf,
    /// The file's contents (for `login` to update).
    pub file: ConfigFile,
    /// Server URLs (at least one): the first is tried first, the others in turn when
    /// a connection is lost.
    pub servers: Vec<String>,
    /// Our id, if known.
    pub id: Option<UserId>,
    /// Login token, if any.
    pub token: Option<String>,
    /// `--ca-file` or the file's `ca_file`: a private CA for `wss://`.
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    /// Loads the config file named by `--config`/`RTC_CLI_CONFIG` (or the default
    /// path) and resolves server and id.
    ///
    /// # Errors
    /// The config file is unreadable or invalid, or its `server` is not a ws(s) URL.
    pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Self> {
        let config_path = match &global.config {
            Some(p) => p.clone(),
            None => default_config_path()?,
        };
        let file = ConfigFile::load(&config_path)?;
        let servers = if global.server.is_empty() {
            let saved: Vec<String> = file.server.iter().chain(&file.servers).cloned().collect();
            saved
                .iter()
                .map(|s| crate::cli::parse_server_url(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("{e} (in {})", config_path.display()))?
        } else {
            global.server.clone()
        };
        let servers = if servers.is_empty() {
            vec![DEFAULT_SERVER.to_owned()]
        } else {
            servers
        };
        Ok(Self {
            servers,
            id: global.id.clone().or_else(|| file.id.clone()),
            token: file.token.clone(),
            ca_file: global.ca_file.clone().or_else(|| file.ca_file.clone()),
            config_path,
            file,
        })
    }

    /// The first server, the one named in messages.
    pub fn server(&self) -> &str {
        &self.servers[0]
    }

    /// The TLS roots for `wss://`: `None` (the public roots) without a CA file.
    ///
    /// # Errors
    /// The CA file cannot be read or holds no valid certificate.
    pub fn client_tls(&self) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
        self.ca_file
            .as_deref()
            .map(|path| crate::signaling::tls::client_config(Some(path)))
            .transpose()
    }

    /// Our id, or an error telling how to set one.
    ///
    /// # Errors
    /// No id in flags, environment or profile.
    pub fn require_id(&self) -> anyhow::Result<UserId> {
        match &self.id {
            Some(id) => Ok(id.clone()),
            None => bail!(
                "who are you? run `rtc-cli login <id>` first, or pass --id ID (or set RTC_CLI_ID)"
            ),
        }
    }
}

/// Media settings of `call`/`listen` after flag > file > default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    /// Where outgoing video comes from (`--camera`).
    pub camera: VideoSourceSpec,
    /// Where outgoing audio comes from (`--mic`).
    pub mic: AudioSourceSpec,
    /// Where incoming audio goes (`--speaker`).
    pub speaker: AudioSinkSpec,
    /// Send size in pixels (width, height).
    pub video_size: (u32, u32),
    /// Send frame rate.
    pub fps: u32,
    /// H.264 target bitrate, kbit/s.
    pub video_bitrate_kbps: u32,
    /// Opus bitrate, kbit/s.
    pub audio_bitrate_kbps: u32,
    /// `--record-video`: every decoded remote frame, as Y4M.
    pub record_video: Option<PathBuf>,
    /// `--record-audio`: the received audio, 48 kHz mono WAV.
    pub record_audio: Option<PathBuf>,
    /// `--ice-server` URLs (with `--ice-username`/`--ice-credential`) then the file's.
    pub ice_servers: Vec<IceServerConfig>,
    /// Addresses to gather candidates on; empty = all interfaces.
    pub bind: Vec<std::net::IpAddr>,
    /// Which candidates ICE may use (`--ice-transport-policy`, `all`).
    pub ice_transport_policy: IceTransportPolicy,
    /// Most frames per second the call screen draws.
    pub max_draw_fps: u32,
    /// How the call screen draws video (`--render`, `auto`).
    pub render: crate::ui::video::RenderMode,
    /// How long a dropped connection is given to come back through ICE restarts
    /// (`--reconnect-timeout`, 30 s).
    pub reconnect_timeout: std::time::Duration,
    /// What to do with files a peer sends (`--download-dir`, `--max-file-size`,
    /// `--refuse-files`).
    pub files: crate::call::peer::files::FilePolicy,
    /// Play the ring and ringback tones on the speaker (`--no-ring` turns them off).
    pub ring: bool,
    /// Echo cancellation, noise suppression and gain control of the microphone.
    pub processing: ProcessingSettings,
}

/// The receive policy of file transfers from the flags, defaults where they are silent.
fn file_policy(args: &MediaArgs) -> crate::call::peer::files::FilePolicy {
    use crate::call::peer::files::FilePolicy;
    let default = FilePolicy::default();
    FilePolicy {
        download_dir: args.download_dir.clone().unwrap_or(default.download_dir),
        max_bytes: args
            .max_file_size
            .map_or(default.max_bytes, |mib| mib.saturating_mul(1 << 20)),
        refuse_all: args.refuse_files,
    }
}

/// The microphone processing from the flags over the file, defaults where both are
/// silent: everything on ([`ProcessingSettings::ALL_ON`]) when the microphone and the
/// speaker are devices (`auto` or named), everything off when either is a file, a tone
/// or none, so synthetic media stays bit-exact.
fn processing(args: &MediaArgs, m: &MediaFile) -> ProcessingSettings {
    let mic = args.mic.as_ref().or(m.mic.as_ref());
    let speaker = args.speaker.as_ref().or(m.speaker.as_ref());
    let devices = matches!(
        mic,
        None | Some(AudioSourceSpec::Auto | AudioSourceSpec::Device(_))
    ) && matches!(
        speaker,
        None | Some(AudioSinkSpec::Auto | AudioSinkSpec::Device(_))
    );
    let default = if devices {
        ProcessingSettings::ALL_ON
    } else {
        ProcessingSettings::ALL_OFF
    };
    let switch = |flag: Option<Switch>, file: Option<Switch>, default: bool| {
        flag.or(file).map_or(default, Switch::is_on)
    };
    ProcessingSettings {
        echo_cancellation: switch(
            args.echo_cancellation,
            m.echo_cancellation,
            default.echo_cancellation,
        ),
        noise_suppression: args
            .noise_suppression
            .or(m.noise_suppression)
            .unwrap_or(default.noise_suppression),
        auto_gain: switch(args.auto_gain, m.auto_gain, default.auto_gain),
    }
}

/// [`MediaSettings::reconnect_timeout`] when nothing sets it.
pub const DEFAULT_RECONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl MediaSettings {
    /// Merges command-line media flags over the config file's `[media]` and ICE servers.
    ///
    /// # Errors
    /// A bad `video_size` in the file.
    pub fn resolve(args: &MediaArgs, file: &ConfigFile) -> anyhow::Result<Self> {
        let m = &file.media;
        let video_size = match (args.video_size, &m.video_size) {
            (Some(size), _) => size,
            (None, Some(s)) => crate::cli::parse_size(s)
                .map_err(|e| anyhow::anyhow!("config [media] video_size: {e}"))?,
            (None, None) => (640, 480),
        };
        let reconnect_timeout = match (args.reconnect_timeout, &m.reconnect_timeout) {
            (Some(t), _) => t,
            (None, Some(s)) => crate::cli::parse_duration(s)
                .map_err(|e| anyhow::anyhow!("config [media] reconnect_timeout: {e}"))?,
            (None, None) => DEFAULT_RECONNECT_TIMEOUT,
        };
        let mut ice_servers = Vec::new();
        if !args.ice_servers.is_empty() {
            ice_servers.push(IceServerConfig {
                urls: args.ice_servers.clone(),
                username: args.ice_username.clone(),
                credential: args.ice_credential.clone(),
            });
        }
        ice_servers.extend(file.ice_servers.iter().cloned());
        Ok(Self {
            camera: args
                .camera
                .clone()
                .or_else(|| m.camera.clone())
                .unwrap_or_default(),
            mic: args
                .mic
                .clone()
                .or_else(|| m.mic.clone())
                .unwrap_or_default(),
            speaker: args
                .speaker
                .clone()
                .or_else(|| m.speaker.clone())
                .unwrap_or_default(),
            video_size,
            fps: args.fps.or(m.fps).unwrap_or(30),
            video_bitrate_kbps: args.video_bitrate.or(m.video_bitrate_kbps).unwrap_or(800),
            audio_bitrate_kbps: args.audio_bitrate.or(m.audio_bitrate_kbps).unwrap_or(32),
            record_video: args.record_video.clone(),
            record_audio: args.record_audio.clone(),
            ice_servers,
            bind: args.bind.clone(),
            ice_transport_policy: args
                .ice_transport_policy
                .or(m.ice_transport_policy)
                .unwrap_or_default(),
            max_draw_fps: args.max_draw_fps.or(m.max_draw_fps).unwrap_or(30),
            render: args.render.or(m.render).unwrap_or_default(),
            reconnect_timeout,
            files: file_policy(args),
            ring: !args.no_ring && m.ring.unwrap_or(true),
            processing: processing(args, m),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn global(config: &Path) -> GlobalArgs {
        GlobalArgs {
            server: vec![],
            id: None,
            config: Some(config.to_owned()),
            headless: true,
            verbose: 0,
            log_file: None,
            ca_file: None,
        }
    }

    #[test]
    fn save_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let cfg = ConfigFile {
            server: Some("ws://example:1".into()),
            servers: vec!["ws://example:2".into()],
            id: Some(UserId::parse("tom").unwrap()),
            token: Some("t0k".into()),
            ..Default::default()
        };
        cfg.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ConfigFile::load(&path).unwrap(), cfg);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut g = global(&path);
        assert_eq!(Settings::resolve(&g).unwrap().servers, [DEFAULT_SERVER]);
        std::fs::write(
            &path,
            "server = \"ws://file:1\"\nid = \"jerry\"\n[media]\nfps = 15\n",
        )
        .unwrap();
        let s = Settings::resolve(&g).unwrap();
        assert_eq!(s.servers, ["ws://file:1"]);
        assert_eq!(s.id.as_ref().map(UserId::as_str), Some("jerry"));
        g.server = vec!["ws://flag:2".into()];
        g.id = Some(UserId::parse("tom").unwrap());
        let s = Settings::resolve(&g).unwrap();
        assert_eq!(s.servers, ["ws://flag:2"]);
        assert_eq!(s.require_id().unwrap().as_str(), "tom");
        let media = MediaSettings::resolve(&MediaArgs::default(), &s.file).unwrap();
        assert_eq!(media.fps, 15);
        assert_eq!(media.video_size, (640, 480));
        let args = MediaArgs {
            fps: Some(25),
            ..Default::default()
        };
        assert_eq!(MediaSettings::resolve(&args, &s.file).unwrap().fps, 25);
    }

    #[test]
    fn ice_transport_policy_flag_beats_the_file_which_beats_all() {
        let file: ConfigFile =
            toml::from_str("[media]\nice_transport_policy = \"relay\"\n").unwrap();
        let from_file = MediaSettings::resolve(&MediaArgs::default(), &file).unwrap();
        assert_eq!(from_file.ice_transport_policy, IceTransportPolicy::Relay);
        let flag = MediaArgs {
            ice_transport_policy: Some(IceTransportPolicy::All),
            ..Default::default()
        };
        let from_flag = MediaSettings::resolve(&flag, &file).unwrap();
        assert_eq!(from_flag.ice_transport_policy, IceTransportPolicy::All);
        let none = MediaSettings::resolve(&MediaArgs::default(), &ConfigFile::default()).unwrap();
        assert_eq!(none.ice_transport_policy, IceTransportPolicy::All);
        assert!(
            toml::from_str::<ConfigFile>("[media]\nice_transport_policy = \"host\"\n").is_err()
        );
    }

    #[test]
    fn ice_servers_from_flags_come_before_the_files() {
        let file: ConfigFile = toml::from_str(
            "[[ice_servers]]\nurls = [\"turn:turn.example.org:3478\"]\nusername = \"u\"\ncredential = \"p\"\n",
        )
        .unwrap();
        let args = MediaArgs {
            ice_servers: vec!["stun:stun.example.org:3478".into()],
            ..Default::default()
        };
        let media = MediaSettings::resolve(&args, &file).unwrap();
        assert_eq!(media.ice_servers.len(), 2);
        assert_eq!(media.ice_servers[0].urls, ["stun:stun.example.org:3478"]);
        assert_eq!(media.ice_servers[1].username.as_deref(), Some("u"));
        let none = MediaSettings::resolve(&MediaArgs::default(), &ConfigFile::default()).unwrap();
        assert!(none.ice_servers.is_empty());
    }

    #[test]
    fn processing_is_on_with_devices_off_with_synthetic_media_and_flags_win() {
        let resolve = |args: &MediaArgs, file: &ConfigFile| {
            MediaSettings::resolve(args, file).unwrap().processing
        };
        let none = ConfigFile::default();
        assert_eq!(
            resolve(&MediaArgs::default(), &none),
            ProcessingSettings::ALL_ON
        );
        let tone = MediaArgs {
            mic: Some(AudioSourceSpec::Tone { hz: 440 }),
            ..Default::default()
        };
        assert_eq!(resolve(&tone, &none), ProcessingSettings::ALL_OFF);
        let file: ConfigFile =
            toml::from_str("[media]\nspeaker = \"none\"\nnoise_suppression = \"very-high\"\n")
                .unwrap();
        let from_file = resolve(&MediaArgs::default(), &file);
        assert_eq!(from_file.noise_suppression, NoiseSuppressionLevel::VeryHigh);
        assert!(
            !from_file.echo_cancellation,
            "a speaker of none: no echo to cancel"
        );
        let flags = MediaArgs {
            echo_cancellation: Some(Switch::On),
            noise_suppression: Some(NoiseSuppressionLevel::Off),
            ..Default::default()
        };
        let flagged = resolve(&flags, &file);
        assert!(flagged.echo_cancellation);
        assert_eq!(flagged.noise_suppression, NoiseSuppressionLevel::Off);
        assert!(!flagged.auto_gain);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "colour = 1\n").unwrap();
        let err = format!("{:#}", Settings::resolve(&global(&path)).unwrap_err());
        assert!(
            err.contains("config.toml") && err.contains("colour"),
            "{err}"
        );
        std::fs::write(&path, "server = \"http://x\"\n").unwrap();
        let err = format!("{:#}", Settings::resolve(&global(&path)).unwrap_err());
        assert!(err.contains("ws://"), "{err}");
    }
}
