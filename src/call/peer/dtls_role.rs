//! Which end of the DTLS handshake we are, read from the SDP (RFC 5763 §5, RFC 8842
//! §5.1), and what that says about when the peer can decrypt our media.
//!
//! DTLS-SRTP keys exist on each side once its handshake is done. The server is done
//! when it sends its Finished, the handshake's last flight; the client when that flight
//! arrives. So a client knows at once that the server holds the keys, and a server does
//! not: its first SRTP packets can overtake its Finished (reordering) or outlive a lost
//! one, and the client drops them ("remote_srtp_context is not set yet" in webrtc 0.21).
//! A call's first keyframe was lost that way under 100 ms ± 30 ms of jitter.

/// Whether we are the DTLS client, given our SDP and the peer's (both descriptions of
/// one completed offer/answer). The answer's `a=setup` decides (RFC 8842 §5.1):
/// `active` is the client, `passive` the server; the offer's is `actpass`. A description
/// without the attribute, or one that does not parse, counts as the server: the safe
/// side, which waits for proof that the peer holds the keys.
pub fn is_dtls_client(local_sdp: &str, remote_sdp: &str) -> bool {
    matches!(
        (setup(local_sdp), setup(remote_sdp)),
        (Some(Setup::Active), _) | (Some(Setup::ActPass), Some(Setup::Passive))
    )
}

/// The `a=setup` values of RFC 4145 §4 that DTLS-SRTP uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Active,
    Passive,
    ActPass,
}

/// The first `a=setup` attribute of a description (every media section of a BUNDLE
/// group carries the same one).
fn setup(sdp: &str) -> Option<Setup> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=setup:"))
        .and_then(|value| match value {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(setup: &str) -> String {
        format!("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=setup:{setup}\r\na=mid:0\r\n")
    }

    #[test]
    fn the_answer_decides_for_either_side() {
        // We answered active (webrtc-rs' and browsers' default): the client.
        assert!(is_dtls_client(&sdp("active"), &sdp("actpass")));
        // We offered and the peer answered active: the server.
        assert!(!is_dtls_client(&sdp("actpass"), &sdp("active")));
        // We offered and the peer answered passive: the client.
        assert!(is_dtls_client(&sdp("actpass"), &sdp("passive")));
        // We answered passive: the server.
        assert!(!is_dtls_client(&sdp("passive"), &sdp("actpass")));
    }

    #[test]
    fn a_description_without_setup_counts_as_the_server() {
        assert!(!is_dtls_client("v=0\r\n", &sdp("passive")));
        assert!(!is_dtls_client(&sdp("actpass"), "v=0\r\n"));
        assert!(!is_dtls_client(&sdp("holdconn"), &sdp("actpass")));
    }
}
