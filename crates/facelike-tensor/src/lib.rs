//! # facelike-tensor: the CPU kernels behind facelike's networks
//!
//! A single-sample tensor type ([`Tensor`], channels × height × width, f32) and the layer
//! operations dlib's face networks need, with dlib's exact semantics: cross-correlation
//! convolution with bias, per-channel affine, ReLU, max/average pooling over windows clipped to
//! the image, and dlib's `add_prev` that zero-pads mismatched shapes.
//!
//! Model code (facelike's ResNet and MMOD detector) lives elsewhere; this crate only computes.

/// A C×H×W float tensor, row-major within each channel plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Tensor {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }
    pub fn from_vec(c: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            c * h * w,
            "tensor data does not match its shape"
        );
        Tensor { c, h, w, data }
    }
    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
    pub fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

/// A 2-D convolution layer (cross-correlation, as dlib's `con_`).
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub out_channels: usize,
    pub in_channels: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_y: usize,
    pub stride_x: usize,
    pub pad_y: usize,
    pub pad_x: usize,
    /// `out × in × kh × kw` weights (dlib's layout).
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl Conv2d {
    /// Output size along one axis: `1 + (in + 2·pad − k) / stride`, or 0 if the kernel does not fit.
    pub fn out_size(input: usize, k: usize, stride: usize, pad: usize) -> usize {
        if input + 2 * pad < k {
            0
        } else {
            1 + (input + 2 * pad - k) / stride
        }
    }

    /// Reference implementation: direct loops, accumulating in f32.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        let oh = Self::out_size(x.h, self.kh, self.stride_y, self.pad_y);
        let ow = Self::out_size(x.w, self.kw, self.stride_x, self.pad_x);
        let mut out = Tensor::zeros(self.out_channels, oh, ow);
        for o in 0..self.out_channels {
            let b = self.bias.as_ref().map_or(0.0, |b| b[o]);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f32;
                    for i in 0..self.in_channels {
                        for ky in 0..self.kh {
                            let iy = (oy * self.stride_y + ky) as isize - self.pad_y as isize;
                            if iy < 0 || iy >= x.h as isize {
                                continue;
                            }
                            for kx in 0..self.kw {
                                let ix = (ox * self.stride_x + kx) as isize - self.pad_x as isize;
                                if ix < 0 || ix >= x.w as isize {
                                    continue;
                                }
                                let wv = self.weights
                                    [((o * self.in_channels + i) * self.kh + ky) * self.kw + kx];
                                acc += wv * x.at(i, iy as usize, ix as usize);
                            }
                        }
                    }
                    out.data[(o * oh + oy) * ow + ox] = acc + b;
                }
            }
        }
        out
    }
}

/// `y = gamma[c]·x + beta[c]` per channel, optionally followed by ReLU.
pub fn affine_inplace(x: &mut Tensor, gamma: &[f32], beta: &[f32], relu: bool) {
    let hw = x.h * x.w;
    for c in 0..x.c {
        let (g, b) = (gamma[c], beta[c]);
        for v in &mut x.data[c * hw..(c + 1) * hw] {
            let y = g * *v + b;
            *v = if relu { y.max(0.0) } else { y };
        }
    }
}

pub fn relu_inplace(x: &mut Tensor) {
    for v in &mut x.data {
        *v = v.max(0.0);
    }
}

/// Pooling kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    Avg,
}

