//! File transfer over DataChannels (issue 13), on 127.0.0.1: a 5 MB file between two
//! rtc-cli processes and between rtc-cli and the web client in headless Chromium, both
//! ways, each checked by SHA-256; a hostile file name lands inside the download
//! directory; a receiver that takes no files refuses.

mod common;

use std::path::{Path, PathBuf};

use common::chromium::{WAIT, open_web_client};
use common::process::{Home, Proc, TONE_NO_SPEAKER, test_pattern};

/// The test file's size: 5 MB.
const FILE_BYTES: usize = 5 * 1024 * 1024;

/// Writes `FILE_BYTES` of pseudo-random bytes (xorshift: incompressible, repeatable)
/// and returns the path and its SHA-256.
fn random_file(home: &Home, name: &str) -> (PathBuf, String) {
    let path = home.path(name);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..FILE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    (path, sha256_hex(&bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Light media on loopback, received files to `downloads`.
fn args_with_downloads(downloads: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = test_pattern("160x120", "15")
        .iter()
        .chain(&TONE_NO_SPEAKER)
        .chain(&["--bind", "127.0.0.1", "--download-dir"])
        .map(|s| (*s).to_owned())
        .collect();
    args.push(downloads.display().to_string());
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// A headless listener with `args`, logged in.
fn listener(home: &Home, url: &str, id: &str, args: &[String]) -> Proc {
    let mut listen = vec!["--auto-accept"];
    listen.extend(args.iter().map(String::as_str));
    home.listener(url, id, &listen)
}

#[test]
fn a_5_mb_file_crosses_between_two_rtc_cli_with_its_sha256() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let downloads = home.path("jerry-downloads");
    let mut jerry = listener(&home, &url, "jerry", &args_with_downloads(&downloads, &[]));
    let tom_args = args_with_downloads(&home.path("tom-downloads"), &[]);
    let tom_args: Vec<&str> = tom_args.iter().map(String::as_str).collect();
    let mut tom = home.caller(&url, "tom", "jerry", &tom_args);
    tom.event(&[("event", "state"), ("state", "connected")]);
    let (path, sha256) = random_file(&home, "report.bin");
    tom.send(&format!("send-file {}", path.display()));
    let sent = tom.event(&[("event", "file_done"), ("direction", "out")]);
    assert_eq!(sent["sha256"], sha256.as_str());
    assert_eq!(sent["size"], FILE_BYTES);
    let got = jerry.event(&[("event", "file_done"), ("direction", "in")]);
    assert_eq!(got["sha256"], sha256.as_str());
    assert_eq!(got["name"], "report.bin");
    let saved = PathBuf::from(got["path"].as_str().unwrap());
    assert_eq!(saved, downloads.join("report.bin"));
    assert_eq!(sha256_hex(&std::fs::read(&saved).unwrap()), sha256);
    let progress = jerry.all_seen(&[("event", "file_progress"), ("direction", "in")]);
    assert!(!progress.is_empty(), "progress is reported");
    // Nothing else (no temporary file) is left in the download dir.
    let entries: Vec<_> = std::fs::read_dir(&downloads).unwrap().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    // A missing file is a clear error, and the call goes on.
    tom.send("send-file /nonexistent/file.bin");
    let err = tom.event(&[("event", "error")]);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/file.bin"),
        "{err}"
    );
    tom.send("hangup");
    assert_eq!(tom.wait_exit(), 0);
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
}

#[test]
fn a_receiver_that_takes_no_files_refuses_and_the_sender_is_told() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    let downloads = home.path("jerry-downloads");
    let jerry_args = args_with_downloads(&downloads, &["--refuse-files"]);
    let mut jerry = listener(&home, &url, "jerry", &jerry_args);
    let tom_args = args_with_downloads(&home.path("tom-downloads"), &[]);
    let tom_args: Vec<&str> = tom_args.iter().map(String::as_str).collect();
    let mut tom = home.caller(&url, "tom", "jerry", &tom_args);
    tom.event(&[("event", "state"), ("state", "connected")]);
    let (path, _) = random_file(&home, "unwanted.bin");
    tom.send(&format!("send-file {}", path.display()));
    let failed = tom.event(&[("event", "file_failed"), ("direction", "out")]);
    assert!(
        failed["reason"].as_str().unwrap().contains("refused"),
        "{failed}"
    );
    jerry.event(&[("event", "file_failed"), ("direction", "in")]);
    assert!(!downloads.join("unwanted.bin").exists());
    tom.send("hangup");
    assert_eq!(tom.wait_exit(), 0);
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
}

#[test]
fn the_browser_sends_a_file_whose_hostile_name_lands_inside_the_download_dir() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let downloads = home.path("downloads");
    let mut jerry = listener(&home, &url, "jerry", &args_with_downloads(&downloads, &[]));
    let query = format!("id=web&call=jerry&sendfile={FILE_BYTES}&sendname=..%2F..%2Fetc%2Fpasswd");
    let Some(mut page) = open_web_client(&url, &query) else {
        return;
    };
    let offered = page
        .page_line("file offered")
        .unwrap_or_else(|why| panic!("{why}\n{}", page.page_report()));
    let sha256 = offered.rsplit(' ').next().unwrap().to_owned();
    let got = jerry.event(&[("event", "file_done"), ("direction", "in")]);
    assert_eq!(got["sha256"], sha256.as_str());
    assert_eq!(
        got["name"], "../../etc/passwd",
        "the offered name is reported"
    );
    let saved = PathBuf::from(got["path"].as_str().unwrap());
    assert_eq!(
        saved,
        downloads.join("passwd"),
        "saved inside the download dir"
    );
    assert_eq!(sha256_hex(&std::fs::read(&saved).unwrap()), sha256);
    page.seen_or_wait("file sent")
        .unwrap_or_else(|why| panic!("{why}\n{}", page.page_report()));
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
}

#[test]
fn rtc_cli_sends_a_file_that_the_browser_receives_intact() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let Some(mut page) = open_web_client(&url, "id=web&answer=1") else {
        return;
    };
    let tom_args = args_with_downloads(&home.path("tom-downloads"), &[]);
    let tom_args: Vec<&str> = tom_args.iter().map(String::as_str).collect();
    let mut tom = home.caller(&url, "tom", "web", &tom_args);
    tom.event(&[("event", "state"), ("state", "connected")]);
    let (path, sha256) = random_file(&home, "for-the-browser.bin");
    tom.send(&format!("send-file {}", path.display()));
    let sent = tom.event(&[("event", "file_done"), ("direction", "out")]);
    assert_eq!(sent["sha256"], sha256.as_str());
    let received = page
        .seen_or_wait("file received")
        .unwrap_or_else(|why| panic!("{why}\n{}", page.page_report()));
    assert_eq!(
        received,
        format!("file received for-the-browser.bin {FILE_BYTES} {sha256}")
    );
    tom.send("hangup");
    assert_eq!(tom.wait_exit(), 0);
}
