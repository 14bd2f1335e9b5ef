//! Redundant audio (RED, RFC 2198): every Opus packet also carries the packets sent just
//! before it, so a receiver that lost those (a bottleneck's drop-tail queue drops
//! several in a row while a keyframe crosses it) takes them from a later one.
//!
//! Opus' in-band FEC already carries a low-rate copy of the previous frame; RED adds
//! whole earlier packets, each with its own FEC of the frame before it, so with `d`
//! copies a burst of up to `d + 1` lost packets is recovered. We send [`DISTANCE`].
//!
//! Payload layout (RFC 2198 §3): one 4-byte header per redundant block (`F` = 1, block
//! payload type, 14-bit timestamp offset, 10-bit length), a 1-byte header for the
//! primary block (`F` = 0, payload type), then the blocks' data in the same order,
//! oldest first, primary last.

use bytes::Bytes;
use std::collections::VecDeque;

/// Earlier packets our encoder repeats in each packet: one (as Chromium sends), so with
/// in-band FEC two lost packets in a row are recovered, for the Opus bitrate once more.
/// Two copies (tried 2026-12-01) also recovered three in a row, but their third share of
/// a narrow link cost the video a rung of the send ladder and 60-280 ms of queueing at
/// 300 kbit/s (BENCHMARKS).
pub const DISTANCE: usize = 1;

/// The longest block a RED header can describe: 10 bits of length (RFC 2198 §3).
pub const MAX_BLOCK_LEN: usize = (1 << 10) - 1;

/// The largest timestamp offset a RED header can carry: 14 bits, in RTP clock units.
const MAX_TIMESTAMP_OFFSET: u32 = (1 << 14) - 1;

/// Bytes of one redundant block's header.
const BLOCK_HEADER_LEN: usize = 4;

/// Wraps each outgoing Opus packet with copies of the packets written before it.
#[derive(Debug, Clone)]
pub struct RedEncoder {
    /// The Opus payload type the blocks are tagged with (the same as RED's fmtp names).
    opus_payload_type: u8,
    /// RTP clock units between two consecutive packets (960: 20 ms at 48 kHz).
    timestamp_step: u32,
    /// How many earlier packets each packet repeats.
    distance: usize,
    /// The last `distance` packets written, oldest first.
    history: VecDeque<Bytes>,
}

impl RedEncoder {
    /// An encoder for packets `timestamp_step` RTP clock units apart that repeats the
    /// `distance` packets before each, tagging blocks with `opus_payload_type` (7 bits;
    /// higher bits are dropped).
    pub fn new(opus_payload_type: u8, timestamp_step: u32, distance: usize) -> Self {
        Self {
            opus_payload_type: opus_payload_type & 0x7f,
            timestamp_step,
            distance,
            history: VecDeque::with_capacity(distance),
        }
    }

    /// The RED payload for `primary`, this packet's Opus data: the earlier packets
    /// that fit a RED header (offset and length), oldest first, then `primary`. The
    /// packets are assumed written one after another, `timestamp_step` apart, as the
    /// track writer stamps them.
    pub fn encode(&mut self, primary: &[u8]) -> Vec<u8> {
        let step = self.timestamp_step;
        let pt = self.opus_payload_type;
        let depth = self.history.len();
        let blocks: Vec<(u32, &Bytes)> = self
            .history
            .iter()
            .enumerate()
            .map(|(i, data)| ((depth - i) as u32 * step, data))
            .filter(|(offset, data)| {
                *offset <= MAX_TIMESTAMP_OFFSET && !data.is_empty() && data.len() <= MAX_BLOCK_LEN
            })
            .collect();
        let size = blocks.len() * BLOCK_HEADER_LEN
            + 1
            + blocks.iter().map(|(_, d)| d.len()).sum::<usize>()
            + primary.len();
        let mut out = Vec::with_capacity(size);
        for (offset, data) in &blocks {
            // F = 1, PT, then 14 bits of timestamp offset and 10 bits of length.
            out.push(0x80 | pt);
            let rest = (offset << 10) | data.len() as u32;
            out.extend_from_slice(&rest.to_be_bytes()[1..]);
        }
        out.push(pt);
        for (_, data) in &blocks {
            out.extend_from_slice(data);
        }
        out.extend_from_slice(primary);
        if self.distance == 0 {
            return out;
        }
        if self.history.len() == self.distance {
            self.history.pop_front();
        }
        self.history.push_back(Bytes::copy_from_slice(primary));
        out
    }
}

/// One earlier packet found in a RED payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedundantBlock {
    /// How much earlier than the primary block, in RTP clock units.
    pub timestamp_offset: u32,
    /// The block's data: an Opus packet.
    pub data: Bytes,
}

/// A RED payload taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPayload {
    /// Earlier packets, oldest first.
    pub redundant: Vec<RedundantBlock>,
    /// This packet's own Opus data.
    pub primary: Bytes,
}

/// Why a RED payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    /// The headers run past the end of the payload.
    #[error("RED payload of {0} bytes ends inside its block headers")]
    TruncatedHeader(usize),
    /// The blocks' lengths add up to more than the payload holds.
    #[error("RED blocks need {needed} bytes, the payload has {available}")]
    TruncatedData {
        /// Bytes the headers announce for the redundant blocks.
        needed: usize,
        /// Bytes after the headers.
        available: usize,
    },
}