/// dlib's pooling: window `k` at `stride`, `pad`; windows are clipped to the image and the
/// average divides by the clipped window's size.
pub fn pool(
    x: &Tensor,
    kind: Pool,
    kh: usize,
    kw: usize,
    stride_y: usize,
    stride_x: usize,
    pad_y: usize,
    pad_x: usize,
) -> Tensor {
    let oh = Conv2d::out_size(x.h, kh, stride_y, pad_y);
    let ow = Conv2d::out_size(x.w, kw, stride_x, pad_x);
    let mut out = Tensor::zeros(x.c, oh, ow);
    for c in 0..x.c {
        for oy in 0..oh {
            let y0 = (oy * stride_y) as isize - pad_y as isize;
            let (ya, yb) = (y0.max(0) as usize, ((y0 + kh as isize) as usize).min(x.h));
            for ox in 0..ow {
                let x0 = (ox * stride_x) as isize - pad_x as isize;
                let (xa, xb) = (x0.max(0) as usize, ((x0 + kw as isize) as usize).min(x.w));
                let mut acc = match kind {
                    Pool::Max => f32::NEG_INFINITY,
                    Pool::Avg => 0.0,
                };
                for yy in ya..yb {
                    for xx in xa..xb {
                        let v = x.at(c, yy, xx);
                        acc = match kind {
                            Pool::Max => acc.max(v),
                            Pool::Avg => acc + v,
                        };
                    }
                }
                if kind == Pool::Avg {
                    let n = ((yb - ya) * (xb - xa)).max(1) as f32;
                    acc /= n;
                }
                out.data[(c * oh + oy) * ow + ox] = acc;
            }
        }
    }
    out
}

/// Mean over each whole channel plane (dlib's `avg_pool_everything`): a C-vector.
pub fn global_avg_pool(x: &Tensor) -> Vec<f32> {
    let hw = (x.h * x.w) as f32;
    (0..x.c)
        .map(|c| x.plane(c).iter().sum::<f32>() / hw)
        .collect()
}

/// dlib's `add_prev` for tensors of different shapes: the result has the larger of each
/// dimension; each input contributes where it has data, elsewhere counts as zero.
pub fn add_zero_padded(a: &Tensor, b: &Tensor) -> Tensor {
    let (c, h, w) = (a.c.max(b.c), a.h.max(b.h), a.w.max(b.w));
    let mut out = Tensor::zeros(c, h, w);
    for src in [a, b] {
        for ch in 0..src.c {
            for y in 0..src.h {
                let o = (ch * h + y) * w;
                let s = (ch * src.h + y) * src.w;
                for x in 0..src.w {
                    out.data[o + x] += src.data[s + x];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_matches_hand_computed_values() {
        // 1 input channel 3x3, one 2x2 filter, stride 1, no pad.
        let x = Tensor::from_vec(1, 3, 3, (1..=9).map(|v| v as f32).collect());
        let conv = Conv2d {
            out_channels: 1,
            in_channels: 1,
            kh: 2,
            kw: 2,
            stride_y: 1,
            stride_x: 1,
            pad_y: 0,
            pad_x: 0,
            weights: vec![1.0, 0.0, 0.0, -1.0],
            bias: Some(vec![0.5]),
        };
        let y = conv.forward(&x);
        assert_eq!((y.h, y.w), (2, 2));
        assert_eq!(
            y.data,
            vec![
                1.0 - 5.0 + 0.5,
                2.0 - 6.0 + 0.5,
                4.0 - 8.0 + 0.5,
                5.0 - 9.0 + 0.5
            ]
        );
    }

    #[test]
    fn zero_padded_add_matches_dlib_semantics() {
        let a = Tensor::from_vec(1, 2, 2, vec![1.0, 2.0, 3.0, 4.0]);
        let b = Tensor::from_vec(2, 1, 1, vec![10.0, 20.0]);
        let s = add_zero_padded(&a, &b);
        assert_eq!((s.c, s.h, s.w), (2, 2, 2));
        assert_eq!(s.data, vec![11.0, 2.0, 3.0, 4.0, 20.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn pooling() {
        let x = Tensor::from_vec(1, 3, 3, (1..=9).map(|v| v as f32).collect());
        assert_eq!(pool(&x, Pool::Max, 3, 3, 2, 2, 0, 0).data, vec![9.0]);
        assert_eq!(pool(&x, Pool::Avg, 2, 2, 2, 2, 0, 0).data, vec![3.0]);
        assert_eq!(global_avg_pool(&x), vec![5.0]);
    }
}
