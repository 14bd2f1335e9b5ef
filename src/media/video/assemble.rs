//! Receive side of H.264 over RTP: depacketization (RFC 6184, non-interleaved mode) and
//! access-unit assembly that emits a frame the moment its marker-bit packet arrives.
//!
//! `rtc`'s `SampleBuilder` holds each frame until a packet of the next frame shows up
//! (a whole frame interval of added latency, FIELD-NOTES), and its `H264Packet` keeps
//! FU-A fragments across packet loss and indexes past the end of a truncated STAP-A.
//! This assembler checks every length, tracks RTP sequence numbers (with u16 wrap) and
//! drops a broken access unit with a [`Corruption`] report, so the caller sends a PLI.

/// Largest access unit assembled; a bigger one is dropped as corrupt. 4 MiB is ~100x
/// a 1080p IDR at call bitrates, and bounds what a hostile peer can make us buffer.
pub const MAX_ACCESS_UNIT_BYTES: usize = 4 << 20;

/// The Annex-B start code written before each NAL unit (4 bytes, as openh264 writes).
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// NAL header: `forbidden_zero_bit | nal_ref_idc (2) | nal_unit_type (5)` (H.264 7.3.1).
const NAL_TYPE_MASK: u8 = 0x1F;
const NAL_F_NRI_MASK: u8 = 0xE0;
/// NAL unit types of an IDR slice, a sequence parameter set and an access unit delimiter
/// (H.264 Table 7-1).
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_AUD: u8 = 9;
/// RFC 6184 §5.7.1: single-time aggregation packet.
const STAP_A: u8 = 24;
/// RFC 6184 §5.8: fragmentation unit.
const FU_A: u8 = 28;
/// FU header bits (RFC 6184 §5.8): start and end of the fragmented NAL unit.
const FU_START: u8 = 0x80;
const FU_END: u8 = 0x40;

/// A complete H.264 access unit (one coded picture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Its NAL units, each behind a 4-byte start code, ready for the decoder.
    pub annexb: Vec<u8>,
    /// The RTP timestamp shared by its packets (90 kHz clock).
    pub rtp_timestamp: u32,
    /// Holds an IDR slice: decodable on its own (after the SPS/PPS it carries).
    pub keyframe: bool,
}

/// Why an access unit was dropped. Each means the decoder misses data: send a PLI.
/// Until the next keyframe, later access units may reference the lost picture; a
/// receiver that wants clean pictures skips to the next [`AccessUnit::keyframe`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// Packets between `expected` and `got` (RTP sequence numbers) never arrived.
    #[error("RTP packets lost: expected sequence number {expected}, got {got}")]
    SequenceGap {
        /// The sequence number that should have come next.
        expected: u16,
        /// The one that came.
        got: u16,
    },
    /// A packet of a new timestamp arrived before the marker of the frame in progress.
    #[error("frame with RTP timestamp {timestamp} ended without a marker bit")]
    MissingMarker {
        /// The unfinished frame's timestamp.
        timestamp: u32,
    },
    /// The payload breaks RFC 6184 (truncated STAP-A, FU-A out of order, interleaved
    /// mode types).
    #[error("malformed H.264 RTP payload: {0}")]
    Malformed(&'static str),
    /// The access unit grew past [`MAX_ACCESS_UNIT_BYTES`].
    #[error("H.264 access unit larger than {MAX_ACCESS_UNIT_BYTES} bytes")]
    TooLarge,
}

/// What one RTP packet completed or broke; both can happen at once (a frame lost its
/// marker packet and the next one arrives whole in a single packet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembled {
    /// An access unit was dropped before or with this packet: request a keyframe.
    pub corruption: Option<Corruption>,
    /// The access unit this packet's marker bit completed.
    pub access_unit: Option<AccessUnit>,
}

/// Turns RTP packets of one H.264 stream (in arrival order) into access units.
#[derive(Debug, Default)]
pub struct H264FrameAssembler {
    /// Sequence number of the last packet accepted.
    last_sequence: Option<u16>,
    /// RTP timestamp of the last packet accepted.
    last_timestamp: Option<u32>,
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Between access units: the next packet starts one.
    #[default]
    Idle,
    /// Collecting the access unit of `timestamp`.
    Collecting(Partial),
    /// After a loss: dropping packets until a marker bit ends the broken access unit.
    Resync,
}

