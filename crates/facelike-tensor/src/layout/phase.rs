//! Activations in the m × m polyphase layout (m = 2 or 4) that one sample's Winograd
//! F(m×m, 3×3) layers pass between them ([`PhasePlanes`]), and the conversions from and to
//! zero-bordered planes.
//!
//! A plane's zero-bordered form (row `p = y + 1`, column `q = x + 1`) is split by `p mod m`
//! and `q mod m` into m² phase planes of row pitch `Q = w/m + 1`; tile `t = ty·Q + tx` then
//! finds input value `(r, c)` of its patch in phase `(r mod m, c mod m)` at
//! `t + (r/m)·Q + c/m`, so 16 consecutive tiles are one plain vector load per value, across
//! tile rows too, and their outputs land in the next layer's phases at
//! `t + ((dy+1)/m)·Q + (dx+1)/m`, again plain stores (see `crate::forms::phase`).

use crate::layout::padded::PaddedPlanes;
use crate::simd::{avx512_allowed, deinterleave, Shared, LANES};
use crate::team::parallel_for;
use std::cell::RefCell;

/// Where everything of an `h × w` plane lives in the phase layout of tile side `m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) m: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    /// Tile rows, and the phase planes' row pitch (tiles per tile row, the last ones past
    /// the plane's edge where `w` is a multiple of `m`).
    pub(crate) th: usize,
    pub(crate) pitch: usize,
    /// `th · pitch` tiles, in vectors of 16.
    pub(crate) tiles: usize,
    pub(crate) vectors: usize,
    /// Floats per phase plane; a channel is `m²` of them.
    pub(crate) phase_len: usize,
}

impl Geometry {
    pub(crate) fn new(h: usize, w: usize, m: usize) -> Self {
        assert!(m == 2 || m == 4, "tiles of 2×2 or 4×4");
        let th = h.div_ceil(m);
        let pitch = w / m + 1;
        let tiles = th * pitch;
        let vectors = tiles.div_ceil(LANES);
        // Loads reach `pitch + 1` past the last vector's tiles.
        let phase_len = (vectors * LANES + pitch + 1).next_multiple_of(LANES);
        Geometry {
            m,
            h,
            w,
            th,
            pitch,
            tiles,
            vectors,
            phase_len,
        }
    }

    pub(crate) fn chan(&self) -> usize {
        self.m * self.m * self.phase_len
    }

    /// Where bordered value `(p, q)` of a channel is, from the channel's start.
    pub(crate) fn at(&self, p: usize, q: usize) -> usize {
        ((p % self.m) * self.m + q % self.m) * self.phase_len
            + (p / self.m) * self.pitch
            + q / self.m
    }

    /// Where tile `t`'s output `(dy, dx)` goes in a channel, less `t`: bordered value
    /// `(m·ty + dy + 1, m·tx + dx + 1)`.
    pub(crate) fn out_at(&self, dy: usize, dx: usize) -> usize {
        self.at(dy + 1, dx + 1)
    }

    /// Which lanes of tile vector `v` hold real outputs for output `(dy, dx)`.
    pub(crate) fn valid(&self, v: usize, dy: usize, dx: usize) -> u16 {
        let mut mask = 0u16;
        for lane in 0..LANES {
            let t = v * LANES + lane;
            let (ty, tx) = (t / self.pitch, t % self.pitch);
            if t < self.tiles && self.m * ty + dy < self.h && self.m * tx + dx < self.w {
                mask |= 1 << lane;
            }
        }
        mask
    }
}

/// `c` channels of `h × w` in the phase layout of 2×2 or 4×4 tiles (see the module docs):
/// per channel `m²` phase planes, zero wherever the bordered plane is border or past it.
#[derive(Debug)]
pub struct PhasePlanes {
    /// Channels.
    pub c: usize,
    /// Rows of each channel's (unbordered) plane.
    pub h: usize,
    /// Columns of each channel's (unbordered) plane.
    pub w: usize,
    pub(crate) geometry: Geometry,
    pub(crate) data: Vec<f32>,
}

