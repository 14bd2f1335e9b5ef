//! Getting noticed when a call comes in and the terminal may be hidden: the bell and
//! a desktop notification through the terminal's own escape sequences.
//!
//! The notification is sent both as OSC 777 (`notify;TITLE;BODY`: rxvt-unicode,
//! foot, Ghostty, WezTerm, VTE-based terminals) and OSC 9 (iTerm2, Windows Terminal,
//! kitty, ConEmu); a terminal ignores the one it does not know. Inside tmux they reach
//! the outer terminal only through DCS passthrough (`allow-passthrough on`); without
//! it they are left out and tmux handles the bell itself. Inside GNU screen only the
//! bell is sent.

use crate::call::UserId;

/// Where our output goes, as far as escape sequences are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// A terminal, directly.
    Terminal,
    /// tmux, with `allow-passthrough` on: OSC sequences are wrapped in DCS passthrough.
    TmuxPassthrough,
    /// A multiplexer that would swallow OSC notifications: the bell only.
    BellOnly,
}

impl Host {
    /// Detects the host from `$TMUX`/`$STY` and, inside tmux, its `allow-passthrough`
    /// option (`tmux show-options -gv`; tmux before 3.3 has none: bell only).
    pub fn detect() -> Self {
        if std::env::var_os("TMUX").is_some() {
            let passthrough = std::process::Command::new("tmux")
                .args(["show-options", "-gv", "allow-passthrough"])
                .stderr(std::process::Stdio::null())
                .output()
                .is_ok_and(|out| {
                    let value = String::from_utf8_lossy(&out.stdout);
                    out.status.success() && matches!(value.trim(), "on" | "all")
                });
            return if passthrough {
                Self::TmuxPassthrough
            } else {
                Self::BellOnly
            };
        }
        if std::env::var_os("STY").is_some() {
            return Self::BellOnly;
        }
        Self::Terminal
    }
}

/// The bytes that announce a call from `from`: BEL, then (where the host passes them)
/// the OSC 777 and OSC 9 notifications. `from` is a [`UserId`], so the text holds no
/// control characters.
pub fn incoming_call(from: &UserId, host: Host) -> String {
    let body = format!("{from} is calling");
    let notifications = [
        format!("\x1b]777;notify;rtc-cli;{body}\x1b\\"),
        format!("\x1b]9;rtc-cli: {body}\x1b\\"),
    ];
    let mut out = String::from("\x07");
    for osc in notifications {
        match host {
            Host::Terminal => out.push_str(&osc),
            Host::TmuxPassthrough => out.push_str(&tmux_passthrough(&osc)),
            Host::BellOnly => {}
        }
    }
    out
}

/// `seq` wrapped for tmux's DCS passthrough: `ESC P tmux ;` + `seq` with every ESC
/// doubled + `ESC \`.
fn tmux_passthrough(seq: &str) -> String {
    format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_rings_and_notifies_as_the_host_allows() {
        let tom = UserId::parse("tom").unwrap();
        let direct = incoming_call(&tom, Host::Terminal);
        assert!(direct.starts_with('\x07'));
        assert!(direct.contains("\x1b]777;notify;rtc-cli;tom is calling\x1b\\"));
        assert!(direct.contains("\x1b]9;rtc-cli: tom is calling\x1b\\"));
        let tmux = incoming_call(&tom, Host::TmuxPassthrough);
        assert!(
            tmux.contains("\x1bPtmux;\x1b\x1b]777;notify;rtc-cli;tom is calling\x1b\x1b\\\x1b\\")
        );
        assert_eq!(incoming_call(&tom, Host::BellOnly), "\x07");
    }
}
