//! dlib's face descriptor network (`dlib_face_recognition_resnet_model_v1.dat`): a 150×150
//! face chip in, a 128-D [`Descriptor`] out, equal to dlib's to about 1e-6.
//!
//! The network is dlib's "ResNet-29" (`docs/dlib-algorithms.md#resnet`): a 7×7/2 stem with
//! max pooling, fourteen residual blocks whose down-sampling blocks add an average-pooled shortcut
//! *zero-padded* to the block's channels (and, at the 256-filter level, to its size), a global
//! average and a 256→128 linear layer. The file does not name its layer types' roles (tags and
//! skips are anonymous), so [`DescriptorNet::from_bytes`] walks the parsed layers against this
//! architecture and reports the first layer that does not fit.
//!
//! Inference folds each affine layer into the convolution before it and runs whole batches of
//! chips as single GEMMs per layer (see `facelike_tensor::BatchTensor`); the residual add and
//! ReLU happen while a layer's output is still in cache. Each 3×3 layer is a
//! `facelike_tensor::ConvPlan`, built for the size of its input, which chooses the
//! convolution's form per call: stride-1 layers run as Winograd F(4×4, 3×3) where that is
//! faster (the 35×35 and 17×17 levels always, the later ones in batches: see
//! `Winograd3x3::pays_off`), and the last block's convolution of a 1×1 input keeps only its
//! centre tap. One chip at a time on a CPU with AVX-512F takes the direct kernel instead
//! (`facelike_tensor::DirectConv`: no column matrices, no GEMM packing, each layer's steps
//! spread over the cores), with the activations kept in zero-bordered planes
//! (`facelike_tensor::PaddedPlanes`) that each kernel reads in place and writes straight
//! into, and each layer fetching the next one's weights while it computes; the stride-1
//! blocks at 35×35 and 17×17 run as Winograd F(4×4, 3×3) and F(2×2, 3×3) on activations
//! kept in a polyphase layout (`facelike_tensor::PhasePlanes`), whose transforms are plain
//! vector loads and stores there, and the 8×8 ones as F(2×2, 3×3) with the filters in the
//! lanes. This file only decides which layout one chip's activations travel in between
//! blocks; the results stay within 1e-6 of dlib's (the golden test checks 1e-4);
//! [`DescriptorNet::without_winograd`] computes every layer directly.

use crate::descriptor::{Descriptor, DESCRIPTOR_LEN};
use crate::models::{read_model, Model, ModelError};
use facelike_dat::dnn::{parse_dnn, DnnFile, InputLayer, Layer, LossLayer};
use facelike_dat::DatReader;
use facelike_image::RgbImage;
use facelike_tensor::{
    add_zero_padded_batch, global_avg_pool_batch, pool_batch, pool_batch_with, BatchTensor, Conv2d,
    ConvPlan, DirectConv, Epilogue, MappedBytes, PaddedPlanes, PhasePlanes, Pool,
};
use rayon::prelude::*;
use std::path::Path;

/// Side of the square face chip the network takes.
pub const CHIP_SIZE: usize = 150;

/// What the network is called in error messages.
const NETWORK_NAME: &str = "dlib's face recognition ResNet";

/// Filters of the stem convolution.
const STEM_FILTERS: usize = 32;
/// The residual blocks, input side first: (filters, down-sampling).
const BLOCKS: [(usize, bool); 14] = [
    (32, false),
    (32, false),
    (32, false),
    (64, true),
    (64, false),
    (64, false),
    (64, false),
    (128, true),
    (128, false),
    (128, false),
    (256, true),
    (256, false),
    (256, false),
    (256, true),
];

/// Most chips run through the network together on one thread: enough columns for the late
/// 4×4 layers to amortise streaming their weights (2.4 MB per layer, 9.4 MB in Winograd
/// form) and to fill Winograd's 8-sample vector lanes, few enough that the early activations
/// (0.66 MB per chip after the stem) stay within the last-level cache.
const MAX_CHIPS_PER_PASS: usize = 16;