#[derive(Debug)]
struct Partial {
    timestamp: u32,
    annexb: Vec<u8>,
    /// NAL type of the FU-A being reassembled, if one is open.
    open_fu: Option<u8>,
    keyframe: bool,
}

impl H264FrameAssembler {
    /// An assembler waiting for the first packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one RTP packet's header fields and payload. Duplicates and late
    /// (reordered) packets are ignored; a gap in sequence numbers drops the access unit
    /// it hit and reports it.
    pub fn push(
        &mut self,
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Assembled {
        let mut out = Assembled::default();
        if let Some(last) = self.last_sequence {
            let ahead = sequence_number.wrapping_sub(last);
            if ahead == 0 || ahead >= 0x8000 {
                tracing::trace!(sequence_number, "duplicate or late RTP packet ignored");
                return out;
            }
            if ahead != 1 {
                out.corruption = Some(Corruption::SequenceGap {
                    expected: last.wrapping_add(1),
                    got: sequence_number,
                });
                // Whole frames were lost and this packet opens the next one: keep it.
                // Otherwise the loss hit this packet's own frame: drop up to its marker.
                let fresh = self.last_timestamp != Some(timestamp) && starts_access_unit(payload);
                self.state = if fresh { State::Idle } else { State::Resync };
            }
        }
        self.last_sequence = Some(sequence_number);
        self.last_timestamp = Some(timestamp);

        let state = std::mem::take(&mut self.state);
        let mut partial = match state {
            State::Resync => {
                self.state = if marker { State::Idle } else { State::Resync };
                return out;
            }
            State::Collecting(p) if p.timestamp == timestamp => p,
            State::Collecting(p) => {
                out.corruption.get_or_insert(Corruption::MissingMarker {
                    timestamp: p.timestamp,
                });
                Partial::new(timestamp)
            }
            State::Idle => Partial::new(timestamp),
        };

        if let Err(c) = partial.depacketize(payload) {
            out.corruption.get_or_insert(c);
            self.state = if marker { State::Idle } else { State::Resync };
            return out;
        }
        if !marker {
            self.state = State::Collecting(partial);
            return out;
        }
        match partial.finish() {
            Ok(au) => out.access_unit = au,
            Err(c) => {
                out.corruption.get_or_insert(c);
            }
        }
        out
    }
}

/// The first NAL unit that starts in a payload: its type and the byte after its header
/// (the start of a STAP-A's first unit, or of an FU-A's unit when this fragment starts
/// it; RFC 6184 §5.7-§5.8). `None` when no unit starts here.
fn first_nal_start(payload: &[u8]) -> Option<(u8, Option<&u8>)> {
    match payload {
        [h, body @ ..] if h & NAL_TYPE_MASK == STAP_A => match body {
            [_, _, nal, rest @ ..] => Some((nal & NAL_TYPE_MASK, rest.first())),
            _ => None,
        },
        [h, fu, rest @ ..] if h & NAL_TYPE_MASK == FU_A => {
            (fu & FU_START != 0).then(|| (fu & NAL_TYPE_MASK, rest.first()))
        }
        [h, rest @ ..] => Some((h & NAL_TYPE_MASK, rest.first())),
        [] => None,
    }
}

/// Whether a payload begins a new access unit (H.264 7.4.1.2.3): an SEI, SPS, PPS or
/// access unit delimiter, or the slice holding macroblock 0 (`first_mb_in_slice`, the
/// first Exp-Golomb field of the slice header, is 0 exactly when its first bit is 1).
fn starts_access_unit(payload: &[u8]) -> bool {
    match first_nal_start(payload) {
        Some((1 | NAL_IDR, after_header)) => after_header.is_some_and(|b| b & 0x80 != 0),
        Some((6..=9, _)) => true,
        _ => false,
    }
}

/// Whether a payload opens an access unit whatever came before it: its first NAL unit is
/// an access unit delimiter or a sequence parameter set (H.264 7.4.1.2.3: a delimiter
/// comes first; before an SPS only a delimiter, SEI or another parameter set may come,
/// and WebRTC's senders, openh264 and libwebrtc, start each keyframe with the SPS).
pub(crate) fn opens_access_unit(payload: &[u8]) -> bool {
    matches!(first_nal_start(payload), Some((NAL_SPS | NAL_AUD, _)))
}

/// Whether a payload begins a keyframe: its access unit starts with a sequence parameter
/// set, or with the first slice of an IDR picture (H.264 7.4.1.2.3).
pub(crate) fn begins_keyframe(payload: &[u8]) -> bool {
    starts_access_unit(payload) && matches!(first_nal_start(payload), Some((NAL_SPS | NAL_IDR, _)))
}

/// Whether an RTP payload carries (part of) an IDR slice: a single NAL unit of type 5, an
/// FU-A of one, or a STAP-A holding one (RFC 6184 §5.6-§5.8). Malformed payloads: `false`.
pub(crate) fn carries_idr(payload: &[u8]) -> bool {
    match payload {
        [h, fu, ..] if h & NAL_TYPE_MASK == FU_A => fu & NAL_TYPE_MASK == NAL_IDR,
        [h, stap @ ..] if h & NAL_TYPE_MASK == STAP_A => {
            let mut body = stap;
            while let [hi, lo, rest @ ..] = body {
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                match rest.get(..size) {
                    Some([nal, ..]) if nal & NAL_TYPE_MASK == NAL_IDR => return true,
                    Some(_) => body = &rest[size..],
                    None => return false,
                }
            }
            false
        }
        [h, ..] => h & NAL_TYPE_MASK == NAL_IDR,
        [] => false,
    }
}

impl Partial {
    fn new(timestamp: u32) -> Self {
        Self {
            timestamp,
            annexb: Vec::new(),
            open_fu: None,
            keyframe: false,
        }
    }

