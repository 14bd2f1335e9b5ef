//! The web client `rtc-cli serve` hosts (issue 13), on 127.0.0.1: the page and script
//! over HTTP with a strict content security policy, the WebSocket at `/ws`, and the page
//! itself in headless Chromium (fake camera and microphone) calling `rtc-cli`, called by
//! it, and calling another browser, with video decoded on both sides.
//!
//! The browser tests are skipped (with a printed reason) when `chromium` is not
//! installed or does not start.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::chromium::{Browser, WAIT, open_web_client};
use common::media_check::read_y4m;
use common::process::{Home, Proc, TONE_NO_SPEAKER, test_pattern};
use rtc_cli::signaling::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage};

/// The `host:port` of a `ws://host:port` URL.
fn authority(ws_url: &str) -> &str {
    ws_url.trim_start_matches("ws://")
}

/// Sends one HTTP/1.1 request and returns the whole response (head and body) as text.
fn http(ws_url: &str, request_line: &str) -> String {
    let mut s = TcpStream::connect(authority(ws_url)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "{request_line} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        authority(ws_url)
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    out
}

/// The value of `name` in a response head (case-insensitive name).
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn serve_answers_http_with_the_page_and_its_script_and_nothing_else() {
    let home = Home::new();
    let (_server, url) = home.serve(&[]);

    let page = http(&url, "GET /");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.contains("<script src=\"app.js\">"), "{page}");
    let csp = header(&page, "content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));

    let script = http(&url, "GET /app.js");
    assert!(script.starts_with("HTTP/1.1 200"), "{script}");
    assert_eq!(
        header(&script, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.contains("textContent"), "chat text is set as text");

    for (request, status) in [
        ("GET /../../etc/passwd", "404"),
        ("GET /nope", "404"),
        ("POST /", "405"),
        ("DELETE /app.js", "405"),
    ] {
        let answer = http(&url, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{request}: {answer}"
        );
    }
    let head = http(&url, "HEAD /");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.contains("<html"), "HEAD has no body: {head}");

    // The health check counts who is logged in.
    let _jerry = home.listener(
        &url,
        "jerry",
        &["--camera", "none", "--mic", "none", "--speaker", "none"],
    );
    let health = http(&url, "GET /healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(header(&health, "content-type"), Some("application/json"));
    let body = health.split("\r\n\r\n").nth(1).unwrap_or_default();
    let status: serde_json::Value = serde_json::from_str(body.trim()).expect(body);
    assert_eq!(status["status"], "ok");
    assert_eq!(status["logged_in"], 1, "{status}");
}

#[tokio::test]
async fn the_websocket_is_at_ws_and_still_at_the_root() {
    let home = Home::new();
    let (_server, url) = home.serve(&[]);
    for (path, id) in [("/ws", "tom"), ("/", "jerry")] {
        let mut client = common::RawClient::connect_url(&format!("{url}{path}")).await;
        client
            .send(ClientMessage::Login {
                version: PROTOCOL_VERSION,
                id: common::id(id),
                token: None,
                presence: false,
                resume: vec![],
            })
            .await;
        assert!(
            matches!(client.recv().await, ServerMessage::LoginOk { .. }),
            "login over {path}"
        );
    }
}

/// Waits for the page to report at least `min` frames decoded from `peer`.
fn page_decodes(browser: &mut Browser, peer: &str, min: u64) {
    let prefix = format!("decoded {peer} ");
    let found = browser.page_line_where(&format!("{prefix}>= {min}"), |text| {
        text.strip_prefix(&prefix)
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= min)
    });
    if let Err(why) = found {
        panic!("{why}\n{}", browser.page_report());
    }
}

/// rtc-cli's media for the browser tests: a small test pattern, a tone, no speaker,
/// candidates on 127.0.0.1 only, the browser's video recorded to `video`.
fn media(video: &Path) -> Vec<String> {
    let mut args: Vec<String> = test_pattern("320x240", "15")
        .iter()
        .chain(&TONE_NO_SPEAKER)
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(["--bind", "127.0.0.1", "--record-video"].map(str::to_owned));
    args.push(video.display().to_string());
    args
}

/// Checks `video` holds at least 30 frames of the browser's camera.
fn recorded_the_browser(video: &Path) {
    let frames = read_y4m(video);
    eprintln!("recorded {} frames from the browser", frames.len());
    assert!(frames.len() >= 30, "only {} frames", frames.len());
}

/// Waits for `p`'s call to connect and end with `reason`.
fn call_connects_and_ends(p: &Proc, reason: &str) {
    p.seen_or_wait(&[("event", "state"), ("state", "connected")]);
    p.event(&[("event", "state"), ("state", "ended"), ("reason", reason)]);
}

#[test]
fn the_page_calls_rtc_cli_and_hangs_up() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let video = home.path("from-page.y4m");
    let mut listen = vec!["--auto-accept".to_owned()];
    listen.extend(media(&video));
    let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
    let mut jerry = home.listener(&url, "jerry", &listen);
    let from_page = "hello from the page <script>alert(1)</script>";
    let query = format!(
        "id=web&call=jerry&hangup_after=8&say={}",
        url_encode(from_page)
    );
    let Some(mut page) = open_web_client(&url, &query) else {
        return;
    };
    page_decodes(&mut page, "jerry", 30);
    // Chat both ways: the page's text arrives as written; ours, with terminal escape
    // sequences and markup, is shown on the page as text.
    let chat = jerry.event(&[("event", "chat"), ("from", "web")]);
    assert_eq!(chat["text"], from_page);
    let from_jerry = "hi <b>web</b> \u{1b}]2;owned\u{7}\u{1b}[2J";
    jerry.send(&format!("say {from_jerry}"));
    let echo = jerry.event(&[("event", "chat"), ("from", "jerry")]);
    assert_eq!(echo["text"], from_jerry);
    let shown = page
        .seen_or_wait("shown jerry")
        .unwrap_or_else(|why| panic!("{why}\n{}", page.page_report()));
    assert!(
        shown.ends_with(&serde_json::to_string(from_jerry).unwrap()),
        "{shown}"
    );
    call_connects_and_ends(&jerry, "remote-hangup");
    jerry.send("quit");
    assert_eq!(jerry.wait_exit(), 0);
    recorded_the_browser(&video);
}