/// A face chip that is not 150×150.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("face chip {index} is {width}x{height} pixels; the face descriptor network takes exactly {CHIP_SIZE}x{CHIP_SIZE} chips")]
pub struct ChipSizeError {
    /// Position of the chip in the batch (0 for a single chip).
    pub index: usize,
    /// The chip's width in pixels.
    pub width: usize,
    /// The chip's height in pixels.
    pub height: usize,
}

/// One residual block: `relu(conv2(relu(conv1(x))) ⊕ shortcut(x))`, with each affine layer
/// already folded into the convolution before it. Each 3×3 convolution is planned for the
/// size of its input (`facelike_tensor::ConvPlan` prepares the faster forms that pay there
/// and picks one per call).
#[derive(Clone, Debug)]
struct ResBlock {
    conv1: ConvPlan,
    conv2: ConvPlan,
    /// Down-sampling block: the shortcut is a 2×2 stride-2 average pool of the input.
    down: bool,
}

/// dlib's ResNet face descriptor network, ready to run on CPU.
#[derive(Clone, Debug)]
pub struct DescriptorNet {
    /// Mean R, G, B subtracted from the chip before dividing by 256.
    avg: [f32; 3],
    stem: Conv2d,
    /// The stem for the direct AVX-512 kernel (one chip at a time), where the CPU has it.
    stem_direct: Option<DirectConv>,
    blocks: Vec<ResBlock>,
    /// `256 × 128` row-major: `out[o] = Σ_i x[i]·fc[i·128 + o]` (no bias).
    fc: Vec<f32>,
}

/// Walks the flat layer list, naming the layer index in every mismatch.
struct LayerCursor<'a> {
    layers: &'a [Layer],
    pos: usize,
    path: &'a Path,
}

fn describe(layer: &Layer) -> String {
    match layer {
        Layer::TagOrSkip => "a tag or skip layer".into(),
        Layer::Conv {
            num_filters,
            nr,
            nc,
            stride_y,
            stride_x,
            pad_y,
            pad_x,
            ..
        } => format!(
            "a {nr}x{nc} convolution with {num_filters} filters, stride {stride_y}x{stride_x}, padding {pad_y}x{pad_x}"
        ),
        Layer::Fc {
            num_outputs,
            num_inputs,
            has_bias,
            ..
        } => format!(
            "a fully connected layer {num_inputs}->{num_outputs} ({})",
            if *has_bias { "with bias" } else { "no bias" }
        ),
        Layer::Affine {
            gamma, per_channel, ..
        } => format!(
            "an affine layer over {} {}",
            gamma.len(),
            if *per_channel { "channels" } else { "elements" }
        ),
        Layer::Relu { .. } => "a relu layer".into(),
        Layer::AddPrev => "an add_prev layer".into(),
        Layer::MaxPool {
            nr, nc, stride_y, ..
        } => format!("a {nr}x{nc} max pool with stride {stride_y}"),
        Layer::AvgPool {
            nr, nc, stride_y, ..
        } => format!("a {nr}x{nc} average pool with stride {stride_y}"),
    }
}

impl<'a> LayerCursor<'a> {
    fn wrong(&self, expected: impl Into<String>) -> ModelError {
        let found = self
            .layers
            .get(self.pos)
            .map_or_else(|| "the end of the network".to_string(), describe);
        ModelError::WrongNetwork {
            path: self.path.to_path_buf(),
            expected: NETWORK_NAME,
            detail: format!(
                "layer {} (counting from the input, of {}) is {found}; expected {}",
                self.pos,
                self.layers.len(),
                expected.into()
            ),
        }
    }