    /// Appends one RTP payload's NAL units (RFC 6184 §5.6-§5.8).
    fn depacketize(&mut self, payload: &[u8]) -> Result<(), Corruption> {
        let (&header, body) = payload
            .split_first()
            .ok_or(Corruption::Malformed("empty payload"))?;
        match header & NAL_TYPE_MASK {
            1..=23 => self.push_nal(payload),
            STAP_A => self.push_stap_a(body),
            FU_A => self.push_fu_a(header, body),
            // RFC 6184 §5.2: types 0, 30 and 31 are undefined; receivers ignore them.
            0 | 30 | 31 => Ok(()),
            // STAP-B, MTAP16, MTAP24, FU-B exist only in interleaved mode (never negotiated).
            _ => Err(Corruption::Malformed("interleaved-mode packet type")),
        }
    }

    fn push_nal(&mut self, nal: &[u8]) -> Result<(), Corruption> {
        if self.open_fu.is_some() {
            return Err(Corruption::Malformed("NAL unit inside an unfinished FU-A"));
        }
        self.reserve(START_CODE.len() + nal.len())?;
        self.keyframe |= nal[0] & NAL_TYPE_MASK == NAL_IDR;
        self.annexb.extend_from_slice(&START_CODE);
        self.annexb.extend_from_slice(nal);
        Ok(())
    }

    /// RFC 6184 §5.7.1: 16-bit big-endian size, then that many bytes of NAL unit, repeated.
    fn push_stap_a(&mut self, mut body: &[u8]) -> Result<(), Corruption> {
        if body.is_empty() {
            return Err(Corruption::Malformed("STAP-A without NAL units"));
        }
        while !body.is_empty() {
            let [hi, lo, rest @ ..] = body else {
                return Err(Corruption::Malformed("STAP-A size field cut short"));
            };
            let size = usize::from(u16::from_be_bytes([*hi, *lo]));
            if size == 0 || size > rest.len() {
                return Err(Corruption::Malformed(
                    "STAP-A NAL unit size beyond the packet",
                ));
            }
            let (nal, tail) = rest.split_at(size);
            self.push_nal(nal)?;
            body = tail;
        }
        Ok(())
    }