#[test]
fn rtc_cli_calls_the_page_which_answers() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let Some(mut page) = open_web_client(&url, "id=web&answer=1") else {
        return;
    };
    let video = home.path("from-page.y4m");
    let mut call = vec!["--hangup-after".to_owned(), "6s".to_owned()];
    call.extend(media(&video));
    let call: Vec<&str> = call.iter().map(String::as_str).collect();
    let tom = home.caller(&url, "tom", "web", &call);
    page_decodes(&mut page, "tom", 30);
    call_connects_and_ends(&tom, "hangup");
    assert_eq!(tom.wait_exit(), 0);
    if let Err(why) = page.seen_or_wait("ended tom remote-hangup") {
        panic!("{why}\n{}", page.page_report());
    }
    recorded_the_browser(&video);
}

#[test]
fn two_browsers_call_each_other_through_the_page() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let Some(mut alice) = open_web_client(&url, "id=alice&answer=1") else {
        return;
    };
    // bob says something that would run as script if the page ever made it HTML.
    let hostile =
        r#"<img src=x onerror="console.log('web: XSS')"><script>console.log('web: XSS')</script>"#;
    let query = format!(
        "id=bob&call=alice&hangup_after=6&say={}",
        url_encode(hostile)
    );
    let Some(mut bob) = open_web_client(&url, &query) else {
        return;
    };
    // alice's page lists bob once he is online (available, or busy calling her).
    if let Err(why) = alice.seen_or_wait("online: bob=") {
        panic!("{why}\n{}", alice.page_report());
    }
    page_decodes(&mut alice, "bob", 30);
    page_decodes(&mut bob, "alice", 30);
    let shown = alice.seen_or_wait("shown bob").unwrap_or_else(|why| {
        panic!(
            "{why}\n{}\nbob's {}",
            alice.page_report(),
            bob.page_report()
        )
    });
    let expected = serde_json::to_string(hostile).unwrap();
    assert!(shown.ends_with(&expected), "shown as text: {shown}");
    if let Err(why) = alice.seen_or_wait("ended bob remote-hangup") {
        panic!("{why}\n{}", alice.page_report());
    }
    for page in [&mut alice, &mut bob] {
        assert!(!page.logged_exactly("XSS"), "chat text ran as script");
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One DevTools protocol command on `ws` (its `id` is 1); its `result`.
async fn devtools(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    use futures_util::{SinkExt, StreamExt};
    let command = serde_json::json!({ "id": 1, "method": method, "params": params });
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        command.to_string(),
    ))
    .await
    .unwrap();
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a DevTools answer")
            .expect("DevTools open")
            .unwrap();
        let Ok(text) = message.to_text() else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        if v["id"] == 1 {
            return v["result"].clone();
        }
    }
}