    fn next(&mut self) -> Option<&'a Layer> {
        let l = self.layers.get(self.pos);
        self.pos += 1;
        l
    }

    /// A `k×k` convolution with `filters` filters over `in_channels`, at `stride` with
    /// dlib's default padding (k/2 at stride 1, else 0), followed by its affine layer, folded.
    fn conv_affine(
        &mut self,
        in_channels: usize,
        filters: usize,
        k: usize,
        stride: usize,
    ) -> Result<Conv2d, ModelError> {
        let pad = if stride == 1 { k / 2 } else { 0 };
        let expected = format!(
            "a {k}x{k} convolution with {filters} filters over {in_channels} channels, stride {stride}x{stride}, padding {pad}x{pad}"
        );
        let at = self.pos;
        let mut conv = match self.next() {
            Some(Layer::Conv {
                num_filters,
                nr,
                nc,
                stride_y,
                stride_x,
                pad_y,
                pad_x,
                params,
                use_bias,
                use_relu: false,
            }) if *num_filters == filters
                && (*nr, *nc) == (k, k)
                && (*stride_y, *stride_x) == (stride, stride)
                && (*pad_y, *pad_x) == (pad, pad)
                && params.data.len()
                    == filters * in_channels * k * k + if *use_bias { filters } else { 0 } =>
            {
                let n_weights = filters * in_channels * k * k;
                Conv2d {
                    out_channels: filters,
                    in_channels,
                    kh: k,
                    kw: k,
                    stride_y: stride,
                    stride_x: stride,
                    pad_y: pad,
                    pad_x: pad,
                    weights: params.data[..n_weights].to_vec(),
                    bias: use_bias.then(|| params.data[n_weights..].to_vec()),
                }
            }
            _ => {
                self.pos = at;
                return Err(self.wrong(expected));
            }
        };
        let at = self.pos;
        match self.next() {
            Some(Layer::Affine {
                gamma,
                beta,
                per_channel: true,
                disabled,
            }) if gamma.len() == filters && beta.len() == filters => {
                if !disabled {
                    conv.fold_affine(gamma, beta);
                }
            }
            _ => {
                self.pos = at;
                return Err(self.wrong(format!(
                    "a per-channel affine layer over {filters} channels"
                )));
            }
        }
        Ok(conv)
    }

    /// Steps over the next layer if `fits` it, else reports `expected`.
    fn step(&mut self, fits: fn(&Layer) -> bool, expected: &str) -> Result<(), ModelError> {
        match self.layers.get(self.pos) {
            Some(layer) if fits(layer) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.wrong(expected)),
        }
    }

    fn relu(&mut self) -> Result<(), ModelError> {
        self.step(
            |l| matches!(l, Layer::Relu { disabled: false }),
            "an enabled relu layer",
        )
    }

    fn tag_or_skip(&mut self) -> Result<(), ModelError> {
        self.step(|l| matches!(l, Layer::TagOrSkip), "a tag or skip layer")
    }

    fn add_prev(&mut self) -> Result<(), ModelError> {
        self.step(
            |l| matches!(l, Layer::AddPrev),
            "an add_prev layer (the residual sum)",
        )
    }

    fn pool(&mut self, max: bool, k: usize, stride: usize) -> Result<(), ModelError> {
        let ok = match self.layers.get(self.pos) {
            Some(Layer::MaxPool {
                nr,
                nc,
                stride_y,
                stride_x,
                pad_y,
                pad_x,
            }) if max => {
                (*nr, *nc, *stride_y, *stride_x, *pad_y, *pad_x) == (k, k, stride, stride, 0, 0)
            }
            Some(Layer::AvgPool {
                nr,
                nc,
                stride_y,
                stride_x,
                pad_y,
                pad_x,
            }) if !max => {
                (*nr, *nc, *pad_y, *pad_x) == (k, k, 0, 0)
                    // The whole-plane average ignores its stride.
                    && (k == 0 || (*stride_y, *stride_x) == (stride, stride))
            }
            _ => false,
        };
        if ok {
            self.pos += 1;
            Ok(())
        } else if k == 0 {
            Err(self.wrong("a whole-plane average pool (avg_pool_everything)"))
        } else {
            Err(self.wrong(format!(
                "a {k}x{k} {} pool with stride {stride} and no padding",
                if max { "max" } else { "average" }
            )))
        }
    }
}

impl DescriptorNet {
    /// Loads `dlib_face_recognition_resnet_model_v1.dat` from `models_dir`.
    pub fn load(models_dir: &Path) -> Result<Self, ModelError> {
        let (path, bytes) = read_model(models_dir, Model::FaceRecognitionResnet)?;
        Self::from_bytes(&bytes, &path)
    }

