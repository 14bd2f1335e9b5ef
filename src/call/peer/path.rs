//! The selected ICE candidate pair (RFC 8445 §8.1.1; W3C webrtc-pc §5.6
//! `getSelectedCandidatePair`), as our [`CandidatePath`].
//!
//! Read from the ICE transport rather than the stats report: in webrtc 0.21.1 the
//! report's candidate-pair entries name remote candidates by ids that no remote
//! candidate entry carries, so the pair cannot be joined to its remote address there.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rtc::peer_connection::transport::{RTCIceCandidate, RTCIceCandidateType};
use webrtc::peer_connection::PeerConnection;

use crate::call::stats::{CandidateKind, CandidatePath, PathEnd};

/// The pair media flows over, or `None` before ICE selected one. Every sender shares the
/// one bundled transport, so the first sender's is the call's.
pub(crate) async fn selected_path(pc: &Arc<dyn PeerConnection>) -> Option<CandidatePath> {
    let sender = pc.get_senders().await.into_iter().next()?;
    let dtls = sender.transport().await.ok()??;
    let pair = dtls
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .ok()??;
    Some(CandidatePath {
        local: path_end(pair.local())?,
        remote: path_end(pair.remote())?,
    })
}

fn path_end(candidate: &RTCIceCandidate) -> Option<PathEnd> {
    let kind = match candidate.typ {
        RTCIceCandidateType::Host => CandidateKind::Host,
        RTCIceCandidateType::Srflx => CandidateKind::Srflx,
        RTCIceCandidateType::Prflx => CandidateKind::Prflx,
        RTCIceCandidateType::Relay => CandidateKind::Relay,
        _ => return None,
    };
    let address = candidate
        .address
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, candidate.port));
    Some(PathEnd { kind, address })
}