thread_local! {
    /// Buffers of dropped [`PhasePlanes`], reused on this thread (every float is written
    /// again, so they are never zeroed).
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept in [`POOL`].
const POOLED: usize = 16;

impl PhasePlanes {
    /// Storage for `c` channels whose contents are whatever a reused buffer held.
    pub(crate) fn uninit(c: usize, h: usize, w: usize, m: usize) -> Self {
        let geometry = Geometry::new(h, w, m);
        let len = c * geometry.chan();
        let data = crate::layout::padded::take_buffer(&POOL, len);
        PhasePlanes {
            c,
            h,
            w,
            geometry,
            data,
        }
    }

    /// The tile side this layout is for.
    pub fn tile(&self) -> usize {
        self.geometry.m
    }

    /// The phase layout for `m × m` tiles (2 or 4) of `x`, which must hold real zeros in
    /// its border.
    pub fn from_padded(x: &PaddedPlanes, m: usize, parallel: bool) -> Self {
        let mut out = Self::uninit(x.c, x.h, x.w, m);
        let g = out.geometry;
        let (wh, src_chan, dst_chan) = (x.w + 2, x.chan, g.chan());
        let dst = Shared(out.data.as_mut_ptr());
        let channel = |c: usize| {
            let src = &x.data[c * src_chan..][..(x.h + 2) * wh];
            // SAFETY: channel c's phases belong to this task alone.
            let chan =
                unsafe { std::slice::from_raw_parts_mut(dst.get().add(c * dst_chan), dst_chan) };
            let mut halves = vec![0f32; 4 * g.pitch];
            for (a, phases) in chan.chunks_exact_mut(m * g.phase_len).enumerate() {
                // Bordered rows a, a + m, …: each split by column modulo m (pitch columns a
                // phase: those past the bordered row are zero).
                let rows = (x.h + 2).saturating_sub(a).div_ceil(m);
                for i in 0..rows {
                    let mut row = &src[(m * i + a) * wh..][..wh];
                    if wh < m * g.pitch {
                        // The last phase columns lie past the row: zeros.
                        halves[..wh].copy_from_slice(row);
                        halves[wh..m * g.pitch].fill(0.0);
                        row = &halves[..m * g.pitch];
                    }
                    let at = i * g.pitch;
                    deinterleave(row, m, &mut phases[at..], g.phase_len, g.pitch);
                }
                for phase in phases.chunks_exact_mut(g.phase_len) {
                    phase[rows * g.pitch..].fill(0.0);
                }
            }
        };
        for_channel_groups(x.c, parallel, &channel);
        out
    }

    /// The zero-bordered planes of the same values.
    pub fn to_padded(&self, parallel: bool) -> PaddedPlanes {
        let g = self.geometry;
        let m = g.m;
        let mut out = PaddedPlanes::uninit(self.c, self.h, self.w, self.c);
        let (wh, dst_chan) = (self.w + 2, out.chan);
        let dst = Shared(out.data.as_mut_ptr());
        let channel = |c: usize| {
            let src = &self.data[c * g.chan()..][..g.chan()];
            // SAFETY: channel c's plane belongs to this task alone.
            let plane =
                unsafe { std::slice::from_raw_parts_mut(dst.get().add(c * dst_chan), dst_chan) };
            let mut halves = vec![0f32; 4 * g.pitch];
            for p in 1..=self.h {
                let first = g.at(p, 0);
                // Columns 0..m·pitch, those past the bordered row skipped.
                let n = (m * g.pitch).min(wh);
                let phases = &src[first..first + (m - 1) * g.phase_len + g.pitch];
                let out = &mut plane[p * wh..][..n];
                merge_columns(phases, m, g.phase_len, g.pitch, out, &mut halves);
            }
            crate::layout::padded::zero_border(plane, self.h, self.w);
        };
        for_channel_groups(self.c, parallel, &channel);
        out
    }

    /// Whether every float of both (borders and slack included) is equal.
    #[cfg(test)]
    pub(crate) fn same_layout_values(&self, other: &Self) -> bool {
        let len = self.c * self.geometry.chan();
        self.geometry == other.geometry && self.data[..len] == other.data[..len]
    }

    /// Element `(c, y, x)`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        let g = self.geometry;
        self.data[c * g.chan() + g.at(y + 1, x + 1)]
    }
}

impl Drop for PhasePlanes {
    fn drop(&mut self) {
        crate::layout::padded::give_back_buffer(&POOL, std::mem::take(&mut self.data), POOLED);
    }
}

