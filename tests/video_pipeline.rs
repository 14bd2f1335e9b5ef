//! The video path end to end without a network: test-pattern source -> H.264 encode ->
//! RTP packetization (rtc's H264Payloader, MTU 1200) -> frame assembly -> decode ->
//! counter read-back, including a lost packet answered by a forced keyframe (the PLI loop).

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::Payloader;

use rtc_cli::media::spec::VideoSourceSpec;
use rtc_cli::media::video::assemble::{Corruption, H264FrameAssembler};
use rtc_cli::media::video::decode::H264Decoder;
use rtc_cli::media::video::encode::{EncoderSettings, H264Encoder};
use rtc_cli::media::video::pattern::read_counter;
use rtc_cli::media::video::source::open_video_source;

const SIZE: (u32, u32) = (320, 240);
const MTU: usize = 1200;
/// 90 kHz RTP clock at 30 fps.
const TICKS_PER_FRAME: u32 = 3000;

#[test]
fn frames_survive_the_rtp_path_and_a_lost_packet_is_healed_by_a_keyframe() {
    let mut source = open_video_source(&VideoSourceSpec::TestPattern, SIZE, 200)
        .expect("open")
        .expect("a source")
        .source;
    let mut encoder = H264Encoder::new(EncoderSettings {
        width: SIZE.0,
        height: SIZE.1,
        fps: 30,
        bitrate_kbps: 600,
    })
    .expect("encoder");
    let mut payloader = H264Payloader::default();
    let mut assembler = H264FrameAssembler::new();
    let mut decoder = H264Decoder::new().expect("decoder");

    let mut sequence_number = 40_000u16;
    let mut pli_pending = false;
    // After a loss, P-frames reference a missing picture: wait for the keyframe.
    let mut waiting_for_keyframe = false;
    let (mut shown, mut plis, mut keyframes_sent) = (Vec::new(), 0, 0);
    for frame_index in 0..40u32 {
        let captured = source.next_frame().expect("frame");
        let encoded = encoder
            .encode(&captured.frame, pli_pending)
            .expect("encode");
        keyframes_sent += u32::from(encoded.keyframe);
        pli_pending = false;
        let payloads = payloader
            .payload(MTU, &Bytes::from(encoded.annexb))
            .expect("packetize");
        let last = payloads.len() - 1;
        for (k, payload) in payloads.iter().enumerate() {
            let seq = sequence_number;
            sequence_number = sequence_number.wrapping_add(1);
            // The network loses the first packet of frame 20.
            if frame_index == 20 && k == 0 {
                continue;
            }
            let out = assembler.push(seq, frame_index * TICKS_PER_FRAME, k == last, payload);
            if let Some(corruption) = out.corruption {
                assert!(matches!(corruption, Corruption::SequenceGap { .. }));
                plis += 1;
                pli_pending = true; // the receiver sends a PLI; the sender forces an IDR
                waiting_for_keyframe = true;
            }
            let Some(unit) = out.access_unit else {
                continue;
            };
            waiting_for_keyframe &= !unit.keyframe;
            if waiting_for_keyframe {
                continue;
            }
            let picture = decoder
                .decode(&unit.annexb)
                .expect("decode")
                .expect("picture");
            shown.push(read_counter(&picture).expect("counter"));
        }
    }

    assert_eq!(plis, 1);
    assert_eq!(
        keyframes_sent, 2,
        "the first frame and the one after the PLI"
    );
    // Frame 20 is lost. If it was one packet, the gap shows only at frame 21, which
    // was already encoded as a P-frame: the keyframe is then frame 22.
    let recovered_at = shown
        .iter()
        .position(|&c| c > 20)
        .expect("frames after the loss");
    assert_eq!(&shown[..recovered_at], (0..20).collect::<Vec<_>>());
    let first_after = shown[recovered_at];
    assert!(
        first_after == 21 || first_after == 22,
        "recovered at {first_after}"
    );
    assert_eq!(
        &shown[recovered_at..],
        (first_after..40).collect::<Vec<_>>()
    );
}
