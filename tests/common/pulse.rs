//! A user-level PulseAudio daemon for the tests that need real audio devices:
//! started once per test binary by scripts/pulse-up.sh (a null sink `rtc_null` as
//! default sink, its monitor as default source) and left running for the rest of the
//! run (scripts/pulse-down.sh stops it); and null sinks of a test's own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::process::assert_success;

/// What the tests run: the daemon, and the clients from pulseaudio-utils.
const TOOLS: [&str; 4] = ["pulseaudio", "pactl", "parec", "paplay"];

/// Whether `tool` is on the `PATH`.
fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts PulseAudio once for this test binary and returns its `PULSE_SERVER`;
/// `None` (with the reason printed) when PulseAudio or its tools are not installed.
/// A daemon that is installed but does not come up is a failure.
pub fn server() -> Option<&'static str> {
    static SERVER: OnceLock<Option<String>> = OnceLock::new();
    SERVER.get_or_init(start).as_deref()
}

fn start() -> Option<String> {
    let missing: Vec<&str> = TOOLS.into_iter().filter(|t| !installed(t)).collect();
    if !missing.is_empty() {
        eprintln!(
            "skipping: {missing:?} not installed \
             (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pulse-up.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/pulse-up.sh");
    assert_success("scripts/pulse-up.sh", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let server = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export PULSE_SERVER="))
        .expect("pulse-up.sh prints PULSE_SERVER")
        .to_owned();
    Some(server)
}

/// A null sink of one test's own, unloaded on drop: processes pointed at it with
/// [`NullSink::env`] hear nothing from other users of the shared daemon.
pub struct NullSink {
    /// Sink name; its monitor source is `<name>.monitor`.
    pub name: String,
    /// The module index `pactl load-module` printed.
    module: String,
    /// The daemon's address.
    server: String,
}

impl NullSink {
    /// Loads `rtc_test_<test>_<pid>` at 48 kHz into the daemon at `server`.
    pub fn load(server: &str, test: &str) -> Self {
        let name = format!("rtc_test_{test}_{}", std::process::id());
        let out = Command::new("pactl")
            .env("PULSE_SERVER", server)
            .args([
                "load-module",
                "module-null-sink",
                &format!("sink_name={name}"),
                "rate=48000",
                &format!("sink_properties=device.description={name}"),
            ])
            .output()
            .expect("run pactl");
        assert_success("loading a null sink", &out);
        Self {
            name,
            module: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            server: server.to_owned(),
        }
    }

    /// The sink's monitor source: what was played into the sink.
    pub fn monitor(&self) -> String {
        format!("{}.monitor", self.name)
    }

    /// The environment that makes a PulseAudio client (a tool, or `rtc-cli` through
    /// ALSA's pulse plugin) use this sink and its monitor as its defaults.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("PULSE_SERVER", self.server.clone()),
            ("PULSE_SINK", self.name.clone()),
            ("PULSE_SOURCE", self.monitor()),
        ]
    }

    /// A command for a PulseAudio tool with [`NullSink::env`] and stdin closed.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env()).stdin(Stdio::null());
        cmd
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        let _ = Command::new("pactl")
            .env("PULSE_SERVER", &self.server)
            .args(["unload-module", &self.module])
            .output();
    }
}