/// `body(c)` for every channel `c < channels`, in four groups of channels spread over the
/// threads: one channel is too little work to be worth a parallel task.
fn for_channel_groups(channels: usize, parallel: bool, body: &(dyn Fn(usize) + Sync)) {
    const GROUPS: usize = 4;
    let per = channels.div_ceil(GROUPS).max(1);
    parallel_for(channels.div_ceil(per), parallel, &|g: usize| {
        (g * per..((g + 1) * per).min(channels)).for_each(body)
    });
}

/// For `m` phases (2 or 4) of `pitch` values, each `stride` floats from the last, in
/// `phases`: `out[m·j + b] = phase_b[j]`, for the length of `out`. `halves` is scratch of
/// `4 · pitch` floats.
fn merge_columns(
    phases: &[f32],
    m: usize,
    stride: usize,
    pitch: usize,
    out: &mut [f32],
    halves: &mut [f32],
) {
    let phase = |b: usize| &phases[b * stride..b * stride + pitch];
    if m == 2 {
        merge2(phase(0), phase(1), out);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx512_allowed() {
        let p = [phase(0), phase(1), phase(2), phase(3)];
        // SAFETY: AVX-512F checked; the loads and stores are masked to the slices.
        unsafe { merge4_avx512(p, out) };
        return;
    }
    let (even, odd) = halves[..4 * pitch].split_at_mut(2 * pitch);
    merge2(phase(0), phase(2), even);
    merge2(phase(1), phase(3), odd);
    merge2(even, odd, out);
}

/// `out[4j + b] = p[b][j]` for the length of `out`, 64 values at a time: the phases
/// interleaved in pairs (0 with 2, 1 with 3), then the pairs with each other, in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn merge4_avx512(p: [&[f32]; 4], out: &mut [f32]) {
    use crate::simd::first_lanes;
    use std::arch::x86_64::*;
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let n = out.len();
    let mut k = 0;
    while k < n {
        let j = k / 4;
        let [p0, p1, p2, p3] = p.map(|ph| {
            _mm512_maskz_loadu_ps(
                first_lanes(ph.len().saturating_sub(j)),
                ph.as_ptr().wrapping_add(j),
            )
        });
        let (e_lo, e_hi) = (
            _mm512_permutex2var_ps(p0, low, p2),
            _mm512_permutex2var_ps(p0, high, p2),
        );
        let (o_lo, o_hi) = (
            _mm512_permutex2var_ps(p1, low, p3),
            _mm512_permutex2var_ps(p1, high, p3),
        );
        let quarters = [
            _mm512_permutex2var_ps(e_lo, low, o_lo),
            _mm512_permutex2var_ps(e_lo, high, o_lo),
            _mm512_permutex2var_ps(e_hi, low, o_hi),
            _mm512_permutex2var_ps(e_hi, high, o_hi),
        ];
        for (q, v) in quarters.into_iter().enumerate() {
            let at = k + q * LANES;
            let dst = out.as_mut_ptr().wrapping_add(at);
            _mm512_mask_storeu_ps(dst, first_lanes(n.saturating_sub(at)), v);
        }
        k += 4 * LANES;
    }
}

/// `out[2j] = even[j]`, `out[2j + 1] = odd[j]`, for the length of `out`.
fn merge2(even: &[f32], odd: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512_allowed() {
        // SAFETY: AVX-512F checked; the loads and stores are masked to the slices.
        unsafe { merge2_avx512(even, odd, out) };
        return;
    }
    for (k, v) in out.iter_mut().enumerate() {
        *v = if k % 2 == 0 { even[k / 2] } else { odd[k / 2] };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn merge2_avx512(even: &[f32], odd: &[f32], out: &mut [f32]) {
    use crate::simd::first_lanes;
    use std::arch::x86_64::*;
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let n = out.len();
    let mut k = 0;
    while k < n {
        let j = k / 2;
        let e = _mm512_maskz_loadu_ps(
            first_lanes(even.len().saturating_sub(j)),
            even.as_ptr().wrapping_add(j),
        );
        let o = _mm512_maskz_loadu_ps(
            first_lanes(odd.len().saturating_sub(j)),
            odd.as_ptr().wrapping_add(j),
        );
        let dst = out.as_mut_ptr().wrapping_add(k);
        _mm512_mask_storeu_ps(dst, first_lanes(n - k), _mm512_permutex2var_ps(e, low, o));
        _mm512_mask_storeu_ps(
            dst.wrapping_add(LANES),
            first_lanes(n.saturating_sub(k + LANES)),
            _mm512_permutex2var_ps(e, high, o),
        );
        k += 2 * LANES;
    }
}
