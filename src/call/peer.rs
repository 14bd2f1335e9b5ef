//! One call's WebRTC PeerConnection (webrtc 0.21): tracks, ICE, RTCP, stats.
