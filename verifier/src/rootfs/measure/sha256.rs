//! SHA-256 of several independent messages at once, for hashing many files on few cores.
//!
//! With the x86 SHA extensions, the 64 rounds of one block are a single chain of dependent
//! `sha256rnds2` instructions: one message is hashed at the instruction's latency (about 1.8 GB/s
//! per core on a recent server, what `openssl speed` shows too), while the unit could take a new
//! round before the previous one is done. Compressing the blocks of two messages in the same loop
//! fills those cycles: about 1.8 times as many bytes per core. The digests are plain SHA-256: the
//! lanes share instructions, never data.
//!
//! Without the SHA extensions (or off x86-64) there is one lane, compressed by the `sha2` crate.

/// Bytes in a SHA-256 block.
pub(super) const BLOCK: usize = 64;

/// Most lanes [`compress`] interleaves: a third lane adds nothing (the unit is busy with two)
/// and needs more vector registers than SSE has.
pub(super) const MAX_LANES: usize = 2;

const INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// How many messages are best hashed together on this CPU.
pub(super) fn lanes() -> usize {
    if shani::available() {
        MAX_LANES
    } else {
        1
    }
}

/// One message's hash over the whole blocks compressed so far.
#[derive(Debug, Clone, Copy)]
pub(super) struct State {
    h: [u32; 8],
    blocks: u64,
}

impl State {
    pub(super) fn new() -> State {
        State {
            h: INITIAL,
            blocks: 0,
        }
    }