/// The remote video element's box (its `getBoundingClientRect`) and a PNG screenshot
/// (`Page.captureScreenshot`, base64 in `data`) of the page behind the DevTools URL
/// `target`.
async fn screenshot_and_video_box(target: &str) -> (serde_json::Value, serde_json::Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(target).await.unwrap();
    let rect = devtools(
        &mut ws,
        "Runtime.evaluate",
        serde_json::json!({
            "expression": "JSON.stringify(document.querySelector('.tile video').getBoundingClientRect())",
            "returnByValue": true,
        }),
    )
    .await;
    let rect: serde_json::Value =
        serde_json::from_str(rect["result"]["value"].as_str().expect("a box")).unwrap();
    let shot = devtools(
        &mut ws,
        "Page.captureScreenshot",
        serde_json::json!({ "format": "png" }),
    )
    .await;
    (rect, shot)
}

#[test]
fn a_screenshot_of_the_page_in_a_call_shows_the_remote_video() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let video = home.path("from-page.y4m");
    let mut listen = vec!["--auto-accept".to_owned()];
    listen.extend(media(&video));
    let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
    let _jerry = home.listener(&url, "jerry", &listen);
    if let Some(why) = common::chromium::chromium_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let page_url = format!(
        "http://{}/?only=127.0.0.1&id=web&call=jerry",
        authority(&url)
    );
    let mut page = match Browser::start_with(
        &page_url,
        "web: ",
        "logged in as",
        &["--remote-debugging-port=0", "--window-size=1280,720"],
    ) {
        common::chromium::Start::Ready(b) => b,
        common::chromium::Start::Unavailable(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    page_decodes(&mut page, "jerry", 30);
    let target = page.devtools_page().unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (rect, shot) = runtime.block_on(screenshot_and_video_box(&target));
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("PNG data"))
        .unwrap();
    std::fs::write(home.path("page.png"), &png).unwrap();
    let image = image::load_from_memory(&png).unwrap().to_rgb8();
    let (x0, y0) = (
        rect["x"].as_f64().unwrap() as u32,
        rect["y"].as_f64().unwrap() as u32,
    );
    let (w, h) = (
        rect["width"].as_f64().unwrap() as u32,
        rect["height"].as_f64().unwrap() as u32,
    );
    assert!(w >= 100 && h >= 100, "the video element is {w}x{h}");
    let mut lit = 0u64;
    let mut total = 0u64;
    for y in y0..(y0 + h).min(image.height()) {
        for x in x0..(x0 + w).min(image.width()) {
            let p = image.get_pixel(x, y);
            total += 1;
            if p.0.iter().any(|&c| c > 40) {
                lit += 1;
            }
        }
    }
    eprintln!("{lit} of {total} pixels in the video's box are not black");
    // The test pattern fills the picture; letterboxing (object-fit: contain) may add
    // black bars, so a quarter of the box is plenty of margin.
    assert!(
        lit * 4 > total,
        "the remote video is black: {lit} of {total} lit"
    );
}

#[test]
fn the_page_joins_a_room_with_two_rtc_cli_members_and_sees_both() {
    let _turn = common::one_call_at_a_time();
    let home = Home::new().with_wait(WAIT);
    let (_server, url) = home.serve(&[]);
    let member = |id: &str| {
        let mut args = vec![
            "--headless",
            "--server",
            &url,
            "--id",
            id,
            "room",
            "standup",
        ];
        args.extend(test_pattern("160x120", "15"));
        args.extend(TONE_NO_SPEAKER);
        args.extend(["--bind", "127.0.0.1"]);
        let p = home.spawn(id, &args);
        p.event(&[("event", "room_joined")]);
        p
    };
    let mut ann = member("ann");
    let mut bob = member("bob");
    let Some(mut page) = open_web_client(&url, "id=web&room=standup") else {
        return;
    };
    page_decodes(&mut page, "ann", 30);
    page_decodes(&mut page, "bob", 30);
    for p in [&ann, &bob] {
        p.seen_or_wait(&[("event", "state"), ("state", "connected"), ("peer", "web")]);
    }
    ann.send("quit");
    assert_eq!(ann.wait_exit(), 0);
    if let Err(why) = page.seen_or_wait("ended ann") {
        panic!("{why}\n{}", page.page_report());
    }
    bob.send("quit");
    assert_eq!(bob.wait_exit(), 0);
}
