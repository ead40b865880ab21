//! The packed tensors of the layer API: one sample ([`Tensor`], C × H × W) and a batch
//! ([`BatchTensor`], C × N × H × W, channel-major so that a batch's convolution is one GEMM).

/// A C×H×W float tensor, row-major within each channel plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Channels.
    pub c: usize,
    /// Rows per channel plane.
    pub h: usize,
    /// Columns per row.
    pub w: usize,
    /// `c · h · w` floats, element `(c, y, x)` at `(c·h + y)·w + x`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A `c × h × w` tensor of zeros.
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Tensor {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }
    /// Wraps `data` (row-major planes, one per channel) as a `c × h × w` tensor.
    ///
    /// Panics unless `data.len() == c · h · w`.
    pub fn from_vec(c: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            c * h * w,
            "tensor data does not match its shape"
        );
        Tensor { c, h, w, data }
    }
    #[inline]
    /// The value at channel `c`, row `y`, column `x`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
    /// The H×W plane of channel `c`, row-major.
    pub fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

/// A batch of `n` samples stored channel-major: C × N × H × W.
///
/// This layout makes a convolution over the whole batch one GEMM whose columns run over
/// (sample, row, column), so the small late layers of a network still give the GEMM wide
/// matrices; per-channel operations (bias, affine) touch one contiguous run per channel; and
/// dlib's channel zero-padding in `add_prev` becomes "add to a prefix". A batch of one is
/// laid out exactly like a [`Tensor`].
#[derive(Clone, Debug, PartialEq)]
pub struct BatchTensor {
    /// Channels.
    pub c: usize,
    /// Samples.
    pub n: usize,
    /// Rows per plane.
    pub h: usize,
    /// Columns per row.
    pub w: usize,
    /// `c · n · h · w` floats, element `(c, i, y, x)` at `((c·n + i)·h + y)·w + x`.
    pub data: Vec<f32>,
}

impl BatchTensor {
    /// A batch of `n` zero samples of `c × h × w`.
    pub fn zeros(c: usize, n: usize, h: usize, w: usize) -> Self {
        BatchTensor {
            c,
            n,
            h,
            w,
            data: vec![0.0; c * n * h * w],
        }
    }
    /// Wraps `data`, already laid out C × N × H × W, as a batch.
    ///
    /// Panics unless `data.len() == c · n · h · w`.
    pub fn from_vec(c: usize, n: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            c * n * h * w,
            "batch tensor data does not match its shape"
        );
        BatchTensor { c, n, h, w, data }
    }
    /// A batch holding one sample (no copy: the layouts coincide).
    pub fn from_tensor(t: Tensor) -> Self {
        BatchTensor {
            c: t.c,
            n: 1,
            h: t.h,
            w: t.w,
            data: t.data,
        }
    }
    /// Stacks samples of one shape into a batch.
    pub fn stack(samples: &[Tensor]) -> Self {
        let first = samples.first().expect("stack needs at least one sample");
        let (c, h, w) = (first.c, first.h, first.w);
        let mut b = BatchTensor::zeros(c, samples.len(), h, w);
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(
                (s.c, s.h, s.w),
                (c, h, w),
                "stacked samples differ in shape"
            );
            for ch in 0..c {
                b.plane_mut(ch, i).copy_from_slice(s.plane(ch));
            }
        }
        b
    }
    /// Sample `i` as a C×H×W tensor (a copy).
    pub fn sample(&self, i: usize) -> Tensor {
        let mut t = Tensor::zeros(self.c, self.h, self.w);
        let hw = self.h * self.w;
        for ch in 0..self.c {
            t.data[ch * hw..(ch + 1) * hw].copy_from_slice(self.plane(ch, i));
        }
        t
    }
    /// The H×W plane of channel `c`, sample `i`.
    pub fn plane(&self, c: usize, i: usize) -> &[f32] {
        let hw = self.h * self.w;
        let at = (c * self.n + i) * hw;
        &self.data[at..at + hw]
    }
    /// The H×W plane of channel `c`, sample `i`, for writing.
    pub fn plane_mut(&mut self, c: usize, i: usize) -> &mut [f32] {
        let hw = self.h * self.w;
        let at = (c * self.n + i) * hw;
        &mut self.data[at..at + hw]
    }
    #[inline]
    /// The value at channel `c`, sample `i`, row `y`, column `x`.
    pub fn at(&self, c: usize, i: usize, y: usize, x: usize) -> f32 {
        self.data[((c * self.n + i) * self.h + y) * self.w + x]
    }
    /// Converts a one-sample batch back into a tensor (no copy).
    pub fn into_tensor(self) -> Tensor {
        assert_eq!(self.n, 1, "into_tensor needs a batch of one");
        Tensor {
            c: self.c,
            h: self.h,
            w: self.w,
            data: self.data,
        }
    }
}