/// Splits a RED payload (RFC 2198 §3) into its redundant blocks and primary block.
/// Blocks are returned whatever payload type they name: between our peers, RED only
/// ever wraps Opus.
///
/// # Errors
/// [`RedError`] when the headers or the blocks they describe do not fit the payload.
pub fn parse(payload: &Bytes) -> Result<RedPayload, RedError> {
    let mut headers = Vec::new();
    let mut at = 0;
    loop {
        let first = *payload
            .get(at)
            .ok_or(RedError::TruncatedHeader(payload.len()))?;
        if first & 0x80 == 0 {
            at += 1;
            break;
        }
        let bytes = payload
            .get(at..at + BLOCK_HEADER_LEN)
            .ok_or(RedError::TruncatedHeader(payload.len()))?;
        let rest = u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]);
        headers.push((rest >> 10, (rest & 0x3ff) as usize));
        at += BLOCK_HEADER_LEN;
    }
    let needed: usize = headers.iter().map(|(_, len)| len).sum();
    let available = payload.len() - at;
    if needed > available {
        return Err(RedError::TruncatedData { needed, available });
    }
    let mut redundant = Vec::with_capacity(headers.len());
    for (timestamp_offset, len) in headers {
        redundant.push(RedundantBlock {
            timestamp_offset,
            data: payload.slice(at..at + len),
        });
        at += len;
    }
    Ok(RedPayload {
        redundant,
        primary: payload.slice(at..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPUS: u8 = 111;
    const STEP: u32 = 960;

    #[test]
    fn the_first_packet_is_a_primary_block_alone() {
        let mut red = RedEncoder::new(OPUS, STEP, 2);
        let payload = red.encode(b"one");
        assert_eq!(payload, [&[OPUS][..], b"one"].concat());
        let parsed = parse(&Bytes::from(payload)).unwrap();
        assert!(parsed.redundant.is_empty());
        assert_eq!(&parsed.primary[..], b"one");
    }

    #[test]
    fn each_packet_repeats_the_two_before_it_oldest_first() {
        let mut red = RedEncoder::new(OPUS, STEP, 2);
        for p in [&b"one"[..], b"two", b"three"] {
            red.encode(p);
        }
        let payload = red.encode(b"four");
        // Header of "two": F=1|111, offset 1920 << 10 | 3; of "three": 960 << 10 | 5.
        let two = (1920u32 << 10) | 3;
        let three = (960u32 << 10) | 5;
        let mut expected = vec![0x80 | OPUS];
        expected.extend_from_slice(&two.to_be_bytes()[1..]);
        expected.push(0x80 | OPUS);
        expected.extend_from_slice(&three.to_be_bytes()[1..]);
        expected.push(OPUS);
        expected.extend_from_slice(b"twothreefour");
        assert_eq!(payload, expected);

        let parsed = parse(&Bytes::from(payload)).unwrap();
        assert_eq!(
            parsed.redundant,
            vec![
                RedundantBlock {
                    timestamp_offset: 1920,
                    data: Bytes::from_static(b"two"),
                },
                RedundantBlock {
                    timestamp_offset: 960,
                    data: Bytes::from_static(b"three"),
                },
            ]
        );
        assert_eq!(&parsed.primary[..], b"four");
    }

    #[test]
    fn at_distance_one_only_the_packet_before_is_repeated() {
        let mut red = RedEncoder::new(OPUS, STEP, DISTANCE);
        for p in [&b"one"[..], b"two"] {
            red.encode(p);
        }
        let parsed = parse(&Bytes::from(red.encode(b"three"))).unwrap();
        assert_eq!(
            parsed.redundant,
            vec![RedundantBlock {
                timestamp_offset: STEP,
                data: Bytes::from_static(b"two"),
            }]
        );
        assert_eq!(&parsed.primary[..], b"three");
    }

    #[test]
    fn a_packet_too_long_for_a_header_is_not_repeated() {
        let mut red = RedEncoder::new(OPUS, STEP, 2);
        red.encode(&[7u8; MAX_BLOCK_LEN + 1]);
        red.encode(b"small");
        let parsed = parse(&Bytes::from(red.encode(b"last"))).unwrap();
        assert_eq!(parsed.redundant.len(), 1);
        assert_eq!(parsed.redundant[0].timestamp_offset, STEP);
        assert_eq!(&parsed.redundant[0].data[..], b"small");
    }

    #[test]
    fn truncated_payloads_are_errors_not_panics() {
        assert_eq!(parse(&Bytes::new()), Err(RedError::TruncatedHeader(0)));
        // A redundant header cut after two bytes.
        assert_eq!(
            parse(&Bytes::from_static(&[0x80 | OPUS, 0x00])),
            Err(RedError::TruncatedHeader(2))
        );
        // A header announcing 5 bytes of a block, with 2 after the headers.
        let rest = (960u32 << 10) | 5;
        let mut payload = vec![0x80 | OPUS];
        payload.extend_from_slice(&rest.to_be_bytes()[1..]);
        payload.extend_from_slice(&[OPUS, 1, 2]);
        assert_eq!(
            parse(&Bytes::from(payload)),
            Err(RedError::TruncatedData {
                needed: 5,
                available: 2
            })
        );
    }

    #[test]
    fn any_bytes_parse_or_fail_cleanly() {
        // Every short byte string: no panic, and a parsed payload accounts for every byte.
        for len in 0..8usize {
            for seed in 0..256u32 {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u32 * 97) & 0xff) as u8)
                    .collect();
                if let Ok(p) = parse(&Bytes::from(bytes)) {
                    let headers = p.redundant.len() * BLOCK_HEADER_LEN + 1;
                    let data: usize = p.redundant.iter().map(|b| b.data.len()).sum();
                    assert_eq!(headers + data + p.primary.len(), len);
                }
            }
        }
    }
}
