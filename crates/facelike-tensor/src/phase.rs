//! One sample's 3×3, stride-1, padding-1 layers by Winograd's F(m×m, 3×3) (m = 2 or 4), on
//! activations kept in an m × m polyphase layout from layer to layer.
//!
//! Each m×m block of outputs (a tile) comes from the (m+2)×(m+2) input patch around it:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, (m+2)² multiply-adds per input channel where the
//! direct form does 9·m² (16 against 36 for m = 2, 36 against 144 for m = 4). The
//! element-wise products over all channels are (m+2)² small matrix products, run on the
//! direct convolution's register-blocked kernel.
//!
//! The layout is what makes the transforms cheap for one sample. A plane's zero-bordered
//! form (row `p = y + 1`, column `q = x + 1`) is split by `p mod m` and `q mod m` into m²
//! phase planes of row pitch `Q = w/m + 1`; tile `t = ty·Q + tx` then finds input value
//! `(r, c)` of its patch in phase `(r mod m, c mod m)` at `t + (r/m)·Q + c/m`, so 16
//! consecutive tiles are one plain vector load per value, across tile rows too. The outputs
//! of those tiles land in the next layer's phases at `t + ((dy+1)/m)·Q + (dx+1)/m`, again
//! plain stores: no layer copies, gathers or scatters its activations. (A tile row may wrap
//! into the next at its last patch column, which only a tile's last output column reads,
//! in exact arithmetic and in the transforms' floats alike; those outputs lie past the
//! plane's edge and are stored as zeros.)
//!
//! The transforms are short sums with small exact coefficients, so the results differ from
//! direct convolution's by float rounding alone (the tests bound it).

use crate::direct::{deinterleave, run_block, Block, Shared, LANES};
use crate::team::parallel_for;
use crate::{Conv2d, DirectConv, PaddedPlanes};
use std::cell::RefCell;
use std::sync::OnceLock;

