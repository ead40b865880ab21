//! One sample's 3×3, stride-1, padding-1 layers by Winograd's F(2×2, 3×3), on activations
//! kept in a 2 × 2 polyphase layout from layer to layer.
//!
//! Each 2×2 block of outputs (a tile) comes from the 4×4 input patch around it:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, 16 multiply-adds per input channel where the direct
//! form does 36. The 16 element-wise products over all channels are 16 small matrix
//! products, run on the direct convolution's register-blocked kernel.
//!
//! The layout is what makes the transforms cheap for one sample. A plane's zero-bordered
//! form (row `p = y + 1`, column `q = x + 1`) is split by the parity of `p` and `q` into four
//! phase planes of row pitch `Q = w/2 + 1`; tile `t = ty·Q + tx` then finds input value
//! `(r, c)` of its patch in phase `(r mod 2, c mod 2)` at `t + (r/2)·Q + c/2`, so 16
//! consecutive tiles are one plain vector load per value, across tile rows too. The outputs
//! of those tiles land in the next layer's phases at `t + dy·Q + dx`, again plain stores:
//! no layer copies, gathers or scatters its activations. (With `Q = w/2 + 1` a tile row may
//! wrap into the next: only outputs past the plane's edge read the wrapped values, and those
//! are stored as zeros.)
//!
//! F(2×2, 3×3)'s transforms only add and halve, so the sums differ from direct
//! convolution's by float rounding alone (the tests bound it).

use crate::direct::{run_block, Block, Shared, LANES};
use crate::team::parallel_for;
use crate::{Conv2d, DirectConv, PaddedPlanes};
use std::cell::RefCell;

/// Values per transformed tile (4 × 4).
const Q16: usize = 16;

/// The filter transform `G` (4×3) of F(2×2, 3×3).
const G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// The most vectors a chunk of tiles may be padded by (a register block's width, less one).
const MAX_PAD_VECTORS: usize = 3;

/// Where everything of an `h × w` plane lives in the phase layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    h: usize,
    w: usize,
    /// Tile rows, and the phase planes' row pitch (tiles per tile row, the last ones past
    /// the plane's edge where `w` is even).
    th: usize,
    pitch: usize,
    /// `th · pitch` tiles, in vectors of 16.
    tiles: usize,
    vectors: usize,
    /// Floats per phase plane; a channel is four of them.
    phase_len: usize,
}

impl Geometry {
    fn new(h: usize, w: usize) -> Self {
        let th = h.div_ceil(2);
        let pitch = w / 2 + 1;
        let tiles = th * pitch;
        let vectors = tiles.div_ceil(LANES);
        // Loads reach `pitch + 1` past the last (padded) vector's tiles.
        let phase_len = ((vectors + MAX_PAD_VECTORS) * LANES + pitch + 1).next_multiple_of(LANES);
        Geometry {
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
        4 * self.phase_len
    }

    /// Where output component `(dy, dx)` of tile `t` goes in its phase plane, less `t`.
    fn out_offset(&self, dy: usize, dx: usize) -> usize {
        dy * self.pitch + dx
    }

    /// The phase plane (0..4) that holds bordered row parity `a`, column parity `b`.
    fn phase(a: usize, b: usize) -> usize {
        2 * a + b
    }

    /// Which lanes of tile vector `v` hold real outputs for component `(dy, dx)`.
    fn valid(&self, v: usize, dy: usize, dx: usize) -> u16 {
        let mut mask = 0u16;
        for lane in 0..LANES {
            let t = v * LANES + lane;
            let (ty, tx) = (t / self.pitch, t % self.pitch);
            if t < self.tiles && 2 * ty + dy < self.h && 2 * tx + dx < self.w {
                mask |= 1 << lane;
            }
        }
        mask
    }
}

/// `c` channels of `h × w` in the phase layout (see the module docs): per channel four
/// phase planes, zero wherever the bordered plane is border or past it.
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
const POOLED: usize = 6;

impl PhasePlanes {
    /// Storage for `c` channels whose contents are whatever a reused buffer held.
    fn uninit(c: usize, h: usize, w: usize) -> Self {
        let geometry = Geometry::new(h, w);
        let len = c * geometry.chan();
        let mut data = POOL
            .with(|p| {
                let mut p = p.borrow_mut();
                let best = p
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.capacity() >= len)
                    .min_by_key(|(_, v)| v.capacity())
                    .map(|(i, _)| i);
                best.map(|i| p.swap_remove(i))
            })
            .unwrap_or_default();
        if data.len() < len {
            data.resize(len, 0.0);
        }
        PhasePlanes {
            c,
            h,
            w,
            geometry,
            data,
        }
    }