    /// Builds the network from the bytes of a model file; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let mut reader = DatReader::new(bytes, path);
        let file = parse_dnn(&mut reader).map_err(|source| {
            let message = source.to_string();
            let prefix = format!("{}: ", path.display());
            ModelError::Unreadable {
                path: path.to_path_buf(),
                expected: NETWORK_NAME,
                detail: message
                    .strip_prefix(&prefix)
                    .unwrap_or(&message)
                    .to_string(),
                source: Box::new(source),
            }
        })?;
        Self::from_dnn(&file, path)
    }

    fn from_dnn(file: &DnnFile, path: &Path) -> Result<Self, ModelError> {
        let wrong = |detail: String| ModelError::WrongNetwork {
            path: path.to_path_buf(),
            expected: NETWORK_NAME,
            detail,
        };
        let avg = match &file.input {
            InputLayer::RgbSized { avg, nr, nc }
                if (*nr, *nc) == (CHIP_SIZE as u64, CHIP_SIZE as u64) =>
            {
                *avg
            }
            InputLayer::RgbSized { nr, nc, .. } => {
                return Err(wrong(format!(
                    "its input is a {nr}x{nc} RGB image; expected {CHIP_SIZE}x{CHIP_SIZE}"
                )))
            }
            InputLayer::RgbPyramid { .. } => {
                return Err(wrong(format!(
                    "its input is an RGB image pyramid (a detector); expected a {CHIP_SIZE}x{CHIP_SIZE} RGB image"
                )))
            }
        };
        if !matches!(file.loss, LossLayer::Metric { .. }) {
            return Err(wrong(
                "its loss layer is not loss_metric (it is not a metric-learning network)".into(),
            ));
        }
        let mut cur = LayerCursor {
            layers: &file.layers,
            pos: 0,
            path,
        };
        let stem = cur.conv_affine(3, STEM_FILTERS, 7, 2)?;
        cur.relu()?;
        cur.pool(true, 3, 2)?;
        let mut channels = STEM_FILTERS;
        // Side of the blocks' input: after the stem and its max pool.
        let mut size = Conv2d::out_size(Conv2d::out_size(CHIP_SIZE, 7, 2, 0), 3, 2, 0);
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        for (filters, down) in BLOCKS {
            cur.tag_or_skip()?;
            let conv1 = cur.conv_affine(channels, filters, 3, if down { 2 } else { 1 })?;
            cur.relu()?;
            let conv2 = cur.conv_affine(filters, filters, 3, 1)?;
            if down {
                cur.tag_or_skip()?;
                cur.tag_or_skip()?;
                cur.pool(false, 2, 2)?;
            } else {
                debug_assert_eq!(filters, channels, "identity shortcut needs equal channels");
            }
            cur.add_prev()?;
            cur.relu()?;
            let conv_size = Conv2d::out_size(size, 3, conv1.stride_y, conv1.pad_y);
            blocks.push((conv1, size, conv2, conv_size, down));
            if down {
                // The sum takes the larger of the conv path and the pooled shortcut.
                size = conv_size.max(Conv2d::out_size(size, 2, 2, 0));
            }
            channels = filters;
        }
        cur.pool(false, 0, 1)?;
        let fc = match cur.next() {
            Some(Layer::Fc {
                num_outputs,
                num_inputs,
                params,
                has_bias: false,
            }) if *num_outputs == DESCRIPTOR_LEN && *num_inputs == channels => {
                params.data[..channels * DESCRIPTOR_LEN].to_vec()
            }
            _ => {
                cur.pos -= 1;
                return Err(cur.wrong(format!(
                    "a fully connected layer {channels}->{DESCRIPTOR_LEN} without bias"
                )));
            }
        };
        if cur.pos != file.layers.len() {
            return Err(cur.wrong("the end of the network after the fully connected layer"));
        }
        // Preparing each layer's faster forms (Winograd transforms, packings) is most of the
        // load time: all layers at once.
        let blocks: Vec<ResBlock> = blocks
            .into_par_iter()
            .map(|(conv1, size, conv2, conv_size, down)| {
                let (conv1, conv2) = rayon::join(
                    || ConvPlan::new(conv1, size, MAX_CHIPS_PER_PASS),
                    || ConvPlan::new(conv2, conv_size, MAX_CHIPS_PER_PASS),
                );
                ResBlock { conv1, conv2, down }
            })
            .collect();
        let stem_direct = DirectConv::new(&stem, &[(CHIP_SIZE, CHIP_SIZE)]);
        Ok(DescriptorNet {
            avg,
            stem,
            stem_direct,
            blocks,
            fc,
        })
    }

    /// The descriptor of one 150×150 face chip (dlib's `compute_face_descriptor(chip)`),
    /// not normalised. Each layer's GEMMs are spread over the current rayon pool's threads;
    /// for many chips, [`compute_batch`](Self::compute_batch) is faster.
    pub fn compute(&self, chip: &RgbImage) -> Result<Descriptor, ChipSizeError> {
        check_chip(0, chip)?;
        // One face: spread each layer over rayon's threads (inside a parallel loop, rayon
        // runs the pieces on whichever threads are free).
        let parallel = rayon::current_num_threads() > 1;
        Ok(self.forward(std::slice::from_ref(chip), parallel)[0])
    }

    /// Descriptors of many chips, in order: groups of chips run as batches, spread over
    /// rayon's threads.
    pub fn compute_batch(&self, chips: &[RgbImage]) -> Result<Vec<Descriptor>, ChipSizeError> {
        for (i, chip) in chips.iter().enumerate() {
            check_chip(i, chip)?;
        }
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        // Give every thread work even for small batches.
        let per_pass = chips
            .len()
            .div_ceil(rayon::current_num_threads())
            .clamp(1, MAX_CHIPS_PER_PASS);
        Ok(chips
            .par_chunks(per_pass)
            .flat_map_iter(|group| self.forward(group, false))
            .collect())
    }

    /// The same network computing every convolution directly (im2col + GEMM over all nine
    /// taps), without Winograd's transforms or shortcuts: slower, and the closest to dlib's
    /// own arithmetic.
    pub fn without_winograd(mut self) -> Self {
        for block in &mut self.blocks {
            for layer in [&mut block.conv1, &mut block.conv2] {
                layer.disable_fast_forms();
            }
        }
        self.stem_direct = None;
        self
    }

    /// Floating-point operations (2 per multiply-add) of the convolutions and the linear
    /// layer for one face, from the layer shapes of the architecture.
    pub fn flops_per_face() -> u64 {
        let conv_flops = |inp: usize, filters: usize, k: usize, stride: usize, size: usize| {
            let pad = if stride == 1 { k / 2 } else { 0 };
            let out = Conv2d::out_size(size, k, stride, pad);
            (2 * filters * inp * k * k * out * out) as u64
        };
        let mut flops = conv_flops(3, STEM_FILTERS, 7, 2, CHIP_SIZE);
        let mut size = Conv2d::out_size(Conv2d::out_size(CHIP_SIZE, 7, 2, 0), 3, 2, 0);
        let mut channels = STEM_FILTERS;
        for (filters, down) in BLOCKS {
            let stride = if down { 2 } else { 1 };
            flops += conv_flops(channels, filters, 3, stride, size);
            let conv_size = Conv2d::out_size(size, 3, stride, if down { 0 } else { 1 });
            flops += conv_flops(filters, filters, 3, 1, conv_size);
            if down {
                // The residual sum takes the larger of the conv path and the pooled shortcut.
                size = conv_size.max(Conv2d::out_size(size, 2, 2, 0));
            }
            channels = filters;
        }
        flops + (2 * channels * DESCRIPTOR_LEN) as u64
    }

    /// Runs a group of (already checked) chips through the network as one batch.
    fn forward(&self, chips: &[RgbImage], parallel: bool) -> Vec<Descriptor> {
        let n = chips.len();
        let hw = CHIP_SIZE * CHIP_SIZE;
        let one = (n == 1)
            .then(|| self.one_chip(&chips[0], parallel))
            .flatten();
        let x = match one {
            Some(y) => y,
            None => {
                // dlib's input layer (`input_of`) as a table per channel of its 256 values,
                // written plane by plane (no zeroing first).
                let input = self.input_of(&chips[0]);
                let tables: Vec<[f32; 256]> = (0..3)
                    .map(|ch| std::array::from_fn(|v| input.value(ch, v as u8)))
                    .collect();
                let mut data = Vec::with_capacity(3 * n * hw);
                for (ch, table) in tables.iter().enumerate() {
                    for chip in chips {
                        data.extend(
                            chip.as_raw()
                                .chunks_exact(3)
                                .map(|px| table[px[ch] as usize]),
                        );
                    }
                }
                let input = BatchTensor::from_vec(3, n, CHIP_SIZE, CHIP_SIZE, data);
                // The stem, its ReLU and the 3×3/2 max pool.
                let x = if parallel {
                    self.stem.forward_batch_par(&input, Epilogue::RELU)
                } else {
                    self.stem.forward_batch(&input, Epilogue::RELU)
                };
                drop(input);
                let x = pool_batch_with(&x, Pool::Max, (3, 3), (2, 2), (0, 0), parallel);
                self.blocks_batch(x, parallel)
            }
        };
        let pooled = global_avg_pool_batch(&x); // channels × n
        (0..n)
            .map(|i| {
                let mut out = [0f32; DESCRIPTOR_LEN];
                for c in 0..x.c {
                    let v = pooled[c * n + i];
                    let row = &self.fc[c * DESCRIPTOR_LEN..(c + 1) * DESCRIPTOR_LEN];
                    for (o, w) in out.iter_mut().zip(row) {
                        *o += v * w;
                    }
                }
                Descriptor(out)
            })
            .collect()
    }
}