    /// The digest of the message: what was compressed, then `tail`, which must be shorter than a
    /// block.
    pub(super) fn finish(mut self, tail: &[u8]) -> [u8; 32] {
        debug_assert!(tail.len() < BLOCK);
        let tail = tail.get(..tail.len().min(BLOCK - 1)).unwrap_or_default();
        let bits = self
            .blocks
            .wrapping_mul(BLOCK as u64)
            .wrapping_add(tail.len() as u64)
            .wrapping_mul(8);
        // The tail, a 1 bit, zeros, and the length in bits: one block, or two when the length
        // does not fit after the tail.
        let mut last = [0u8; 2 * BLOCK];
        let used = if tail.len() < BLOCK - 8 {
            BLOCK
        } else {
            2 * BLOCK
        };
        if let Some(dst) = last.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        if let Some(b) = last.get_mut(tail.len()) {
            *b = 0x80;
        }
        if let Some(dst) = last.get_mut(used - 8..used) {
            dst.copy_from_slice(&bits.to_be_bytes());
        }
        compress(
            std::slice::from_mut(&mut self),
            &[last.get(..used).unwrap_or_default()],
        );
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.h) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// Compresses `data[i]` into `states[i]`, every lane at once. Every `data[i]` should hold the
/// same number of whole blocks; only as many blocks as the shortest holds are taken from each.
/// At most [`MAX_LANES`] lanes at once are interleaved; more are done in groups.
pub(super) fn compress(states: &mut [State], data: &[&[u8]]) {
    let blocks = data.iter().map(|d| d.len() / BLOCK).min().unwrap_or(0);
    if blocks == 0 {
        return;
    }
    let len = blocks * BLOCK;
    for (states, data) in states.chunks_mut(MAX_LANES).zip(data.chunks(MAX_LANES)) {
        if !shani::compress(states, data, len) {
            for (s, d) in states.iter_mut().zip(data) {
                portable(&mut s.h, d.get(..len).unwrap_or_default());
            }
        }
        for s in states.iter_mut() {
            s.blocks = s.blocks.wrapping_add(blocks as u64);
        }
    }
}

/// One lane through the `sha2` crate (its own choice of implementation for this CPU).
fn portable(h: &mut [u32; 8], data: &[u8]) {
    use sha2::digest::generic_array::GenericArray;
    for block in data.chunks_exact(BLOCK) {
        sha2::compress256(h, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use super::{State, BLOCK};
    use std::arch::x86_64::*;

    /// The round constants: the first 32 bits of the fractional parts of the cube roots of the
    /// first 64 primes (FIPS 180-4, 4.2.2).
    const K: [u32; 64] = [
        0x428a_2f98,
        0x7137_4491,
        0xb5c0_fbcf,
        0xe9b5_dba5,
        0x3956_c25b,
        0x59f1_11f1,
        0x923f_82a4,
        0xab1c_5ed5,
        0xd807_aa98,
        0x1283_5b01,
        0x2431_85be,
        0x550c_7dc3,
        0x72be_5d74,
        0x80de_b1fe,
        0x9bdc_06a7,
        0xc19b_f174,
        0xe49b_69c1,
        0xefbe_4786,
        0x0fc1_9dc6,
        0x240c_a1cc,
        0x2de9_2c6f,
        0x4a74_84aa,
        0x5cb0_a9dc,
        0x76f9_88da,
        0x983e_5152,
        0xa831_c66d,
        0xb003_27c8,
        0xbf59_7fc7,
        0xc6e0_0bf3,
        0xd5a7_9147,
        0x06ca_6351,
        0x1429_2967,
        0x27b7_0a85,
        0x2e1b_2138,
        0x4d2c_6dfc,
        0x5338_0d13,
        0x650a_7354,
        0x766a_0abb,
        0x81c2_c92e,
        0x9272_2c85,
        0xa2bf_e8a1,
        0xa81a_664b,
        0xc24b_8b70,
        0xc76c_51a3,
        0xd192_e819,
        0xd699_0624,
        0xf40e_3585,
        0x106a_a070,
        0x19a4_c116,
        0x1e37_6c08,
        0x2748_774c,
        0x34b0_bcb5,
        0x391c_0cb3,
        0x4ed8_aa4a,
        0x5b9c_ca4f,
        0x682e_6ff3,
        0x748f_82ee,
        0x78a5_636f,
        0x84c8_7814,
        0x8cc7_0208,
        0x90be_fffa,
        0xa450_6ceb,
        0xbef9_a3f7,
        0xc671_78f2,
    ];

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }

    /// The first `len` bytes (whole blocks, at most what each lane holds) of each lane, or false
    /// when these instructions are not there or the lanes are too many.
    pub(super) fn compress(states: &mut [State], data: &[&[u8]], len: usize) -> bool {
        if !available() || !len.is_multiple_of(BLOCK) || data.iter().any(|d| d.len() < len) {
            return false;
        }
        // SAFETY: the instructions are available (checked above) and every lane holds at least
        // `len` bytes, a whole number of blocks.
        unsafe {
            match (states, data) {
                ([a], [x]) => lanes([&mut a.h], [*x], len / BLOCK),
                ([a, b], [x, y]) => lanes([&mut a.h, &mut b.h], [*x, *y], len / BLOCK),
                _ => return false,
            }
        }
        true
    }

    /// Four rounds of every lane: the message schedule's next four words first when `$schedule`
    /// (from the four vectors of the previous 16 words, oldest first, replacing the oldest), then
    /// the rounds with the constants of rounds `4 * $quad ..`.
    macro_rules! quad {
        ($n:expr, $abef:ident, $cdgh:ident, $quad:expr, $schedule:expr,
         $w0:ident, $w1:ident, $w2:ident, $w3:ident) => {
            let k = _mm_loadu_si128(K.as_ptr().add($quad * 4).cast());
            for l in 0..$n {
                if $schedule {
                    let s = _mm_sha256msg1_epu32($w0[l], $w1[l]);
                    let s = _mm_add_epi32(s, _mm_alignr_epi8($w3[l], $w2[l], 4));
                    $w0[l] = _mm_sha256msg2_epu32(s, $w3[l]);
                }
                let wk = _mm_add_epi32($w0[l], k);
                $cdgh[l] = _mm_sha256rnds2_epu32($cdgh[l], $abef[l], wk);
                $abef[l] = _mm_sha256rnds2_epu32($abef[l], $cdgh[l], _mm_shuffle_epi32(wk, 0x0E));
            }
        };
    }

    /// `blocks` blocks of each of `N` messages. The lanes run the same instructions one after
    /// the other; the core overlaps their independent chains.
    ///
    /// # Safety
    /// The CPU has SHA, SSE2, SSSE3 and SSE4.1; every `data[l]` holds `blocks` blocks.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn lanes<const N: usize>(h: [&mut [u32; 8]; N], data: [&[u8]; N], blocks: usize) {
        // Big-endian words: bytes reversed within each 32-bit lane.
        let order = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
        // The instructions keep the state as (a, b, e, f) and (c, d, g, h).
        let mut abef = [_mm_setzero_si128(); N];
        let mut cdgh = [_mm_setzero_si128(); N];
        for l in 0..N {
            let p = h[l].as_ptr().cast::<__m128i>();
            let badc = _mm_shuffle_epi32(_mm_loadu_si128(p), 0xB1);
            let efgh = _mm_shuffle_epi32(_mm_loadu_si128(p.add(1)), 0x1B);
            abef[l] = _mm_alignr_epi8(badc, efgh, 8);
            cdgh[l] = _mm_blend_epi16(efgh, badc, 0xF0);
        }
        for b in 0..blocks {
            let (was_abef, was_cdgh) = (abef, cdgh);
            let mut w0 = [_mm_setzero_si128(); N];
            let (mut w1, mut w2, mut w3) = (w0, w0, w0);
            for l in 0..N {
                let p = data[l].as_ptr().add(b * BLOCK).cast::<__m128i>();
                w0[l] = _mm_shuffle_epi8(_mm_loadu_si128(p), order);
                w1[l] = _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), order);
                w2[l] = _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), order);
                w3[l] = _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), order);
            }
            quad!(N, abef, cdgh, 0, false, w0, w1, w2, w3);
            quad!(N, abef, cdgh, 1, false, w1, w2, w3, w0);
            quad!(N, abef, cdgh, 2, false, w2, w3, w0, w1);
            quad!(N, abef, cdgh, 3, false, w3, w0, w1, w2);
            quad!(N, abef, cdgh, 4, true, w0, w1, w2, w3);
            quad!(N, abef, cdgh, 5, true, w1, w2, w3, w0);
            quad!(N, abef, cdgh, 6, true, w2, w3, w0, w1);
            quad!(N, abef, cdgh, 7, true, w3, w0, w1, w2);
            quad!(N, abef, cdgh, 8, true, w0, w1, w2, w3);
            quad!(N, abef, cdgh, 9, true, w1, w2, w3, w0);
            quad!(N, abef, cdgh, 10, true, w2, w3, w0, w1);
            quad!(N, abef, cdgh, 11, true, w3, w0, w1, w2);
            quad!(N, abef, cdgh, 12, true, w0, w1, w2, w3);
            quad!(N, abef, cdgh, 13, true, w1, w2, w3, w0);
            quad!(N, abef, cdgh, 14, true, w2, w3, w0, w1);
            quad!(N, abef, cdgh, 15, true, w3, w0, w1, w2);
            for l in 0..N {
                abef[l] = _mm_add_epi32(abef[l], was_abef[l]);
                cdgh[l] = _mm_add_epi32(cdgh[l], was_cdgh[l]);
            }
        }
        for l in 0..N {
            let feba = _mm_shuffle_epi32(abef[l], 0x1B);
            let dchg = _mm_shuffle_epi32(cdgh[l], 0xB1);
            let p = h[l].as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
            _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod shani {
    use super::State;

    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn compress(_: &mut [State], _: &[&[u8]], _: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    /// Each message hashed in lanes, its whole blocks `step` blocks at a time.
    fn in_lanes(messages: &[Vec<u8>], step: usize) -> Vec<[u8; 32]> {
        let mut states = vec![State::new(); messages.len()];
        let whole = messages.iter().map(|m| m.len() / BLOCK).min().unwrap_or(0);
        let mut at = 0;
        while at < whole {
            let n = step.min(whole - at);
            let chunks: Vec<&[u8]> = messages
                .iter()
                .map(|m| &m[at * BLOCK..(at + n) * BLOCK])
                .collect();
            compress(&mut states, &chunks);
            at += n;
        }
        // The longer messages' remaining blocks alone, then every tail.
        states
            .into_iter()
            .zip(messages)
            .map(|(mut s, m)| {
                let rest = &m[at * BLOCK..];
                let blocks = rest.len() / BLOCK * BLOCK;
                compress(std::slice::from_mut(&mut s), &[&rest[..blocks]]);
                s.finish(&rest[blocks..])
            })
            .collect()
    }

    #[test]
    fn known_answers() {
        let empty = in_lanes(&[Vec::new()], 1);
        assert_eq!(
            hex::encode(empty[0]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let abc = in_lanes(&[b"abc".to_vec()], 1);
        assert_eq!(
            hex::encode(abc[0]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // 56 bytes: the length no longer fits in the tail's block.
        let two = in_lanes(
            &[b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec()],
            1,
        );
        assert_eq!(
            hex::encode(two[0]),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn lanes_and_the_portable_path_agree_on_whole_blocks() {
        let data: Vec<u8> = (0..64 * 40).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut fast = State::new();
        compress(std::slice::from_mut(&mut fast), &[&data]);
        let mut slow = State::new();
        portable(&mut slow.h, &data);
        assert_eq!(fast.h, slow.h);
        assert_eq!(lanes() > 1, shani::available());
    }

    #[test]
    fn more_lanes_than_interleaved_are_done_in_groups() {
        let messages: Vec<Vec<u8>> = (0..MAX_LANES * 2 + 1)
            .map(|i| vec![i as u8; 64 * 5 + i])
            .collect();
        let expected: Vec<[u8; 32]> = messages.iter().map(|m| Sha256::digest(m).into()).collect();
        assert_eq!(in_lanes(&messages, 2), expected);
    }

    proptest! {
        #[test]
        fn every_lane_is_the_sha256_of_its_message(
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 1..=MAX_LANES),
            step in 1usize..4,
        ) {
            let expected: Vec<[u8; 32]> = messages.iter().map(|m| Sha256::digest(m).into()).collect();
            prop_assert_eq!(in_lanes(&messages, step), expected);
        }
    }
}