    /// RFC 6184 §5.8: FU indicator (F, NRI, type 28), FU header (S, E, R, NAL type),
    /// fragment. The NAL header is rebuilt from the indicator's F/NRI and the FU type.
    fn push_fu_a(&mut self, indicator: u8, body: &[u8]) -> Result<(), Corruption> {
        let (&fu_header, fragment) = body
            .split_first()
            .ok_or(Corruption::Malformed("FU-A without FU header"))?;
        let nal_type = fu_header & NAL_TYPE_MASK;
        let (start, end) = (fu_header & FU_START != 0, fu_header & FU_END != 0);
        if start && end {
            return Err(Corruption::Malformed("FU-A with both start and end bits"));
        }
        if start {
            if self.open_fu.is_some() {
                return Err(Corruption::Malformed(
                    "FU-A start inside an unfinished FU-A",
                ));
            }
            self.reserve(START_CODE.len() + 1 + fragment.len())?;
            self.keyframe |= nal_type == NAL_IDR;
            self.annexb.extend_from_slice(&START_CODE);
            self.annexb.push((indicator & NAL_F_NRI_MASK) | nal_type);
            self.open_fu = Some(nal_type);
        } else {
            if self.open_fu != Some(nal_type) {
                return Err(Corruption::Malformed("FU-A fragment without its start"));
            }
            self.reserve(fragment.len())?;
            if end {
                self.open_fu = None;
            }
        }
        self.annexb.extend_from_slice(fragment);
        Ok(())
    }

    fn reserve(&self, more: usize) -> Result<(), Corruption> {
        if self.annexb.len() + more > MAX_ACCESS_UNIT_BYTES {
            Err(Corruption::TooLarge)
        } else {
            Ok(())
        }
    }