impl DescriptorNet {
    /// The residual blocks on a batch.
    fn blocks_batch(&self, mut x: BatchTensor, parallel: bool) -> BatchTensor {
        for block in &self.blocks {
            let t = block.conv1.forward_batch(&x, Epilogue::RELU, parallel);
            x = if !block.down {
                block.conv2.forward_batch(
                    &t,
                    Epilogue {
                        residual: Some(&x.data),
                        relu: true,
                    },
                    parallel,
                )
            } else {
                let shortcut = pool_batch(&x, Pool::Avg, 2, 2, 2, 2, 0, 0);
                let (oh, ow) = block.conv2.out_shape(t.h, t.w);
                if (oh, ow) == (shortcut.h, shortcut.w) {
                    // Only the channels differ: the shortcut is a channel prefix of the sum.
                    block.conv2.forward_batch(
                        &t,
                        Epilogue {
                            residual: Some(&shortcut.data),
                            relu: true,
                        },
                        parallel,
                    )
                } else {
                    // The sizes differ too (4×4 shortcut, 3×3 conv path at 256 filters).
                    let y = block.conv2.forward_batch(&t, Epilogue::default(), parallel);
                    let mut sum = add_zero_padded_batch(&shortcut, &y);
                    for v in &mut sum.data {
                        *v = facelike_tensor::relu(*v);
                    }
                    sum
                }
            };
        }
        x
    }