/// The filter transform `G` of F(2×2, 3×3) (4×3); F(4×4, 3×3)'s is `Winograd3x3`'s.
const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Where everything of an `h × w` plane lives in the phase layout of tile side `m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    m: usize,
    h: usize,
    w: usize,
    /// Tile rows, and the phase planes' row pitch (tiles per tile row, the last ones past
    /// the plane's edge where `w` is a multiple of `m`).
    th: usize,
    pitch: usize,
    /// `th · pitch` tiles, in vectors of 16.
    tiles: usize,
    vectors: usize,
    /// Floats per phase plane; a channel is `m²` of them.
    phase_len: usize,
}

impl Geometry {
    fn new(h: usize, w: usize, m: usize) -> Self {
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

    fn chan(&self) -> usize {
        self.m * self.m * self.phase_len
    }

    /// Where bordered value `(p, q)` of a channel is, from the channel's start.
    fn at(&self, p: usize, q: usize) -> usize {
        ((p % self.m) * self.m + q % self.m) * self.phase_len
            + (p / self.m) * self.pitch
            + q / self.m
    }

    /// Where tile `t`'s output `(dy, dx)` goes in a channel, less `t`: bordered value
    /// `(m·ty + dy + 1, m·tx + dx + 1)`.
    fn out_at(&self, dy: usize, dx: usize) -> usize {
        self.at(dy + 1, dx + 1)
    }

    /// Which lanes of tile vector `v` hold real outputs for output `(dy, dx)`.
    fn valid(&self, v: usize, dy: usize, dx: usize) -> u16 {
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
    pub c: usize,
    pub h: usize,
    pub w: usize,
    geometry: Geometry,
    data: Vec<f32>,
}

thread_local! {
    /// Buffers of dropped [`PhasePlanes`], reused on this thread (every float is written
    /// again, so they are never zeroed).
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    /// A chunk's transformed inputs and products, reused between calls on one thread.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Buffers kept in [`POOL`].
const POOLED: usize = 16;

impl PhasePlanes {
    /// Storage for `c` channels whose contents are whatever a reused buffer held.
    fn uninit(c: usize, h: usize, w: usize, m: usize) -> Self {
        let geometry = Geometry::new(h, w, m);
        let len = c * geometry.chan();
        let data = crate::padded::take_buffer(&POOL, len);
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
            crate::padded::zero_border(plane, self.h, self.w);
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
        crate::padded::give_back_buffer(&POOL, std::mem::take(&mut self.data), POOLED);
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
    if DirectConv::supported() {
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
    use crate::direct::first_lanes;
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
    if DirectConv::supported() {
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
    use crate::direct::first_lanes;
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

/// Whether `conv` is a 3×3, stride-1, padding-1 convolution and the CPU has AVX-512F: what
/// the one-sample Winograd forms take.
pub(crate) fn winograd_fits(conv: &Conv2d) -> bool {
    let shape = (
        conv.kh,
        conv.kw,
        conv.stride_y,
        conv.stride_x,
        conv.pad_y,
        conv.pad_x,
    );
    DirectConv::supported() && shape == (3, 3, 1, 1, 1, 1)
}

/// Winograd F(m×m, 3×3)'s transformed weights `U = G g Gᵀ` of a 3×3 `conv`, for tile side
/// `m` (2 or 4), laid out `[ξ][block of ocb filters][in][ocb]` and padded with zero
/// filters; computed in f64 and rounded once.
pub(crate) fn winograd_weights(conv: &Conv2d, ocb: usize, m: usize) -> Vec<f32> {
    let g_rows: &[[f64; 3]] = if m == 2 { &G2 } else { &crate::winograd::G };
    let a = g_rows.len();
    let (oc, ic) = (conv.out_channels, conv.in_channels);
    let blocks = oc.div_ceil(ocb);
    let mut u = vec![0f32; a * a * blocks * ocb * ic];
    for o in 0..oc {
        for i in 0..ic {
            let g = &conv.weights[(o * ic + i) * 9..][..9];
            let gg: Vec<[f64; 3]> = g_rows
                .iter()
                .map(|gr| {
                    std::array::from_fn(|c| (0..3).map(|k| gr[k] * g[k * 3 + c] as f64).sum())
                })
                .collect();
            for (r, gg_row) in gg.iter().enumerate() {
                for (c, g_row) in g_rows.iter().enumerate() {
                    let v: f64 = (0..3).map(|k| gg_row[k] * g_row[k]).sum();
                    let at = (((r * a + c) * blocks + o / ocb) * ic + i) * ocb + o % ocb;
                    u[at] = v as f32;
                }
            }
        }
    }
    u
}

/// A 3×3, stride-1, padding-1 convolution prepared for [`PhasePlanes`] of one tile side;
/// built only where the CPU has AVX-512F.
#[derive(Clone, Debug)]
pub struct PhaseWinograd {
    pub out_channels: usize,
    pub in_channels: usize,
    /// The output tile side (2 or 4).
    pub tile: usize,
    block: Block,
    /// Transformed weights `[ξ][channel block][in][OCB]`, padded with zero filters.
    u: Vec<f32>,
    bias: Vec<f32>,
    /// `OCB` zeros: the products have no bias (it is added after the output transform).
    zeros: Vec<f32>,
    /// The lane masks and offsets of the first input geometry seen (a layer of one network
    /// always sees the same), so that calls do not recompute them.
    plan: OnceLock<Plan>,
}

/// What [`PhaseWinograd::forward`] derives from the input's geometry alone.
#[derive(Clone, Debug)]
struct Plan {
    geometry: Geometry,
    /// `masks[v·m² + dy·m + dx]`: the lanes of tile vector `v` with a real output `(dy, dx)`.
    masks: Vec<u16>,
    /// Where patch value `(r, c)` of tile 0 is (index `r·(m+2) + c`), and where output
    /// `(dy, dx)` of tile 0 goes (index `dy·m + dx`), in a channel.
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// Where each phase's first tile output is: phase (a, b) takes output (dy, dx) with
    /// dy + 1 ≡ a, dx + 1 ≡ b (mod m).
    heads: Vec<usize>,
}

impl Plan {
    fn new(g: Geometry) -> Self {
        let (m, a) = (g.m, g.m + 2);
        Plan {
            geometry: g,
            masks: (0..g.vectors)
                .flat_map(|v| (0..m * m).map(move |k| g.valid(v, k / m, k % m)))
                .collect(),
            inputs: (0..a * a).map(|k| g.at(k / a, k % a)).collect(),
            outputs: (0..m * m).map(|k| g.out_at(k / m, k % m)).collect(),
            heads: (0..m * m)
                .map(|k| g.out_at((k / m + m - 1) % m, (k % m + m - 1) % m) % g.phase_len)
                .collect(),
        }
    }

    /// Zeroes what no tile writes in `channels` of the output at `dst`: each phase's head
    /// before its first output (`heads`) and its tail after its last (`tails`): the border
    /// above and left, and past the plane.
    ///
    /// # Safety
    /// `dst` holds these channels of the plan's geometry, and no other task writes there.
    unsafe fn zero_unwritten(
        &self,
        dst: Shared,
        channels: std::ops::Range<usize>,
        heads: bool,
        tails: bool,
    ) {
        let g = &self.geometry;
        let written = g.vectors * LANES;
        for c in channels {
            let chan = std::slice::from_raw_parts_mut(dst.get().add(c * g.chan()), g.chan());
            for (phase, &off) in chan.chunks_exact_mut(g.phase_len).zip(&self.heads) {
                if heads {
                    phase[..off].fill(0.0);
                }
                if tails {
                    phase[off + written..].fill(0.0);
                }
            }
        }
    }
}

impl PhaseWinograd {
    /// F(`tile`×`tile`, 3×3) for `conv` (`tile` 2 or 4); `None` unless `conv` is 3×3,
    /// stride 1, padding 1 and the CPU has AVX-512F.
    pub fn new(conv: &Conv2d, tile: usize) -> Option<Self> {
        if !winograd_fits(conv) || !matches!(tile, 2 | 4) {
            return None;
        }
        let oc = conv.out_channels;
        // One tile vector by 16 filters: a task per vector, so that two threads share a
        // plane's vectors evenly.
        let block = Block::C16V1;
        let ocb = block.channels();
        let blocks = oc.div_ceil(ocb);
        let mut bias = conv.bias.clone().unwrap_or_else(|| vec![0.0; oc]);
        bias.resize(blocks * ocb, 0.0);
        Some(PhaseWinograd {
            out_channels: oc,
            in_channels: conv.in_channels,
            tile,
            block,
            u: winograd_weights(conv, ocb, tile),
            bias,
            zeros: vec![0.0; ocb],
            plan: OnceLock::new(),
        })
    }

    /// The transformed weights, in the order [`forward`](Self::forward) reads them (for a
    /// previous layer to prefetch).
    pub fn weights(&self) -> &[f32] {
        &self.u
    }

    /// The layer on `x` (laid out for this layer's tile side), then `residual` added
    /// (dlib's `add_prev`: the output's size and layout, and its first channels or all of
    /// them) and the ReLU where `relu`; meanwhile `ahead`'s cache lines (the next layer's
    /// weights) are prefetched towards the L2 cache, a share per task.
    pub fn forward(
        &self,
        x: &PhasePlanes,
        residual: Option<&PhasePlanes>,
        relu: bool,
        parallel: bool,
        ahead: &[f32],
    ) -> PhasePlanes {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        assert_eq!(x.tile(), self.tile, "phase layout's tile side");
        let g = x.geometry;
        let (ic, oc, m) = (self.in_channels, self.out_channels, self.tile);
        let a2 = (m + 2) * (m + 2);
        if let Some(r) = residual {
            assert!(r.c <= oc && r.geometry == g, "residual shape");
        }
        let mut out = PhasePlanes::uninit(oc, x.h, x.w, m);
        let cv = self.block.vectors();
        // Chunks of whole register blocks of tile vectors, none past the layout's.
        let padded_vectors = g.vectors.next_multiple_of(cv);
        assert_eq!(padded_vectors, g.vectors, "a block of one tile vector");
        let fresh;
        let plan = match self.plan.get_or_init(|| Plan::new(g)) {
            p if p.geometry == g => p,
            _ => {
                fresh = Plan::new(g);
                &fresh
            }
        };
        let (masks, inputs, outputs) = (&plan.masks, &plan.inputs, &plan.outputs);
        let dst = Shared(out.data.as_mut_ptr());
        let (ocb, blocks) = (self.block.channels(), oc.div_ceil(self.block.channels()));
        let chunks = padded_vectors / cv;
        // Few chunks (a 17×17 plane has two vectors of 4×4 tiles): each also split by
        // filters, so that no thread waits long for the other's last piece; each part
        // transforms its chunk's inputs again, a small cost against its products.
        let parts = (4 / chunks).clamp(1, blocks);
        let ahead_lines = (ahead.len() * 4).div_ceil(64);
        let task = |piece: usize| {
            let (chunk, part) = (piece / parts, piece % parts);
            let pieces = chunks * parts;
            let share = piece * ahead_lines / pieces..(piece + 1) * ahead_lines / pieces;
            let filter_blocks = part * blocks / parts..(part + 1) * blocks / parts;
            let filters = filter_blocks.start * ocb..(filter_blocks.end * ocb).min(oc);
            // SAFETY: the heads and tails of these filters' channels lie outside every
            // tile's outputs, and only this chunk's part for them zeroes them.
            unsafe {
                plan.zero_unwritten(dst, filters.clone(), chunk == 0, chunk + 1 == chunks);
            }
            SCRATCH.with(|s| {
                let (v_buf, m_buf) = &mut *s.borrow_mut();
                let cols = cv * LANES;
                // One cache line more per ξ than the values take: streams a power of two
                // apart alias in the L1 cache's sets.
                let v_stride = ic * cols + LANES;
                let m_stride = blocks * ocb * cols + LANES;
                if v_buf.len() < a2 * v_stride {
                    v_buf.resize(a2 * v_stride, 0.0);
                }
                if m_buf.len() < a2 * m_stride {
                    m_buf.resize(a2 * m_stride, 0.0);
                }
                let first = chunk * cv;
                let tiles = Tiles {
                    g: &g,
                    first,
                    count: cv,
                };
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("built only with AVX-512F");
                // SAFETY: AVX-512F (checked in `new`); the chunk's loads stay inside the
                // phase planes (`phase_len` covers the vectors plus `pitch + 1`), and its
                // stores are its own tiles' outputs.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    if m == 2 {
                        input_transform::<4, 2, F2>(&x.data, &tiles, inputs, ic, v_buf, v_stride);
                    } else {
                        input_transform::<6, 4, F4>(&x.data, &tiles, inputs, ic, v_buf, v_stride);
                    }
                    // The task's share of `ahead`, a part per product.
                    let per_product = share.len().div_ceil(a2);
                    let mut line = share.start;
                    for xi in 0..a2 {
                        let end = (line + per_product).min(share.end);
                        for line in line..end {
                            let at = ahead.as_ptr().cast::<i8>().wrapping_add(line * 64);
                            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                                at,
                            );
                        }
                        line = end;
                        let src = v_buf.as_ptr().add(xi * v_stride);
                        for b in filter_blocks.clone() {
                            let w = &self.u[(xi * blocks + b) * ic * ocb..][..ic * ocb];
                            let mp = m_buf.as_mut_ptr().add(xi * m_stride + b * ocb * cols);
                            run_block(
                                self.block,
                                src,
                                cols,
                                &[0],
                                ic,
                                w,
                                &self.zeros,
                                false,
                                mp,
                                cols,
                            );
                        }
                    }
                    let epilogue = Epilogue {
                        bias: &self.bias,
                        residual: residual.map(|r| &r.data[..r.c * g.chan()]),
                        relu,
                        masks,
                        outputs,
                        dst,
                    };
                    if m == 2 {
                        output_transform::<4, 2, F2>(m_buf, m_stride, filters, &tiles, &epilogue);
                    } else {
                        output_transform::<6, 4, F4>(m_buf, m_stride, filters, &tiles, &epilogue);
                    }
                }
            })
        };
        parallel_for(chunks * parts, parallel, &task);
        out
    }
}

/// A task's tile vectors: `first..first + count` of geometry `g`.
struct Tiles<'a> {
    g: &'a Geometry,
    first: usize,
    count: usize,
}

/// What follows the output transform: bias, residual, ReLU, then the store of each output
/// `(dy, dx)` (index `dy·m + dx`) at `outputs[k] + t` of its channel, masked by
/// `masks[v·m² + k]` (zeros elsewhere).
struct Epilogue<'a> {
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    relu: bool,
    masks: &'a [u16],
    outputs: &'a [usize],
    dst: Shared,
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m512, _mm512_add_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_sub_ps};

/// The input and output transforms of one tile size along one axis, 16 tiles per vector:
/// `Bᵀ x` over a patch side of `A` values, `Aᵀ x` from `A` products to `M` outputs.
#[cfg(target_arch = "x86_64")]
trait Transforms<const A: usize, const M: usize> {
    unsafe fn bt(d: [__m512; A]) -> [__m512; A];
    unsafe fn at(m: [__m512; A]) -> [__m512; M];
}

/// F(2×2, 3×3).
#[cfg(target_arch = "x86_64")]
struct F2;
/// F(4×4, 3×3).
#[cfg(target_arch = "x86_64")]
struct F4;

#[cfg(target_arch = "x86_64")]
impl Transforms<4, 2> for F2 {
    #[inline(always)]
    unsafe fn bt(d: [__m512; 4]) -> [__m512; 4] {
        bt2(d)
    }
    #[inline(always)]
    unsafe fn at(m: [__m512; 4]) -> [__m512; 2] {
        at2(m)
    }
}

#[cfg(target_arch = "x86_64")]
impl Transforms<6, 4> for F4 {
    #[inline(always)]
    unsafe fn bt(d: [__m512; 6]) -> [__m512; 6] {
        bt4(d)
    }
    #[inline(always)]
    unsafe fn at(m: [__m512; 6]) -> [__m512; 4] {
        at4(m)
    }
}

/// F(2×2, 3×3)'s `Bᵀ x` along one axis, 16 tiles per vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn bt2(d: [__m512; 4]) -> [__m512; 4] {
    [
        _mm512_sub_ps(d[0], d[2]),
        _mm512_add_ps(d[1], d[2]),
        _mm512_sub_ps(d[2], d[1]),
        _mm512_sub_ps(d[1], d[3]),
    ]
}

/// F(2×2, 3×3)'s `Aᵀ x` along one axis.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn at2(m: [__m512; 4]) -> [__m512; 2] {
    [
        _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]),
        _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]),
    ]
}

/// F(4×4, 3×3)'s `Bᵀ x` along one axis (the same expressions as `Winograd3x3`'s).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn bt4(d: [__m512; 6]) -> [__m512; 6] {
    let (k2, k4, k5) = (
        _mm512_set1_ps(2.0),
        _mm512_set1_ps(4.0),
        _mm512_set1_ps(5.0),
    );
    let add = |a, b| _mm512_add_ps(a, b);
    let sub = |a, b| _mm512_sub_ps(a, b);
    let mul = |a, b| _mm512_mul_ps(a, b);
    [
        add(sub(mul(k4, d[0]), mul(k5, d[2])), d[4]),
        add(mul(_mm512_set1_ps(-4.0), add(d[1], d[2])), add(d[3], d[4])),
        add(mul(k4, sub(d[1], d[2])), sub(d[4], d[3])),
        add(mul(k2, sub(d[3], d[1])), sub(d[4], d[2])),
        add(mul(k2, sub(d[1], d[3])), sub(d[4], d[2])),
        add(sub(mul(k4, d[1]), mul(k5, d[3])), d[5]),
    ]
}

/// F(4×4, 3×3)'s `Aᵀ x` along one axis (the same expressions as `Winograd3x3`'s).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn at4(m: [__m512; 6]) -> [__m512; 4] {
    let add = |a, b| _mm512_add_ps(a, b);
    let sub = |a, b| _mm512_sub_ps(a, b);
    let mul = |a, b| _mm512_mul_ps(a, b);
    let (s12, d12, s34, d34) = (
        add(m[1], m[2]),
        sub(m[1], m[2]),
        add(m[3], m[4]),
        sub(m[3], m[4]),
    );
    [
        add(add(m[0], s12), s34),
        add(d12, mul(_mm512_set1_ps(2.0), d34)),
        add(s12, mul(_mm512_set1_ps(4.0), s34)),
        add(add(d12, mul(_mm512_set1_ps(8.0), d34)), m[5]),
    ]
}

/// `Bᵀ d B` (patch side `A`) for every input channel of the task's tile vectors, into
/// `v[ξ][channel][count·16]` at `xi_stride` floats per ξ.
///
/// # Safety
/// AVX-512F; `x` holds `ic` channels of the tiles' geometry, `inputs` the `A²` patch
/// offsets, and every load stays inside them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
unsafe fn input_transform<const A: usize, const M: usize, T: Transforms<A, M>>(
    x: &[f32],
    tiles: &Tiles<'_>,
    inputs: &[usize],
    ic: usize,
    v: &mut [f32],
    xi_stride: usize,
) {
    use std::arch::x86_64::*;
    let cols = tiles.count * LANES;
    for c in 0..ic {
        let base = x.as_ptr().add(c * tiles.g.chan());
        for k in 0..tiles.count {
            let t = (tiles.first + k) * LANES;
            // Along y (each patch column), then along x.
            let mut s = [[_mm512_setzero_ps(); A]; A];
            for col in 0..A {
                let column = T::bt(std::array::from_fn(|r| {
                    _mm512_loadu_ps(base.add(inputs[r * A + col] + t))
                }));
                for r in 0..A {
                    s[r][col] = column[r];
                }
            }
            let out = v.as_mut_ptr().add(c * cols + k * LANES);
            for (r, row) in s.iter().enumerate() {
                for (col, val) in T::bt(*row).iter().enumerate() {
                    _mm512_storeu_ps(out.add((r * A + col) * xi_stride), *val);
                }
            }
        }
    }
}

/// `Aᵀ m A` (patch side `A`, tile side `M`) for every output channel of the task's tile
/// vectors, then the epilogue.
///
/// # Safety
/// AVX-512F; `m` holds `m[ξ][channel][count·16]` at `xi_stride` floats per ξ; the
/// epilogue's `dst` holds `oc` channels of the tiles' geometry, its `residual` (if any) the
/// first channels, whole; no other task stores these tiles' outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
unsafe fn output_transform<const A: usize, const M: usize, T: Transforms<A, M>>(
    m: &[f32],
    xi_stride: usize,
    filters: std::ops::Range<usize>,
    tiles: &Tiles<'_>,
    e: &Epilogue<'_>,
) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    let (cols, chan) = (tiles.count * LANES, tiles.g.chan());
    for o in filters {
        let b = _mm512_set1_ps(e.bias[o]);
        let residual = e.residual.filter(|r| o * chan < r.len());
        for k in 0..tiles.count {
            let src = m.as_ptr().add(o * cols + k * LANES);
            // Along y (each column of products), then along x.
            let mut s = [[zero; A]; M];
            for c in 0..A {
                let column = T::at(std::array::from_fn(|r| {
                    _mm512_loadu_ps(src.add((r * A + c) * xi_stride))
                }));
                for dy in 0..M {
                    s[dy][c] = column[dy];
                }
            }
            let v = tiles.first + k;
            let t = v * LANES;
            for (dy, row) in s.iter().enumerate() {
                for (dx, val) in T::at(*row).iter().enumerate() {
                    let idx = dy * M + dx;
                    let off = o * chan + e.outputs[idx] + t;
                    let mut r = _mm512_add_ps(*val, b);
                    if let Some(res) = residual {
                        r = _mm512_add_ps(r, _mm512_loadu_ps(res.as_ptr().add(off)));
                    }
                    if e.relu {
                        r = _mm512_max_ps(r, zero);
                    }
                    let keep = e.masks[v * M * M + idx];
                    _mm512_storeu_ps(e.dst.get().add(off), _mm512_maskz_mov_ps(keep, r));
                }
            }
        }
    }
}