    /// Ends the access unit at a marker bit; `Ok(None)` if it held no NAL unit.
    fn finish(self) -> Result<Option<AccessUnit>, Corruption> {
        if self.open_fu.is_some() {
            return Err(Corruption::Malformed(
                "marker bit inside an unfinished FU-A",
            ));
        }
        Ok((!self.annexb.is_empty()).then_some(AccessUnit {
            annexb: self.annexb,
            rtp_timestamp: self.timestamp,
            keyframe: self.keyframe,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::encode::{EncoderSettings, H264Encoder};
    use crate::media::video::pattern::TestPattern;
    use bytes::Bytes;
    use rtc::rtp::codec::h264::H264Payloader;
    use rtc::rtp::packetizer::Payloader;

    /// One RTP packet as the sender would send it.
    #[derive(Debug, Clone)]
    struct Packet {
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    }

    /// Encodes `frames` test-pattern frames at 640x480 and packetizes them like the
    /// sending track does (MTU 1200), starting at sequence number `first_sequence`.
    fn encoded_stream(frames: u32, first_sequence: u16) -> (Vec<Vec<u8>>, Vec<Packet>) {
        let pattern = TestPattern::new(640, 480).unwrap();
        let mut encoder = H264Encoder::new(EncoderSettings {
            width: 640,
            height: 480,
            fps: 30,
            bitrate_kbps: 1500,
        })
        .unwrap();
        let mut payloader = H264Payloader::default();
        let (mut units, mut packets) = (Vec::new(), Vec::new());
        let mut sequence_number = first_sequence;
        for i in 0..frames {
            let annexb = encoder.encode(&pattern.render(i), false).unwrap().annexb;
            let payloads = payloader
                .payload(1200, &Bytes::from(annexb.clone()))
                .unwrap();
            let last = payloads.len() - 1;
            for (k, payload) in payloads.into_iter().enumerate() {
                packets.push(Packet {
                    sequence_number,
                    timestamp: 1_000 + i * 3000,
                    marker: k == last,
                    payload,
                });
                sequence_number = sequence_number.wrapping_add(1);
            }
            units.push(annexb);
        }
        (units, packets)
    }

    fn push(a: &mut H264FrameAssembler, p: &Packet) -> Assembled {
        a.push(p.sequence_number, p.timestamp, p.marker, &p.payload)
    }

    #[test]
    fn fu_a_fragmented_access_units_come_out_byte_identical_on_the_marker() {
        let (units, packets) = encoded_stream(6, 65_520); // wraps the u16 sequence number
        assert!(packets.iter().any(|p| p.payload[0] & NAL_TYPE_MASK == FU_A));
        assert!(
            packets
                .iter()
                .any(|p| p.payload[0] & NAL_TYPE_MASK == STAP_A)
        );
        let mut assembler = H264FrameAssembler::new();
        let mut got = Vec::new();
        for p in &packets {
            let out = push(&mut assembler, p);
            assert_eq!(out.corruption, None);
            // A unit comes out exactly with the marker packet, never before or after.
            assert_eq!(out.access_unit.is_some(), p.marker);
            got.extend(out.access_unit);
        }
        assert_eq!(got.len(), units.len());
        for (i, (au, want)) in got.iter().zip(&units).enumerate() {
            assert_eq!(&au.annexb, want, "access unit {i}");
            assert_eq!(au.rtp_timestamp, 1_000 + i as u32 * 3000);
            assert_eq!(au.keyframe, i == 0);
        }
    }

    #[test]
    fn a_lost_packet_drops_its_access_unit_and_is_flagged() {
        let (units, mut packets) = encoded_stream(3, 100);
        // Lose a middle fragment of the first (multi-packet) access unit.
        let lost = packets.iter().position(|p| p.marker).unwrap() / 2;
        assert!(lost > 0);
        packets.remove(lost);
        let mut assembler = H264FrameAssembler::new();
        let outs: Vec<_> = packets.iter().map(|p| push(&mut assembler, p)).collect();
        let flagged: Vec<_> = outs.iter().filter_map(|o| o.corruption.clone()).collect();
        assert_eq!(
            flagged,
            vec![Corruption::SequenceGap {
                expected: 100 + lost as u16,
                got: 101 + lost as u16
            }]
        );
        let got: Vec<_> = outs.into_iter().filter_map(|o| o.access_unit).collect();
        assert_eq!(
            got.len(),
            2,
            "the broken first unit is dropped, the others kept"
        );
        assert_eq!(got[0].annexb, units[1]);
        assert_eq!(got[1].annexb, units[2]);
    }

    #[test]
    fn a_whole_lost_frame_is_flagged_and_the_next_frame_kept() {
        let (units, packets) = encoded_stream(4, 10);
        let mut assembler = H264FrameAssembler::new();
        let outs: Vec<_> = packets
            .iter()
            .filter(|p| p.timestamp != 1_000 + 2 * 3000) // frame 2 never arrives
            .map(|p| push(&mut assembler, p))
            .collect();
        let flagged = outs.iter().filter(|o| o.corruption.is_some()).count();
        assert_eq!(flagged, 1);
        let got: Vec<_> = outs.into_iter().filter_map(|o| o.access_unit).collect();
        let want = [&units[0], &units[1], &units[3]];
        assert_eq!(got.iter().map(|a| &a.annexb).collect::<Vec<_>>(), want);
    }

    #[test]
    fn access_unit_starts_are_recognised() {
        assert!(starts_access_unit(&[0x41, 0x9A])); // P slice, first_mb_in_slice = 0
        assert!(!starts_access_unit(&[0x41, 0x5A])); // P slice further into the picture
        assert!(starts_access_unit(&[STAP_A, 0, 2, 0x67, 0x42])); // SPS first
        assert!(starts_access_unit(&[FU_A | 0x60, FU_START | 5, 0x88])); // IDR, mb 0
        assert!(!starts_access_unit(&[FU_A | 0x60, 5, 0x88])); // middle fragment
        assert!(!starts_access_unit(&[FU_A]));
        assert!(!starts_access_unit(&[]));
    }

    #[test]
    fn a_timestamp_change_without_marker_drops_the_unfinished_unit() {
        let (units, mut packets) = encoded_stream(3, 0);
        let first_marker = packets.iter().position(|p| p.marker).unwrap();
        packets[first_marker].marker = false;
        let mut assembler = H264FrameAssembler::new();
        let outs: Vec<_> = packets.iter().map(|p| push(&mut assembler, p)).collect();
        assert_eq!(
            outs[first_marker + 1].corruption,
            Some(Corruption::MissingMarker { timestamp: 1_000 })
        );
        let got: Vec<_> = outs.into_iter().filter_map(|o| o.access_unit).collect();
        assert_eq!(
            got.iter().map(|a| &a.annexb).collect::<Vec<_>>(),
            vec![&units[1], &units[2]]
        );
    }

    #[test]
    fn duplicates_and_late_packets_are_ignored() {
        let (units, packets) = encoded_stream(2, 65_535);
        let mut assembler = H264FrameAssembler::new();
        let mut got = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let out = push(&mut assembler, p);
            got.extend(out.access_unit);
            assert_eq!(push(&mut assembler, p), Assembled::default(), "duplicate");
            if i > 0 {
                assert_eq!(
                    push(&mut assembler, &packets[i - 1]),
                    Assembled::default(),
                    "late"
                );
            }
        }
        assert_eq!(
            got.iter().map(|a| &a.annexb).collect::<Vec<_>>(),
            vec![&units[0], &units[1]]
        );
    }

    #[test]
    fn malformed_payloads_are_reported_not_panicked_on() {
        let cases: [(&[u8], bool); 8] = [
            (&[], true),
            (&[STAP_A], true),
            (&[STAP_A, 0x00], true),             // size cut short
            (&[STAP_A, 0x00, 0x05, 0x67], true), // size beyond the packet
            (&[FU_A], true),
            (&[FU_A, 0x05, 1, 2], true), // continuation without start
            (&[FU_A, FU_START | FU_END | 5, 1], true), // both bits
            (&[25, 0, 1, 2], true),      // STAP-B
        ];
        for (i, (payload, marker)) in cases.into_iter().enumerate() {
            let mut a = H264FrameAssembler::new();
            let out = a.push(7, 90, marker, payload);
            assert!(
                matches!(out.corruption, Some(Corruption::Malformed(_))),
                "case {i}"
            );
            assert_eq!(out.access_unit, None);
            // The assembler recovers with the next well-formed frame.
            let next = a.push(8, 3090, true, &[0x65, 0x88, 0x84]);
            assert_eq!(
                next.access_unit.map(|u| u.annexb),
                Some(vec![0, 0, 0, 1, 0x65, 0x88, 0x84])
            );
        }
    }

    #[test]
    fn a_fu_a_open_at_the_marker_is_corrupt() {
        let mut a = H264FrameAssembler::new();
        assert_eq!(
            a.push(1, 0, false, &[FU_A | 0x60, FU_START | 5, 1, 2]),
            Assembled::default()
        );
        let out = a.push(2, 0, true, &[FU_A | 0x60, 5, 3]);
        assert!(matches!(out.corruption, Some(Corruption::Malformed(_))));
        assert_eq!(out.access_unit, None);
    }

    #[test]
    fn an_access_unit_past_the_cap_is_dropped() {
        let mut a = H264FrameAssembler::new();
        let mut fragment = vec![0xAB; 1200];
        fragment[0] = FU_A;
        fragment[1] = FU_START | 1;
        let mut sequence_number = 0u16;
        let mut out = a.push(sequence_number, 0, false, &fragment);
        fragment[1] = 1;
        while out.corruption.is_none() && sequence_number < 10_000 {
            sequence_number += 1;
            out = a.push(sequence_number, 0, false, &fragment);
        }
        assert_eq!(out.corruption, Some(Corruption::TooLarge));
        assert!(usize::from(sequence_number) * 1198 >= MAX_ACCESS_UNIT_BYTES - 1200);
        // The rest of that unit is discarded up to its marker, then assembly resumes.
        assert_eq!(
            a.push(sequence_number + 1, 0, true, &fragment),
            Assembled::default()
        );
        let next = a.push(sequence_number + 2, 3000, true, &[0x41, 0x9A]);
        assert!(next.access_unit.is_some());
    }

    #[test]
    fn types_0_30_31_are_ignored() {
        let mut a = H264FrameAssembler::new();
        assert_eq!(a.push(1, 0, false, &[30, 1, 2]), Assembled::default());
        let out = a.push(2, 0, true, &[0x41, 0x9A]);
        assert_eq!(
            out.access_unit.map(|u| u.annexb),
            Some(vec![0, 0, 0, 1, 0x41, 0x9A])
        );
    }
}