    /// dlib's input layer on `chip`: (pixel − avg) in float, then / 256 (exact: a power of
    /// two, so the same as × 1/256).
    fn input_of<'a>(&'a self, chip: &'a RgbImage) -> MappedBytes<'a> {
        MappedBytes {
            data: chip.as_raw(),
            h: CHIP_SIZE,
            w: CHIP_SIZE,
            offsets: &self.avg,
            scale: 1.0 / 256.0,
        }
    }

    /// The stem and the residual blocks for one chip on the direct kernels, where every
    /// layer has one (else `None`): activations stay in bordered planes from layer to layer
    /// (no layer copies its input into a padded buffer, and the kernels write their outputs
    /// straight into the next layer's), and each layer pulls the next one's weights towards
    /// the caches while it computes.
    fn one_chip(&self, chip: &RgbImage, parallel: bool) -> Option<BatchTensor> {
        let stem = self.stem_direct.as_ref()?;
        let padded = |b: &ResBlock| b.conv1.has_padded_form() && b.conv2.has_padded_form();
        if !self.blocks.iter().all(padded) {
            return None;
        }
        // The input layer computed as the stem lays the chip out for its kernel; pooled
        // straight from the kernel's output grid, a channel block per task.
        let input = self.input_of(chip);
        let mut x = stem.forward_max_pool_padded_bytes(input, true, 3, 2, parallel);
        // Runs of stride-1 blocks pass phase planes from layer to layer.
        let mut phased: Option<PhasePlanes> = None;
        for (i, block) in self.blocks.iter().enumerate() {
            let (conv1, conv2) = (&block.conv1, &block.conv2);
            // The next block's first weights, for this block's last layer to prefetch.
            let next = self
                .blocks
                .get(i + 1)
                .map_or(&[][..], |b| b.conv1.one_sample_weights());
            if let (Some(tile), Some(_), false) =
                (conv1.phase_tile(), conv2.phase_tile(), block.down)
            {
                let p = phased
                    .take()
                    .unwrap_or_else(|| PhasePlanes::from_padded(&x, tile, parallel));
                let t = conv1.forward_phase(&p, None, true, parallel, conv2.one_sample_weights());
                phased = Some(conv2.forward_phase(&t, Some(&p), true, parallel, next));
                continue;
            }
            if let Some(p) = phased.take() {
                x = p.to_padded(parallel);
            }
            let ahead = conv2.one_sample_weights();
            let t = conv1.forward_padded(&x, None, true, parallel, ahead);
            x = if !block.down {
                conv2.forward_padded(&t, Some(&x), true, parallel, next)
            } else {
                let shortcut = x.avg_pool_2x2(parallel);
                let same_size = conv2.out_shape(t.h, t.w) == (shortcut.h, shortcut.w);
                if let (Some(tile), true) = (conv2.phase_tile(), same_size) {
                    // The 17×17 level's first block: its output starts a run of phase
                    // planes (converting the two inputs costs less than the direct kernel).
                    let t = PhasePlanes::from_padded(&t, tile, parallel);
                    let shortcut = PhasePlanes::from_padded(&shortcut, tile, parallel);
                    phased = Some(conv2.forward_phase(&t, Some(&shortcut), true, parallel, next));
                    continue;
                }
                if same_size {
                    conv2.forward_padded(&t, Some(&shortcut), true, parallel, next)
                } else {
                    // The sizes differ too (4×4 shortcut, 3×3 conv path at 256 filters).
                    let y = conv2.forward_padded(&t, None, false, parallel, next);
                    PaddedPlanes::add_zero_padded_relu(&shortcut, &y)
                }
            };
        }
        if let Some(p) = phased.take() {
            x = p.to_padded(parallel);
        }
        Some(x.to_batch())
    }
}

