//! The call screen end to end in a real terminal: `serve`, a headless
//! `listen --auto-accept` sending the test clip, and `call` drawing in a tmux pane,
//! all on 127.0.0.1. The pane is read with `capture-pane -e` (text plus SGR colors)
//! and driven with `send-keys`, as a person at the keyboard would.
//!
//! Skipped, with the reason printed, when tmux is not installed.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::media_check::{CLIP, SPEECH, colored_clip, file_source};
use common::process::{Home, LOOPBACK_ONLY, Proc, TONE_NO_SPEAKER, WAIT, sh_quote, test_pattern};

/// The pane's size in cells: a 200x58 video area above the notice, status and help lines.
const COLS: u16 = 200;
const ROWS: u16 = 60;

/// The upper half block the video is drawn with.
const HALF_BLOCK: char = '▀';

/// A tmux server on its own socket, killed on drop (with everything in its panes).
struct Tmux {
    /// The server's socket (`tmux -S`), inside the test's temp dir: no other test
    /// or user shares the server, and nothing is left behind in /tmp/tmux-UID.
    socket: PathBuf,
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]).output();
    }
}

impl Tmux {
    /// Whether a usable tmux is installed.
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|out| out.status.success())
    }

    /// A detached `COLS`x`ROWS` session `t` running a plain `sh`, its server on a
    /// socket in `dir`.
    fn start(dir: &Path) -> Self {
        let tmux = Self {
            socket: dir.join("tmux.sock"),
        };
        let (cols, rows) = (COLS.to_string(), ROWS.to_string());
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &cols,
            "-y",
            &rows,
            "sh",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        tmux
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        // No user config: the pane must look the same on every machine.
        command
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running tmux")
    }

    /// Types `text` into the pane, then Enter if `enter`.
    fn type_text(&self, text: &str, enter: bool) {
        let out = self.run(&["send-keys", "-t", "t", "-l", text]);
        assert!(out.status.success(), "tmux send-keys: {out:?}");
        if enter {
            self.run(&["send-keys", "-t", "t", "Enter"]);
        }
    }

    /// The pane's text with its colors as SGR sequences (`capture-pane -e`).
    fn capture(&self) -> String {
        let out = self.run(&["capture-pane", "-e", "-p", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A pane variable, e.g. `#{alternate_on}`.
    fn display(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", "t", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Polls `probe` every 100 ms for up to [`WAIT`]; panics with `what` and the pane.
fn wait_for<T>(tmux: &Tmux, what: &str, mut probe: impl FnMut(&Screen) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let screen = Screen::parse(&tmux.capture());
        if let Some(found) = probe(&screen) {
            return found;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: not seen within {WAIT:?}; the pane shows:\n{}",
                screen.text
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the pane to show `needle`; the screen that does.
fn wait_for_text(tmux: &Tmux, what: &str, needle: &str) -> Screen {
    wait_for(tmux, what, |screen| {
        screen.text.contains(needle).then(|| screen.clone())
    })
}

/// A captured pane: its plain text and what its SGR sequences say about colors.
#[derive(Clone)]
struct Screen {
    /// The text without escape sequences, one line per row.
    text: String,
    /// Distinct colors set by `38;2`/`48;2` (truecolor) or `38;5`/`48;5` (256-color)
    /// sequences, fore- and background alike.
    colors: HashSet<String>,
    /// Each half block's foreground color (its upper pixel) with its row and column.
    blocks: Vec<(usize, usize, String)>,
}

impl Screen {
    fn parse(captured: &str) -> Self {
        let mut text = String::with_capacity(captured.len());
        let mut colors = HashSet::new();
        let mut blocks = Vec::new();
        let mut fg: Option<String> = None;
        let (mut row, mut col) = (0, 0);
        let mut plain = |s: &str, fg: &Option<String>, text: &mut String| {
            for c in s.chars() {
                if c == '\n' {
                    (row, col) = (row + 1, 0);
                } else {
                    if let (HALF_BLOCK, Some(color)) = (c, fg) {
                        blocks.push((row, col, color.clone()));
                    }
                    col += 1;
                }
                text.push(c);
            }
        };
        let mut rest = captured;
        while let Some(start) = rest.find('\x1b') {
            plain(&rest[..start], &fg, &mut text);
            let sequence = &rest[start..];
            // CSI: ESC [ parameters final-byte; tmux -e only emits SGR (final `m`).
            let Some(end) = sequence.find(|c: char| c.is_ascii_alphabetic()) else {
                rest = "";
                break;
            };
            if sequence.as_bytes().get(1) == Some(&b'[') && sequence.as_bytes()[end] == b'm' {
                let params = &sequence[2..end];
                sgr_colors(params, &mut colors);
                fg = sgr_foreground(params, fg);
            }
            rest = &sequence[end + 1..];
        }
        plain(rest, &fg, &mut text);
        Self {
            text,
            colors,
            blocks,
        }
    }

    /// The most common half-block color in the cells of rows `rows` and columns
    /// `cols`, if any half block is there.
    fn dominant_color(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> Option<String> {
        let mut counts: std::collections::HashMap<&str, usize> = Default::default();
        for (r, c, color) in &self.blocks {
            if rows.contains(r) && cols.contains(c) {
                *counts.entry(color.as_str()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(color, _)| color.to_owned())
    }

    fn half_blocks(&self) -> usize {
        self.text.chars().filter(|&c| c == HALF_BLOCK).count()
    }

    /// The status bar: the second line from the bottom that has text.
    fn status_line(&self) -> &str {
        let lines: Vec<&str> = self.text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines.len().checked_sub(2).map_or("", |i| lines[i])
    }
}

/// Adds the colors of one SGR parameter list (`38;5;208;48;2;10;20;30`) to `colors`.
fn sgr_colors(params: &str, colors: &mut HashSet<String>) {
    let params: Vec<&str> = params.split(';').collect();
    let mut i = 0;
    while i < params.len() {
        match (params[i], params.get(i + 1).copied()) {
            ("38" | "48", Some("2")) if i + 4 < params.len() => {
                colors.insert(format!("rgb:{}", params[i + 2..i + 5].join(",")));
                i += 5;
            }
            ("38" | "48", Some("5")) if i + 2 < params.len() => {
                colors.insert(format!("256:{}", params[i + 2]));
                i += 3;
            }
            _ => i += 1,
        }
    }
}

/// The foreground color after the SGR parameter list `params`, from `current`: set by
/// `38;2;r;g;b` or `38;5;n`, cleared by a reset (`0` or empty) or `39`.
fn sgr_foreground(params: &str, current: Option<String>) -> Option<String> {
    let params: Vec<&str> = params.split(';').collect();
    let mut fg = current;
    let mut i = 0;
    while i < params.len() {
        match (params[i], params.get(i + 1).copied()) {
            ("38", Some("2")) if i + 4 < params.len() => {
                fg = Some(format!("rgb:{}", params[i + 2..i + 5].join(",")));
                i += 5;
            }
            ("38", Some("5")) if i + 2 < params.len() => {
                fg = Some(format!("256:{}", params[i + 2]));
                i += 3;
            }
            ("48", Some("2")) => i += 5,
            ("48", Some("5")) => i += 3,
            ("0" | "" | "39", _) => {
                fg = None;
                i += 1;
            }
            _ => i += 1,
        }
    }
    fg
}

/// Whether the status bar's state reads `connected HH:MM:SS`.
fn shows_connected_clock(status: &str) -> bool {
    status.split("connected ").nth(1).is_some_and(|after| {
        let clock: Vec<char> = after.chars().take(8).collect();
        clock.len() == 8
            && clock.iter().enumerate().all(|(i, c)| {
                if i % 3 == 2 {
                    *c == ':'
                } else {
                    c.is_ascii_digit()
                }
            })
    })
}

/// Waits up to [`WAIT`] for `path` to hold a complete (newline-ended) text; panics
/// with `what` and the pane otherwise.
fn wait_for_file(tmux: &Tmux, path: &Path, what: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.ends_with('\n') {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; the pane shows:\n{}",
            Screen::parse(&tmux.capture()).text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Types the shell line that runs the binary as `name` with `args` in the pane (in
/// `home`'s environment) and writes `EXIT=<code>` to `exit_file` when it ends.
fn run_in_pane(tmux: &Tmux, home: &Home, name: &str, args: &[&str], exit_file: &Path) {
    let exit_file = sh_quote(&exit_file.display().to_string());
    let line = format!(
        "{}; echo EXIT=$? > {exit_file}",
        home.shell_command(name, args)
    );
    tmux.type_text(&line, true);
}

/// jerry listening headless with `--auto-accept`, sending the clip at 320x240 and
/// `mic` as audio, on 127.0.0.1.
fn jerry_sending_the_clip(home: &Home, url: &str, mic: &str) -> Proc {
    let clip = file_source(CLIP);
    home.listener(
        url,
        "jerry",
        &[
            "--auto-accept",
            "--camera",
            &clip,
            "--video-size",
            "320x240",
            "--mic",
            mic,
            "--speaker",
            "none",
            "--bind",
            "127.0.0.1",
        ],
    )
}

/// Light loopback media for the side in the pane: a small test pattern, a tone.
fn pane_media() -> Vec<&'static str> {
    [
        test_pattern("320x240", "15").as_slice(),
        &TONE_NO_SPEAKER,
        &LOOPBACK_ONLY,
    ]
    .concat()
}

/// Skips the test (with the reason printed) where tmux is not installed.
macro_rules! require_tmux {
    () => {
        if !Tmux::available() {
            eprintln!("skipped: tmux is not installed (apt-get install tmux)");
            return;
        }
    };
}

#[test]
fn call_screen_shows_video_mutes_both_sides_hangs_up_and_restores_the_terminal() {
    require_tmux!();
    let home = Home::new();
    let (server, url) = home.serve(&[]);

    let jerry = jerry_sending_the_clip(&home, &url, &file_source(SPEECH));

    let tmux = Tmux::start(home.dir.path());
    let exit_file = home.path("exit");
    let mut args = vec!["--server", &url, "--id", "tom", "call", "jerry"];
    args.extend(pane_media());
    run_in_pane(&tmux, &home, "tom", &args, &exit_file);

    // Connected, with jerry's clip as half-blocks in many colors.
    let screen = wait_for(&tmux, "connected call with video", |screen| {
        (shows_connected_clock(screen.status_line())
            && screen.half_blocks() >= 1000
            && screen.colors.len() >= 50)
            .then(|| screen.clone())
    });
    assert!(
        screen.status_line().trim_start().starts_with("jerry"),
        "{}",
        screen.status_line()
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the call screen uses the alternate screen"
    );
    for stray in ["[OpenH264]", "ALSA lib", "WARN", "ERROR"] {
        assert!(
            !screen.text.contains(stray),
            "library output {stray:?} tore the view:\n{}",
            screen.text
        );
    }

    // `m` mutes: our status bar says so and jerry is told.
    tmux.type_text("m", false);
    wait_for(&tmux, "our mic shown muted", |screen| {
        screen
            .status_line()
            .contains("you: mic muted")
            .then_some(())
    });
    jerry.event_where("peer_media muted", |v| {
        v["event"] == "peer_media" && v["muted"] == true
    });

    // `h` hangs up; `call` exits 0 and says how the call ended.
    tmux.type_text("h", false);
    let exit = wait_for_file(&tmux, &exit_file, "call exiting after h");
    assert_eq!(exit.trim(), "EXIT=0");
    jerry.event(&[
        ("event", "state"),
        ("state", "ended"),
        ("reason", "remote-hangup"),
    ]);

    // The terminal is sane again: main screen, canonical input with echo.
    assert_eq!(tmux.display("#{alternate_on}"), "0");
    let after = Screen::parse(&tmux.capture());
    assert!(
        after.text.contains("Call with jerry ended after 00:00:"),
        "{}",
        after.text
    );
    let stty_file = home.path("stty");
    tmux.type_text(
        &format!("stty -a > {}", sh_quote(&stty_file.display().to_string())),
        true,
    );
    let stty = wait_for_file(&tmux, &stty_file, "stty -a in the pane");
    let flags: HashSet<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo"] {
        assert!(
            flags.contains(flag) && !flags.contains(format!("-{flag}").as_str()),
            "{flag} not restored:\n{stty}"
        );
    }
    drop(tmux);
    drop(jerry);
    drop(server);
}

/// Quadrant characters other than the half blocks (`▀▄▌▐`) and the full block: the
/// ones only the quadrant blitter draws.
const QUADRANT_ONLY: &str = "▘▝▖▗▚▞▛▜▙▟";

#[test]
fn render_quadrant_draws_the_video_in_quadrants_and_names_the_mode() {
    require_tmux!();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let _jerry = jerry_sending_the_clip(&home, &url, "tone");
    let tmux = Tmux::start(home.dir.path());
    let exit_file = home.path("exit");
    let mut args = vec!["--server", &url, "--id", "tom", "call", "jerry"];
    args.extend(pane_media());
    args.extend(["--render", "quadrant"]);
    run_in_pane(&tmux, &home, "tom", &args, &exit_file);
    let screen = wait_for(&tmux, "the clip in quadrants", |screen| {
        let quadrants = screen
            .text
            .chars()
            .filter(|c| QUADRANT_ONLY.contains(*c))
            .count();
        (shows_connected_clock(screen.status_line()) && quadrants >= 300).then(|| screen.clone())
    });
    assert!(
        screen.status_line().trim_end().ends_with("quadrants"),
        "{}",
        screen.status_line()
    );
    tmux.type_text("h", false);
    let exit = wait_for_file(&tmux, &exit_file, "call exiting after h");
    assert_eq!(exit.trim(), "EXIT=0");
}

/// A headless `call` from `caller` to `callee` (test pattern, tone, no speaker).
fn headless_call(home: &Home, url: &str, caller: &str, callee: &str, extra: &[&str]) -> Proc {
    home.caller(url, caller, callee, &[extra, &pane_media()].concat())
}

#[test]
fn listen_screen_prompts_for_incoming_calls_refuses_accepts_and_quits() {
    require_tmux!();
    let home = Home::new();
    let (server, url) = home.serve(&[]);

    let tmux = Tmux::start(home.dir.path());
    // What the program writes, before tmux interprets it; with passthrough on, the
    // desktop notification goes out wrapped for the outer terminal.
    let raw = home.path("pane.raw");
    let pipe = format!("cat >> {}", sh_quote(&raw.display().to_string()));
    assert!(
        tmux.run(&["set-option", "-g", "allow-passthrough", "on"])
            .status
            .success()
    );
    assert!(
        tmux.run(&["pipe-pane", "-t", "t", "-o", &pipe])
            .status
            .success()
    );
    let exit_file = home.path("exit");
    let mut args = vec!["--server", &url, "--id", "spike", "listen"];
    args.extend(pane_media());
    run_in_pane(&tmux, &home, "spike", &args, &exit_file);
    wait_for_text(
        &tmux,
        "the listening screen",
        &format!("Listening as spike on {url}"),
    );

    // `r` refuses: the caller ends with `refused` (exit code 3).
    let tyke = headless_call(&home, &url, "tyke", "spike", &[]);
    wait_for_text(
        &tmux,
        "the incoming-call prompt",
        "tyke is calling: [a] accept  [r] refuse",
    );
    let written = std::fs::read(&raw).unwrap_or_default();
    let written = String::from_utf8_lossy(&written);
    assert!(written.contains('\x07'), "the incoming call rings the bell");
    assert!(
        written.contains("\x1bPtmux;\x1b\x1b]777;notify;rtc-cli;tyke is calling"),
        "and notifies through tmux passthrough"
    );
    tmux.type_text("r", false);
    tyke.event(&[("event", "state"), ("reason", "refused")]);
    assert_eq!(tyke.wait_exit(), 3);
    wait_for_text(&tmux, "the refusal on screen", "you refused the call");

    // `a` accepts: connected with the caller's video, then back to listening.
    let tuffy = headless_call(&home, &url, "tuffy", "spike", &["--hangup-after", "2s"]);
    let prompt = wait_for_text(&tmux, "the second incoming-call prompt", "tuffy is calling");
    assert!(
        !prompt.text.contains("you refused"),
        "a new call clears the last one's notice:\n{}",
        prompt.text
    );
    tmux.type_text("a", false);
    wait_for(&tmux, "the accepted call with video", |screen| {
        (shows_connected_clock(screen.status_line()) && screen.colors.len() >= 8).then_some(())
    });
    assert_eq!(tuffy.wait_exit(), 0);
    let after = wait_for_text(&tmux, "the listening screen again", "Listening as spike");
    assert!(
        after.text.contains("Call ended: tuffy hung up"),
        "the reason outlives the call screen:\n{}",
        after.text
    );

    // `q` quits listening with exit code 0 and the terminal restored.
    tmux.type_text("q", false);
    let exit = wait_for_file(&tmux, &exit_file, "listen exiting after q");
    assert_eq!(exit.trim(), "EXIT=0");
    assert_eq!(tmux.display("#{alternate_on}"), "0");
    drop(tmux);
    drop(server);
}

#[test]
fn sgr_parsing_counts_distinct_colors_of_both_kinds() {
    let screen = Screen::parse(
        "\x1b[38;5;16m\x1b[48;5;16m▀▀\x1b[38;2;1;2;3;48;5;17m▀\x1b[0m text\n\x1b[48;2;1;2;3m▀",
    );
    assert_eq!(screen.half_blocks(), 4);
    assert_eq!(screen.colors.len(), 3, "{:?}", screen.colors);
    assert_eq!(screen.text, "▀▀▀ text\n▀");
    assert!(shows_connected_clock(" jerry │ connected 00:01:05 │ you"));
    assert!(!shows_connected_clock(" jerry │ connecting │ you"));
}

/// A headless member of room `standup` sending a generated clip of the Y'CbCr color
/// `yuv` (written into `home`), returned once it joined.
fn colored_member(home: &Home, url: &str, id: &str, yuv: (u8, u8, u8)) -> Proc {
    let source = home.path(&format!("{id}.y4m"));
    colored_clip(&source, yuv);
    let camera = format!("file:{}", source.display());
    let mut args = vec!["--headless", "--server", url, "--id", id, "room", "standup"];
    args.extend(["--camera", &camera, "--video-size", "160x120"]);
    args.extend(TONE_NO_SPEAKER);
    args.extend(LOOPBACK_ONLY);
    let member = home.spawn(id, &args);
    member.event(&[("event", "room_joined")]);
    member
}

#[test]
fn room_screen_shows_a_named_tile_per_member_in_a_2x2_grid_and_leaves_with_h() {
    require_tmux!();
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (server, url) = home.serve(&[]);
    // BT.601 blue, green and red fields; our own camera is yellow.
    let members = [
        colored_member(&home, &url, "ann", (41, 240, 110)),
        colored_member(&home, &url, "bob", (145, 54, 34)),
        colored_member(&home, &url, "cat", (81, 90, 240)),
    ];
    let own = home.path("own.y4m");
    colored_clip(&own, (210, 16, 146));
    let camera = format!("file:{}", own.display());

    let tmux = Tmux::start(home.dir.path());
    let exit_file = home.path("exit");
    let mut args = vec!["--server", &url, "--id", "tom", "room", "standup"];
    args.extend(["--camera", &camera, "--video-size", "160x120"]);
    args.extend(TONE_NO_SPEAKER);
    args.extend(LOOPBACK_ONLY);
    run_in_pane(&tmux, &home, "tom", &args, &exit_file);

    // The three others connected, each in a tile named in its border, and our
    // self-view in the fourth cell: four quarters of four different colors.
    let (rows, cols) = (usize::from(ROWS) - 3, usize::from(COLS));
    let quarters = [
        (0..rows / 2, 0..cols / 2),
        (0..rows / 2, cols / 2..cols),
        (rows / 2..rows, 0..cols / 2),
        (rows / 2..rows, cols / 2..cols),
    ];
    let screen = wait_for(&tmux, "three tiles and the self-view in color", |screen| {
        let colors: HashSet<String> = quarters
            .iter()
            .filter_map(|(r, c)| screen.dominant_color(r.clone(), c.clone()))
            .collect();
        (screen.status_line().contains("3 of 3 connected") && colors.len() == 4)
            .then(|| screen.clone())
    });
    for name in [" ann ", " bob ", " cat "] {
        assert!(
            screen.text.contains(name),
            "no tile named {name}:\n{}",
            screen.text
        );
    }
    assert!(
        screen.status_line().contains("room standup"),
        "{}",
        screen.status_line()
    );

    // `h` leaves the room: the others see tom go; the process exits 0.
    tmux.type_text("h", false);
    let exit = wait_for_file(&tmux, &exit_file, "room exiting after h");
    assert_eq!(exit.trim(), "EXIT=0");
    for member in &members {
        member.event(&[("event", "member_left"), ("id", "tom")]);
    }
    assert_eq!(tmux.display("#{alternate_on}"), "0");
    drop(tmux);
    drop(members);
    drop(server);
}

/// jerry as a headless `listen --auto-accept`, and tom running `command` (`call jerry`,
/// `listen`) in a fresh tmux pane, both with [`pane_media`]; the pane writes tom's exit
/// code to the returned file.
fn tom_in_pane_with_jerry(home: &Home, url: &str, command: &[&str]) -> (Proc, Tmux, PathBuf) {
    let mut listen = vec!["--auto-accept"];
    listen.extend(pane_media());
    let jerry = home.listener(url, "jerry", &listen);
    let tmux = Tmux::start(home.dir.path());
    let exit_file = home.path("exit");
    let mut args = vec!["--server", url, "--id", "tom"];
    args.extend(command);
    args.extend(pane_media());
    run_in_pane(&tmux, home, "tom", &args, &exit_file);
    (jerry, tmux, exit_file)
}

#[test]
fn chat_in_the_call_screen_shows_hostile_text_inert_and_sends_what_is_typed() {
    require_tmux!();
    let home = Home::new();
    let (server, url) = home.serve(&[]);
    let (mut jerry, tmux, exit_file) = tom_in_pane_with_jerry(&home, &url, &["call", "jerry"]);
    jerry.event(&[("event", "state"), ("state", "connected")]);
    let title_before = tmux.display("#{pane_title}");

    // A message that would retitle the window and clear the screen if written raw.
    let hostile = "look \u{1b}]2;owned\u{7}\u{1b}[2Jhere";
    // The chat channel opens a moment after the call connects: until then `say` is
    // refused with an error event; try again.
    for attempt in 0.. {
        assert!(attempt < 40, "the chat channel never opened");
        jerry.send(&format!("say {hostile}"));
        let answer = jerry.event_where("chat or error", |v| {
            v["event"] == "error" || (v["event"] == "chat" && v["from"] == "jerry")
        });
        if answer["event"] == "chat" {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_for(&tmux, "the unread marker", |screen| {
        screen.status_line().contains("1 unread [c]").then_some(())
    });
    tmux.type_text("c", false);
    let screen = wait_for_text(&tmux, "the message in the chat pane", "jerry: look");
    assert!(
        screen
            .text
            .contains("look \u{FFFD}]2;owned\u{FFFD}\u{FFFD}[2Jhere"),
        "control characters replaced:\n{}",
        screen.text
    );
    assert_eq!(
        tmux.display("#{pane_title}"),
        title_before,
        "the chat retitled the terminal"
    );

    // t, text, Enter: jerry receives it.
    tmux.type_text("t", false);
    wait_for_text(&tmux, "the input line", "say:");
    tmux.type_text("hello jerry", false);
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    let said = jerry.event(&[("event", "chat"), ("from", "tom")]);
    assert_eq!(said["text"], "hello jerry");
    wait_for_text(&tmux, "our message in the pane", "tom: hello jerry");

    tmux.type_text("h", false);
    let exit = wait_for_file(&tmux, &exit_file, "call exiting after h");
    assert_eq!(exit.trim(), "EXIT=0");
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
    drop(tmux);
    drop(server);
}

#[test]
fn the_listen_screen_dials_with_c_and_listens_again_after_the_call() {
    require_tmux!();
    let home = Home::new();
    let (server, url) = home.serve(&[]);
    let (mut jerry, tmux, exit_file) = tom_in_pane_with_jerry(&home, &url, &["listen"]);
    let idle = wait_for_text(&tmux, "the listening screen", "[c] call someone");
    assert!(idle.text.contains("no calls yet"), "{}", idle.text);
    // While idle, the camera preview shows in the self-view corner.
    wait_for(&tmux, "the camera preview", |screen| {
        (screen.half_blocks() > 50 && screen.colors.len() >= 8).then_some(())
    });
    // jerry is online; Tab completes the id from the online list.
    wait_for_text(&tmux, "jerry in the online list", "● jerry");
    tmux.type_text("c", false);
    wait_for_text(&tmux, "the call prompt", "call:");
    tmux.type_text("je", false);
    tmux.run(&["send-keys", "-t", "t", "Tab"]);
    wait_for_text(&tmux, "the completed id", "call: jerry");
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    jerry.event(&[("event", "state"), ("state", "connected")]);
    wait_for(&tmux, "a connected call in the pane", |screen| {
        shows_connected_clock(screen.status_line()).then_some(())
    });
    tmux.type_text("h", false);
    jerry.event(&[("event", "state"), ("state", "ended")]);
    let again = wait_for_text(&tmux, "the call in the recent calls", "↗ jerry 00:00:");
    assert!(
        again.text.contains("[c] call someone"),
        "listening again:\n{}",
        again.text
    );
    assert!(again.text.contains("you hung up"), "{}", again.text);
    tmux.type_text("q", false);
    let exit = wait_for_file(&tmux, &exit_file, "listen exiting after q");
    assert_eq!(exit.trim(), "EXIT=0");
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
    drop(tmux);
    drop(server);
}