    /// The phase layout of `x` (which must hold real zeros in its border).
    pub fn from_padded(x: &PaddedPlanes, parallel: bool) -> Self {
        let mut out = Self::uninit(x.c, x.h, x.w);
        let g = out.geometry;
        let (wh, src_chan, dst_chan) = (x.w + 2, x.chan, g.chan());
        let dst = Shared(out.data.as_mut_ptr());
        let channel = |c: usize| {
            let src = &x.data[c * src_chan..][..(x.h + 2) * wh];
            // SAFETY: channel c's phases belong to this task alone.
            let chan =
                unsafe { std::slice::from_raw_parts_mut(dst.get().add(c * dst_chan), dst_chan) };
            let (top, bottom) = chan.split_at_mut(2 * g.phase_len);
            for (a, half) in [top, bottom].into_iter().enumerate() {
                let (even, odd) = half.split_at_mut(g.phase_len);
                // Bordered rows a, a + 2, …: each split into its even and odd columns
                // (2·pitch of them: the last is the right border or past it, zero).
                let rows = (x.h + 2 - a).div_ceil(2);
                for i in 0..rows {
                    let row = &src[(2 * i + a) * wh..][..2 * g.pitch.min(wh / 2)];
                    let at = i * g.pitch;
                    split_columns(row, &mut even[at..at + g.pitch], &mut odd[at..at + g.pitch]);
                }
                even[rows * g.pitch..].fill(0.0);
                odd[rows * g.pitch..].fill(0.0);
            }
        };
        for_channel_groups(x.c, parallel, &channel);
        out
    }