fn check_chip(index: usize, chip: &RgbImage) -> Result<(), ChipSizeError> {
    if chip.width() != CHIP_SIZE || chip.height() != CHIP_SIZE {
        return Err(ChipSizeError {
            index,
            width: chip.width(),
            height: chip.height(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resnet_file() -> (std::path::PathBuf, DnnFile) {
        let path = facelike_testdata::models_dir().join(Model::FaceRecognitionResnet.file_name());
        let bytes = std::fs::read(&path).expect("read the ResNet file");
        let file = parse_dnn(&mut DatReader::new(&bytes, &path)).expect("parse");
        (path, file)
    }

    #[test]
    fn a_changed_layer_is_named_in_the_error() {
        let (path, file) = resnet_file();
        assert!(DescriptorNet::from_dnn(&file, &path).is_ok());

        // The first down-sampling conv (layer 29) with stride 1 instead of 2.
        let mut changed = file.clone();
        match &mut changed.layers[29] {
            Layer::Conv {
                stride_y, stride_x, ..
            } => (*stride_y, *stride_x) = (1, 1),
            other => panic!("layer 29 is {other:?}"),
        }
        let msg = DescriptorNet::from_dnn(&changed, &path)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("layer 29 ") && msg.contains("stride 2x2"),
            "{msg}"
        );

        // A missing residual add.
        let mut changed = file.clone();
        changed.layers.remove(10);
        let msg = DescriptorNet::from_dnn(&changed, &path)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("layer 10 ") && msg.contains("add_prev"),
            "{msg}"
        );

        // An extra layer after the head.
        let mut changed = file;
        changed.layers.push(Layer::Relu { disabled: false });
        let msg = DescriptorNet::from_dnn(&changed, &path)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("layer 130 ") && msg.contains("the end of the network"),
            "{msg}"
        );
    }
}
