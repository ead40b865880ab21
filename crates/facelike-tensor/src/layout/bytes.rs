//! A network's 8-bit input image standing for floats ([`MappedBytes`]), converted by the
//! first layer as it lays the image out for its kernel.

use crate::layout::tensor::BatchTensor;

/// An image of interleaved 8-bit channels (RGB), byte `v` of channel `c` standing for the
/// float `(v − offsets[c]) · scale`, computed in that order in f32 (dlib's input layer:
/// the mean subtracted, then a power-of-two scale): a network's input before conversion.
/// The first layer converts it while laying it out for the kernel (one pass over the pixels
/// instead of two).
#[derive(Clone, Copy)]
pub struct MappedBytes<'a> {
    /// `h · w · offsets.len()` bytes, row-major, channels interleaved.
    pub data: &'a [u8],
    /// Rows, in pixels.
    pub h: usize,
    /// Columns, in pixels.
    pub w: usize,
    /// One per channel.
    pub offsets: &'a [f32],
    /// Multiplies each byte after its channel's offset is subtracted (a power of two in dlib).
    pub scale: f32,
}

impl MappedBytes<'_> {
    /// Channels.
    pub fn channels(&self) -> usize {
        self.offsets.len()
    }

    /// The float channel `c` stands for with byte `v`.
    #[inline(always)]
    pub fn value(&self, c: usize, v: u8) -> f32 {
        (v as f32 - self.offsets[c]) * self.scale
    }

    /// The float tensor these bytes stand for (one sample).
    pub fn to_batch(&self) -> BatchTensor {
        let c = self.channels();
        assert_eq!(
            self.data.len(),
            self.h * self.w * c,
            "bytes of an h × w × c image"
        );
        let mut data = Vec::with_capacity(c * self.h * self.w);
        for ch in 0..c {
            let table: [f32; 256] = std::array::from_fn(|v| self.value(ch, v as u8));
            data.extend(self.data.chunks_exact(c).map(|px| table[px[ch] as usize]));
        }
        BatchTensor::from_vec(c, 1, self.h, self.w, data)
    }
}