    /// The zero-bordered planes of the same values.
    pub fn to_padded(&self, parallel: bool) -> PaddedPlanes {
        let g = self.geometry;
        let mut out = PaddedPlanes::uninit(self.c, self.h, self.w, self.c);
        let (wh, dst_chan) = (self.w + 2, out.chan);
        let dst = Shared(out.data.as_mut_ptr());
        let channel = |c: usize| {
            let src = &self.data[c * g.chan()..][..g.chan()];
            // SAFETY: channel c's plane belongs to this task alone.
            let plane =
                unsafe { std::slice::from_raw_parts_mut(dst.get().add(c * dst_chan), dst_chan) };
            for p in 1..=self.h {
                let a = p % 2;
                let at = a * 2 * g.phase_len + (p / 2) * g.pitch;
                let (even, odd) = (&src[at..][..g.pitch], &src[at + g.phase_len..][..g.pitch]);
                // Columns 0..2·pitch, the last past the border where w is odd (skipped).
                let n = (2 * g.pitch).min(wh);
                merge_columns(even, odd, &mut plane[p * wh..][..n]);
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
        let (p, q) = (y + 1, x + 1);
        self.data
            [c * g.chan() + Geometry::phase(p % 2, q % 2) * g.phase_len + (p / 2) * g.pitch + q / 2]
    }
}

impl Drop for PhasePlanes {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.capacity() > 0 {
            let _ = POOL.try_with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOLED {
                    p.push(data);
                }
            });
        }
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

/// `even[j] = row[2j]`, `odd[j] = row[2j + 1]` for the `row.len()` values of `row`; the rest
/// of `even` and `odd` is zeroed.
fn split_columns(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if DirectConv::supported() {
        // SAFETY: AVX-512F checked; the loads and stores are masked to the slices.
        unsafe { split_columns_avx512(row, even, odd) };
        return;
    }
    even.fill(0.0);
    odd.fill(0.0);
    for (j, v) in row.iter().enumerate() {
        if j % 2 == 0 {
            even[j / 2] = *v;
        } else {
            odd[j / 2] = *v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn split_columns_avx512(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    use std::arch::x86_64::*;
    let pick_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let pick_odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let n = even.len().min(odd.len());
    let mut j = 0;
    while j < n {
        let at = 2 * j;
        let lo = _mm512_maskz_loadu_ps(
            crate::direct::first_lanes(row.len().saturating_sub(at)),
            row.as_ptr().wrapping_add(at),
        );
        let hi = _mm512_maskz_loadu_ps(
            crate::direct::first_lanes(row.len().saturating_sub(at + LANES)),
            row.as_ptr().wrapping_add(at + LANES),
        );
        let m = crate::direct::first_lanes(n - j);
        _mm512_mask_storeu_ps(
            even.as_mut_ptr().add(j),
            m,
            _mm512_permutex2var_ps(lo, pick_even, hi),
        );
        _mm512_mask_storeu_ps(
            odd.as_mut_ptr().add(j),
            m,
            _mm512_permutex2var_ps(lo, pick_odd, hi),
        );
        j += LANES;
    }
}

/// `out[2j] = even[j]`, `out[2j + 1] = odd[j]`, for the length of `out`.
fn merge_columns(even: &[f32], odd: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if DirectConv::supported() {
        // SAFETY: AVX-512F checked; the loads and stores are masked to the slices.
        unsafe { merge_columns_avx512(even, odd, out) };
        return;
    }
    for (k, v) in out.iter_mut().enumerate() {
        *v = if k % 2 == 0 { even[k / 2] } else { odd[k / 2] };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn merge_columns_avx512(even: &[f32], odd: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let n = out.len();
    let mut k = 0;
    while k < n {
        let j = k / 2;
        let e = _mm512_maskz_loadu_ps(
            crate::direct::first_lanes(even.len().saturating_sub(j)),
            even.as_ptr().wrapping_add(j),
        );
        let o = _mm512_maskz_loadu_ps(
            crate::direct::first_lanes(odd.len().saturating_sub(j)),
            odd.as_ptr().wrapping_add(j),
        );
        let dst = out.as_mut_ptr().wrapping_add(k);
        _mm512_mask_storeu_ps(
            dst,
            crate::direct::first_lanes(n - k),
            _mm512_permutex2var_ps(e, low, o),
        );
        _mm512_mask_storeu_ps(
            dst.wrapping_add(LANES),
            crate::direct::first_lanes(n.saturating_sub(k + LANES)),
            _mm512_permutex2var_ps(e, high, o),
        );
        k += 2 * LANES;
    }
}

/// F(2×2, 3×3)'s transformed weights `U = G g Gᵀ` of a 3×3 `conv`, laid out
/// `[ξ][block of ocb filters][in][ocb]` and padded with zero filters; computed in f64 and
/// rounded once.
pub(crate) fn winograd_weights(conv: &Conv2d, ocb: usize) -> Vec<f32> {
    let (oc, ic) = (conv.out_channels, conv.in_channels);
    let blocks = oc.div_ceil(ocb);
    let mut u = vec![0f32; Q16 * blocks * ocb * ic];
    for o in 0..oc {
        for i in 0..ic {
            let g = &conv.weights[(o * ic + i) * 9..][..9];
            let mut gg = [[0f64; 3]; 4];
            for (r, row) in gg.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = (0..3).map(|k| G[r][k] * g[k * 3 + c] as f64).sum();
                }
            }
            for (r, gg_row) in gg.iter().enumerate() {
                for (c, g_row) in G.iter().enumerate() {
                    let v: f64 = (0..3).map(|k| gg_row[k] * g_row[k]).sum();
                    let at = (((4 * r + c) * blocks + o / ocb) * ic + i) * ocb + o % ocb;
                    u[at] = v as f32;
                }
            }
        }
    }
    u
}

/// A 3×3, stride-1, padding-1 convolution prepared for [`PhasePlanes`]; built only where the
/// CPU has AVX-512F.
#[derive(Clone, Debug)]
pub struct PhaseWinograd {
    pub out_channels: usize,
    pub in_channels: usize,
    block: Block,
    /// Transformed weights `[ξ][channel block][in][OCB]`, padded with zero filters.
    u: Vec<f32>,
    bias: Vec<f32>,
    /// `OCB` zeros: the products have no bias (it is added after the output transform).
    zeros: Vec<f32>,
}

impl PhaseWinograd {
    /// `None` unless `conv` is 3×3, stride 1, padding 1 and the CPU has AVX-512F.
    pub fn new(conv: &Conv2d) -> Option<Self> {
        let shape = (
            conv.kh,
            conv.kw,
            conv.stride_y,
            conv.stride_x,
            conv.pad_y,
            conv.pad_x,
        );
        if !DirectConv::supported() || shape != (3, 3, 1, 1, 1, 1) {
            return None;
        }
        let oc = conv.out_channels;
        // One tile vector by 16 filters: a task per vector, so two threads share a 35×35
        // plane's 21 vectors evenly (3-vector blocks left one thread a block more).
        let block = Block::C16V1;
        let ocb = block.channels();
        let blocks = oc.div_ceil(ocb);
        let u = winograd_weights(conv, ocb);
        let mut bias = conv.bias.clone().unwrap_or_else(|| vec![0.0; oc]);
        bias.resize(blocks * ocb, 0.0);
        Some(PhaseWinograd {
            out_channels: oc,
            in_channels: conv.in_channels,
            block,
            u,
            bias,
            zeros: vec![0.0; ocb],
        })
    }

    /// The layer on `x`, then `residual` added (dlib's `add_prev`: the output's size, and
    /// its first channels or all of them) and the ReLU where `relu`.
    pub fn forward(
        &self,
        x: &PhasePlanes,
        residual: Option<&PhasePlanes>,
        relu: bool,
        parallel: bool,
    ) -> PhasePlanes {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        let g = x.geometry;
        let (ic, oc) = (self.in_channels, self.out_channels);
        if let Some(r) = residual {
            assert!(r.c <= oc && r.geometry == g, "residual shape");
        }
        let mut out = PhasePlanes::uninit(oc, x.h, x.w);
        let cv = self.block.vectors();
        let padded_vectors = g.vectors.next_multiple_of(cv);
        let written = padded_vectors * LANES;
        // What no tile writes: each phase's head before its first output and tail after
        // its last (the border above and left, and past the plane).
        for chan in out.data.chunks_exact_mut(g.chan()).take(oc) {
            for (k, phase) in chan.chunks_exact_mut(g.phase_len).enumerate() {
                let (a, b) = (k / 2, k % 2);
                let off = g.out_offset(1 - a, 1 - b);
                phase[..off].fill(0.0);
                phase[off + written..].fill(0.0);
            }
        }
        let masks: Vec<[u16; 4]> = (0..padded_vectors)
            .map(|v| {
                [
                    g.valid(v, 0, 0),
                    g.valid(v, 0, 1),
                    g.valid(v, 1, 0),
                    g.valid(v, 1, 1),
                ]
            })
            .collect();
        let dst = Shared(out.data.as_mut_ptr());
        let task = |chunk: usize| {
            SCRATCH.with(|s| {
                let (v_buf, m_buf) = &mut *s.borrow_mut();
                let cols = cv * LANES;
                let ocb = self.block.channels();
                let blocks = oc.div_ceil(ocb);
                // One cache line more per ξ than the values take: 16 streams 2 KB apart
                // alias in the L1 cache's sets.
                let v_stride = ic * cols + LANES;
                let m_stride = blocks * ocb * cols + LANES;
                if v_buf.len() < Q16 * v_stride {
                    v_buf.resize(Q16 * v_stride, 0.0);
                }
                if m_buf.len() < Q16 * m_stride {
                    m_buf.resize(Q16 * m_stride, 0.0);
                }
                let first = chunk * cv;
                // SAFETY: AVX-512F (checked in `new`); the chunk's loads stay inside the
                // phase planes (`phase_len` covers padded vectors plus `pitch + 1`), and its
                // stores are its own tiles' outputs.
                unsafe {
                    input_transform(&x.data, &g, ic, first, cv, v_buf, v_stride);
                    for xi in 0..Q16 {
                        let src = v_buf.as_ptr().add(xi * v_stride);
                        for b in 0..blocks {
                            let w = &self.u[(xi * blocks + b) * ic * ocb..][..ic * ocb];
                            let m = m_buf.as_mut_ptr().add(xi * m_stride + b * ocb * cols);
                            run_block(
                                self.block,
                                src,
                                cols,
                                &[0],
                                ic,
                                w,
                                &self.zeros,
                                false,
                                m,
                                cols,
                            );
                        }
                    }
                    output_transform(
                        m_buf,
                        m_stride,
                        oc,
                        cols,
                        &self.bias,
                        residual.map(|r| &r.data[..r.c * g.chan()]),
                        relu,
                        &g,
                        first,
                        cv,
                        &masks,
                        dst,
                    );
                }
            })
        };
        parallel_for(padded_vectors / cv, parallel, &task);
        out
    }
}

/// `Bᵀ d B` for every input channel of tile vectors `first..first + cv`, into
/// `v[ξ][channel][cv·16]`.
///
/// # Safety
/// AVX-512F; `x` holds `ic` channels of geometry `g`, and `first + cv` vectors' loads stay
/// inside them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_transform(
    x: &[f32],
    g: &Geometry,
    ic: usize,
    first: usize,
    cv: usize,
    v: &mut [f32],
    xi_stride: usize,
) {
    use std::arch::x86_64::*;
    let cols = cv * LANES;
    let (pl, q) = (g.phase_len, g.pitch);
    for c in 0..ic {
        let base = x.as_ptr().add(c * g.chan());
        for k in 0..cv {
            let t = (first + k) * LANES;
            // d[r][col] = phase (r mod 2, col mod 2) at t + (r/2)·Q + col/2.
            let mut d = [[_mm512_setzero_ps(); 4]; 4];
            for (r, row) in d.iter_mut().enumerate() {
                for (col, val) in row.iter_mut().enumerate() {
                    let phase = Geometry::phase(r % 2, col % 2);
                    *val = _mm512_loadu_ps(base.add(phase * pl + t + (r / 2) * q + col / 2));
                }
            }
            // Bᵀ d: rows.
            let mut s = [[_mm512_setzero_ps(); 4]; 4];
            for col in 0..4 {
                s[0][col] = _mm512_sub_ps(d[0][col], d[2][col]);
                s[1][col] = _mm512_add_ps(d[1][col], d[2][col]);
                s[2][col] = _mm512_sub_ps(d[2][col], d[1][col]);
                s[3][col] = _mm512_sub_ps(d[1][col], d[3][col]);
            }
            // (Bᵀ d) B: columns.
            let out = v.as_mut_ptr().add(c * cols + k * LANES);
            for (r, row) in s.iter().enumerate() {
                let vals = [
                    _mm512_sub_ps(row[0], row[2]),
                    _mm512_add_ps(row[1], row[2]),
                    _mm512_sub_ps(row[2], row[1]),
                    _mm512_sub_ps(row[1], row[3]),
                ];
                for (col, val) in vals.iter().enumerate() {
                    _mm512_storeu_ps(out.add((4 * r + col) * xi_stride), *val);
                }
            }
        }
    }
}

/// `Aᵀ m A` for every output channel of tile vectors `first..first + cv`, plus bias,
/// residual and ReLU, stored into the output phases (zeros where a lane is no output).
///
/// # Safety
/// AVX-512F; `m` holds `m[ξ][channel][cv·16]` at `xi_stride` floats per ξ; `dst` holds
/// `oc` channels of geometry `g`, `residual` (if any) the first channels, whole.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform(
    m: &[f32],
    xi_stride: usize,
    oc: usize,
    cols: usize,
    bias: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
    g: &Geometry,
    first: usize,
    cv: usize,
    masks: &[[u16; 4]],
    dst: Shared,
) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    for (o, &bias) in bias.iter().enumerate().take(oc) {
        let b = _mm512_set1_ps(bias);
        for k in 0..cv {
            let at = m.as_ptr().add(o * cols + k * LANES);
            let mut mm = [[zero; 4]; 4];
            for (r, row) in mm.iter_mut().enumerate() {
                for (c, val) in row.iter_mut().enumerate() {
                    *val = _mm512_loadu_ps(at.add((4 * r + c) * xi_stride));
                }
            }
            // Aᵀ m: two rows.
            let mut s = [[zero; 4]; 2];
            for c in 0..4 {
                s[0][c] = _mm512_add_ps(_mm512_add_ps(mm[0][c], mm[1][c]), mm[2][c]);
                s[1][c] = _mm512_sub_ps(_mm512_sub_ps(mm[1][c], mm[2][c]), mm[3][c]);
            }
            let v = first + k;
            let t = v * LANES;
            for (dy, row) in s.iter().enumerate() {
                let y = [
                    _mm512_add_ps(_mm512_add_ps(row[0], row[1]), row[2]),
                    _mm512_sub_ps(_mm512_sub_ps(row[1], row[2]), row[3]),
                ];
                for (dx, val) in y.iter().enumerate() {
                    // Output (2ty + dy, 2tx + dx) is bordered (.. + 1), whose parities pick
                    // the phase.
                    let phase = Geometry::phase(1 - dy, 1 - dx);
                    let off = o * g.chan() + phase * g.phase_len + t + g.out_offset(dy, dx);
                    let mut r = _mm512_add_ps(*val, b);
                    if let Some(res) = residual.filter(|res| off < res.len()) {
                        r = _mm512_add_ps(r, _mm512_loadu_ps(res.as_ptr().add(off)));
                    }
                    if relu {
                        r = _mm512_max_ps(r, zero);
                    }
                    let keep = masks[v][2 * dy + dx];
                    _mm512_storeu_ps(dst.get().add(off), _mm512_maskz_mov_ps(keep, r));
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_transform(
    _: &[f32],
    _: &Geometry,
    _: usize,
    _: usize,
    _: usize,
    _: &mut [f32],
    _: usize,
) {
    unreachable!("built only with AVX-512F")
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform(
    _: &[f32],
    _: usize,
    _: usize,
    _: usize,
    _: &[f32],
    _: Option<&[f32]>,
    _: bool,
    _: &Geometry,
    _: usize,
    _: usize,
    _: &[[u16; 4]],
    _: Shared,
) {
    unreachable!("built only with AVX-512F")
}
