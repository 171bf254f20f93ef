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

/// Which instructions compress the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    /// The x86 SHA extensions, [`MAX_LANES`] messages interleaved.
    ShaNi,
    /// The `sha2` crate, one message at a time (its own choice of implementation for this CPU).
    Portable,
}

impl Backend {
    /// The fastest this CPU has.
    pub(super) fn detect() -> Backend {
        if shani::available() {
            Backend::ShaNi
        } else {
            Backend::Portable
        }
    }

    /// How many messages are best hashed together with it.
    pub(super) fn lanes(self) -> usize {
        match self {
            Backend::ShaNi => MAX_LANES,
            Backend::Portable => 1,
        }
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

    /// The digest of the message: what was compressed, then `rest` (of any length).
    pub(super) fn finish(self, backend: Backend, rest: &[u8]) -> [u8; 32] {
        let mut state = self;
        // Whole blocks of the rest first: a longer rest is never cut, whatever the caller left.
        let taken = compress(backend, &mut [(&mut state, rest)]);
        let tail = rest.get(taken * BLOCK..).unwrap_or_default();
        debug_assert!(tail.len() < BLOCK);
        // SHA-256 counts the length in bits modulo 2^64 (FIPS 180-4, 5.1.1).
        let bits = state
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
        last[..tail.len()].copy_from_slice(tail);
        last[tail.len()] = 0x80;
        last[used - 8..used].copy_from_slice(&bits.to_be_bytes());
        let padded = compress(backend, &mut [(&mut state, &last[..used])]);
        debug_assert_eq!(padded * BLOCK, used);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(state.h) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// Compresses the same number of whole blocks of every lane's data into its state: as many as
/// the shortest lane holds, which it returns. What is left of each lane is the caller's to pass
/// again. At most [`MAX_LANES`] lanes are interleaved; more are done in groups.
pub(super) fn compress(backend: Backend, lanes: &mut [(&mut State, &[u8])]) -> usize {
    let blocks = lanes
        .iter()
        .map(|(_, d)| d.len() / BLOCK)
        .min()
        .unwrap_or(0);
    if blocks == 0 {
        return 0;
    }
    for group in lanes.chunks_mut(MAX_LANES) {
        // The SHA extensions' path checks the CPU itself: asking for them where they are
        // missing falls back to the portable path, never to an illegal instruction.
        if backend != Backend::ShaNi || !shani::compress(group, blocks) {
            for (s, d) in group.iter_mut() {
                portable(&mut s.h, d, blocks);
            }
        }
        for (s, _) in group.iter_mut() {
            s.blocks = s.blocks.wrapping_add(blocks as u64);
        }
    }
    blocks
}

/// The first `blocks` blocks of `data` (which holds at least that many) through the `sha2` crate.
fn portable(h: &mut [u32; 8], data: &[u8], blocks: usize) {
    use sha2::digest::generic_array::GenericArray;
    let mut taken = 0;
    for block in data.chunks_exact(BLOCK).take(blocks) {
        sha2::compress256(h, std::slice::from_ref(GenericArray::from_slice(block)));
        taken += 1;
    }
    // Fewer would be a digest of another message: stop the measurement instead.
    assert_eq!(taken, blocks, "fewer blocks than asked to compress");
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

    /// The first `blocks` blocks of each of one or two lanes, or false when these instructions
    /// are not there, a lane holds fewer blocks, or the lanes are too many.
    pub(super) fn compress(group: &mut [(&mut State, &[u8])], blocks: usize) -> bool {
        let Some(len) = blocks.checked_mul(BLOCK) else {
            return false;
        };
        if !available() || group.iter().any(|(_, d)| d.len() < len) {
            return false;
        }
        // SAFETY: the instructions are available (checked above) and every lane holds at least
        // `blocks` blocks.
        unsafe {
            match group {
                [(a, x)] => lanes([&mut a.h], [*x], blocks),
                [(a, x), (b, y)] => lanes([&mut a.h, &mut b.h], [*x, *y], blocks),
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

    pub(super) fn compress(_: &mut [(&mut State, &[u8])], _: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    /// Every backend this CPU can run: the portable one everywhere, the SHA extensions where
    /// they are.
    fn backends() -> Vec<Backend> {
        let mut all = vec![Backend::Portable];
        if shani::available() {
            all.push(Backend::ShaNi);
        }
        all
    }

    /// Each message hashed in lanes, their common whole blocks `step` blocks at a time, then the
    /// rest of each alone.
    fn in_lanes(backend: Backend, messages: &[&[u8]], step: usize) -> Vec<[u8; 32]> {
        let mut states = vec![State::new(); messages.len()];
        let whole = messages.iter().map(|m| m.len() / BLOCK).min().unwrap_or(0);
        let mut at = 0;
        while at < whole {
            let n = step.min(whole - at);
            let mut lanes: Vec<(&mut State, &[u8])> = states
                .iter_mut()
                .zip(messages)
                .map(|(s, m)| (s, &m[at * BLOCK..(at + n) * BLOCK]))
                .collect();
            assert_eq!(compress(backend, &mut lanes), n);
            at += n;
        }
        states
            .into_iter()
            .zip(messages)
            .map(|(s, m)| s.finish(backend, &m[at * BLOCK..]))
            .collect()
    }

    fn sha256(m: &[u8]) -> [u8; 32] {
        Sha256::digest(m).into()
    }

    /// Bytes that differ from block to block and from message to message.
    fn message(len: usize, seed: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 7) ^ seed.wrapping_mul(101)) as u8)
            .collect()
    }

    #[test]
    fn known_answers_on_every_backend() {
        // FIPS 180-4's examples (and the NIST vectors' million a's), independent of `sha2`.
        let million = vec![b'a'; 1_000_000];
        let vectors: [(&[u8], &str); 5] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            // 56 bytes: the length no longer fits in the tail's block.
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
            ),
            (
                &million,
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
            ),
        ];
        for backend in backends() {
            for (m, want) in vectors {
                for step in [1, 7] {
                    assert_eq!(
                        hex::encode(in_lanes(backend, &[m], step)[0]),
                        want,
                        "{backend:?}, {} bytes",
                        m.len()
                    );
                }
                // And the whole message left to `finish`.
                assert_eq!(hex::encode(State::new().finish(backend, m)), want);
            }
        }
    }

    #[test]
    fn every_length_up_to_five_blocks_is_the_sha256_of_its_message() {
        for backend in backends() {
            for len in 0..=5 * BLOCK + 1 {
                let m = message(len, len);
                let want = sha256(&m);
                for step in [1, 2, 5] {
                    assert_eq!(
                        in_lanes(backend, &[&m], step)[0],
                        want,
                        "{backend:?}, {len} bytes, {step} blocks at a time"
                    );
                }
                assert_eq!(State::new().finish(backend, &m), want, "{backend:?}, {len}");
            }
        }
    }

    #[test]
    fn two_lanes_of_every_pair_of_lengths_hash_independently() {
        for backend in backends() {
            for a in 0..=2 * BLOCK + 1 {
                for b in 0..=2 * BLOCK + 1 {
                    let (x, y) = (message(a, 1), message(b, 2));
                    assert_eq!(
                        in_lanes(backend, &[&x, &y], 1),
                        [sha256(&x), sha256(&y)],
                        "{backend:?}, {a} and {b} bytes"
                    );
                }
            }
            // Two lanes holding the same message (one buffer read twice) are two digests of it.
            let m = message(300, 3);
            assert_eq!(in_lanes(backend, &[&m, &m], 2), [sha256(&m), sha256(&m)]);
        }
    }

    #[test]
    fn lanes_of_different_lengths_give_the_shortest_ones_blocks_and_keep_the_rest() {
        for backend in backends() {
            let (x, y) = (message(3 * BLOCK + 10, 4), message(BLOCK + 63, 5));
            let (mut a, mut b) = (State::new(), State::new());
            let taken = compress(backend, &mut [(&mut a, &x[..]), (&mut b, &y[..])]);
            assert_eq!(taken, 1);
            assert_eq!((a.blocks, b.blocks), (1, 1));
            assert_eq!(a.finish(backend, &x[BLOCK..]), sha256(&x), "{backend:?}");
            assert_eq!(b.finish(backend, &y[BLOCK..]), sha256(&y), "{backend:?}");
            // A lane without a whole block: nothing is taken from any lane.
            let mut c = State::new();
            let mut d = State::new();
            assert_eq!(
                compress(backend, &mut [(&mut c, &x[..]), (&mut d, &y[..63])]),
                0
            );
            assert_eq!((c.blocks, c.h), (0, INITIAL));
            assert_eq!(compress(backend, &mut []), 0);
        }
    }

    #[test]
    fn the_sha_extensions_and_the_portable_path_agree_on_whole_blocks() {
        let data = message(BLOCK * 40, 6);
        let mut fast = State::new();
        compress(Backend::detect(), &mut [(&mut fast, &data[..])]);
        let mut slow = State::new();
        compress(Backend::Portable, &mut [(&mut slow, &data[..])]);
        assert_eq!(fast.h, slow.h);
        assert_eq!(fast.blocks, 40);
        assert_eq!(Backend::detect() == Backend::ShaNi, shani::available());
        assert_eq!(Backend::ShaNi.lanes(), MAX_LANES);
        assert_eq!(Backend::Portable.lanes(), 1);
    }

    #[test]
    fn more_lanes_than_interleaved_are_done_in_groups() {
        for backend in backends() {
            let messages: Vec<Vec<u8>> = (0..MAX_LANES * 2 + 1)
                .map(|i| message(BLOCK * 5 + i * 9, i))
                .collect();
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let want: Vec<[u8; 32]> = messages.iter().map(|m| sha256(m)).collect();
            assert_eq!(in_lanes(backend, &refs, 2), want, "{backend:?}");
        }
    }

    /// The padding of FIPS 180-4, 5.1.1, written out for the test: `tail`, a 1 bit, zeros to 56
    /// bytes modulo 64, and the length in bits as a 64-bit big-endian number.
    fn padded(tail: &[u8], bits: u64) -> Vec<u8> {
        let mut p = tail.to_vec();
        p.push(0x80);
        while p.len() % BLOCK != BLOCK - 8 {
            p.push(0);
        }
        p.extend_from_slice(&bits.to_be_bytes());
        p
    }

    #[test]
    fn lengths_beyond_32_bits_of_bits_are_encoded_whole() {
        // Any state will do: only the padding depends on how many blocks came before.
        let mut h = INITIAL;
        portable(&mut h, &message(BLOCK, 7), 1);
        let blocks_before = [
            (1u64 << 23) - 1, // just under 2^32 bits
            1 << 23,          // 512 MiB: the high word of the length becomes 1
            (1 << 26) + 3,    // past 4 GiB
            (1 << 35) + 12_345,
            (1 << 55) - 1, // just under 2^64 bits: the last length SHA-256 defines
        ];
        for backend in backends() {
            for &blocks in &blocks_before {
                for tail_len in [0, 1, 55, 56, 63] {
                    let tail = message(tail_len, 8);
                    let bits = (blocks * BLOCK as u64 + tail_len as u64) * 8;
                    let mut want = h;
                    let p = padded(&tail, bits);
                    portable(&mut want, &p, p.len() / BLOCK);
                    let mut expected = [0u8; 32];
                    for (o, w) in expected.chunks_exact_mut(4).zip(want) {
                        o.copy_from_slice(&w.to_be_bytes());
                    }
                    let state = State { h, blocks };
                    assert_eq!(
                        state.finish(backend, &tail),
                        expected,
                        "{backend:?}, {blocks} blocks and {tail_len} bytes"
                    );
                }
            }
        }
    }

    #[test]
    fn a_message_over_512_mib_hashes_as_sha2_hashes_it() {
        // 2^29 + 70 bytes: the length in bits needs 33 bits. The blocks go through `sha2`
        // (fast in tests), the end of the message through `finish`.
        let zeros = vec![0u8; 1 << 20];
        let blocks = (1u64 << 29) / BLOCK as u64;
        let mut state = State::new();
        let mut reference = Sha256::new();
        for _ in 0..(1 << 9) {
            portable(&mut state.h, &zeros, zeros.len() / BLOCK);
            reference.update(&zeros);
        }
        state.blocks = blocks;
        let tail = message(70, 9);
        reference.update(&tail);
        let want: [u8; 32] = reference.finalize().into();
        for backend in backends() {
            assert_eq!(state.finish(backend, &tail), want, "{backend:?}");
        }
    }

    proptest! {
        #[test]
        fn every_lane_is_the_sha256_of_its_message(
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1200), 1..=MAX_LANES + 1),
            step in 1usize..6,
        ) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let want: Vec<[u8; 32]> = messages.iter().map(|m| sha256(m)).collect();
            for backend in backends() {
                prop_assert_eq!(in_lanes(backend, &refs, step), want.clone());
            }
        }
    }
}
