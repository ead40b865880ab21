//! dlib DNN files (`net_type` serialised with `serialize(net, out)`).
//!
//! A network file stores its layers outer-to-inner as bare version numbers, then the input
//! layer, then each layer's details from the innermost outward. Tags and skips are stored as
//! a bare `1` without their ids, so this module returns the flat layer sequence (input side
//! first) and leaves interpretation to the model that knows the architecture.

use crate::reader::{DatReader, Result, Tensor};

/// The loss layer at the top of a network.
#[derive(Clone, Debug, PartialEq)]
pub enum LossLayer {
    /// `loss_metric_` / `loss_metric_2`: pairwise hinge used by the face descriptor net.
    Metric {
        /// Hinge margin around the threshold used in training.
        margin: f32,
        /// Euclidean distance between raw descriptors below which two faces are the same
        /// person (0.6 for dlib's face recognition model).
        distance_threshold: f32,
    },
    /// `loss_mmod_`: the max-margin object detector loss.
    Mmod(MmodOptions),
}

/// One detection window of `mmod_options`.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorWindow {
    /// Window width in pixels of the network's input image.
    pub width: u64,
    /// Window height in pixels of the network's input image.
    pub height: u64,
    /// Label given to detections from this window; empty in version-1 windows.
    pub label: String,
}

/// The settings of dlib's `mmod_options`, stored in a `loss_mmod_` layer (versions 1 to 4).
#[derive(Clone, Debug, PartialEq)]
pub struct MmodOptions {
    /// The detection windows, one per output channel of the network.
    pub windows: Vec<DetectorWindow>,
    /// Training loss charged per false alarm (not used at inference).
    pub loss_per_false_alarm: f64,
    /// Training loss charged per missed target (not used at inference).
    pub loss_per_missed_target: f64,
    /// IoU at which a detection counts as matching a truth box in training.
    pub truth_match_iou_threshold: f64,
    /// Non-max suppression test: (iou threshold, percent covered threshold).
    pub overlaps_nms: (f64, f64),
    /// Test for truth boxes to ignore in training: (iou threshold, percent covered threshold).
    pub overlaps_ignore: (f64, f64),
    /// dlib's `use_image_pyramid` flag as stored (0 = no, 1 = yes); `None` before version 3.
    pub assume_image_pyramid: Option<u8>,
    /// Whether the net has bounding-box regression outputs; `false` before version 4.
    pub use_bounding_box_regression: bool,
    /// Bounding-box regression loss weight; 0 before version 4.
    pub bbr_lambda: f64,
}

/// The input layer at the bottom of a network.
#[derive(Clone, Debug, PartialEq)]
pub enum InputLayer {
    /// `input_rgb_image_sized<NR,NC>`.
    RgbSized {
        /// Mean red, green and blue values subtracted from each pixel (0-255 scale).
        avg: [f32; 3],
        /// Input rows (height in pixels) the network expects.
        nr: u64,
        /// Input columns (width in pixels) the network expects.
        nc: u64,
    },
    /// `input_rgb_image_pyramid<pyramid_down<N>>` (v1 or v2).
    RgbPyramid {
        /// Mean red, green and blue values subtracted from each pixel (0-255 scale).
        avg: [f32; 3],
        /// Pixels between pyramid levels on the tiled canvas (10 for v1 files).
        pyramid_padding: u64,
        /// Pixels around the whole tiled canvas (11 for v1 files).
        pyramid_outer_padding: u64,
    },
}

/// A layer's parameters and settings as stored in the file.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// `add_tag_layer` or `add_skip_layer` (the file does not say which, nor the id).
    TagOrSkip,
    /// `con_` (versions 4 to 6): a 2-D convolution.
    Conv {
        /// Number of output channels.
        num_filters: usize,
        /// Kernel rows.
        nr: usize,
        /// Kernel columns.
        nc: usize,
        /// Vertical stride (non-zero).
        stride_y: usize,
        /// Horizontal stride (non-zero).
        stride_x: usize,
        /// Zero padding added above and below, in pixels.
        pad_y: usize,
        /// Zero padding added left and right, in pixels.
        pad_x: usize,
        /// `num_filters × k × nr × nc` weights, then `num_filters` biases (if `use_bias`).
        params: Tensor,
        /// Whether `params` ends with biases (always true for `con_4`).
        use_bias: bool,
        /// Whether a ReLU is fused after the convolution (only `con_6` can say so).
        use_relu: bool,
    },
    /// `fc_` (versions 2 and 3): a fully connected layer.
    Fc {
        /// Number of outputs.
        num_outputs: usize,
        /// Number of inputs (the flattened size of the layer below).
        num_inputs: usize,
        /// `num_inputs × num_outputs` row-major weights, then biases if `has_bias`.
        params: Tensor,
        /// Whether `params` ends with `num_outputs` biases.
        has_bias: bool,
    },
    /// Per-channel (mode 0) or per-element (mode 1) affine transform. Batch-norm blocks found
    /// in an affine slot are folded into this form on load, as dlib does.
    Affine {
        /// Scales: one per channel, or one per element.
        gamma: Vec<f32>,
        /// Offsets added after scaling, laid out like `gamma`.
        beta: Vec<f32>,
        /// `true` for per-channel mode (0), `false` for per-element mode (1).
        per_channel: bool,
        /// Whether the layer was disabled (`affine_2` only), making it the identity.
        disabled: bool,
    },
    /// `relu_` or `relu_2`: max(x, 0).
    Relu {
        /// Whether the layer was disabled (`relu_2` only), making it the identity.
        disabled: bool,
    },
    /// `add_prev_`: adds the output of the most recent tag layer to this layer's input.
    AddPrev,
    /// `max_pool_2`: max pooling.
    MaxPool {
        /// Window rows.
        nr: usize,
        /// Window columns.
        nc: usize,
        /// Vertical stride (non-zero).
        stride_y: usize,
        /// Horizontal stride (non-zero).
        stride_x: usize,
        /// Padding above and below, in pixels.
        pad_y: usize,
        /// Padding left and right, in pixels.
        pad_x: usize,
    },
    /// `avg_pool_2`: average pooling (dlib uses a window of 0 × 0 for global pooling).
    AvgPool {
        /// Window rows (0: the whole input height).
        nr: usize,
        /// Window columns (0: the whole input width).
        nc: usize,
        /// Vertical stride (non-zero).
        stride_y: usize,
        /// Horizontal stride (non-zero).
        stride_x: usize,
        /// Padding above and below, in pixels.
        pad_y: usize,
        /// Padding left and right, in pixels.
        pad_x: usize,
    },
}

/// A whole network file.
#[derive(Clone, Debug)]
pub struct DnnFile {
    /// The loss layer at the top.
    pub loss: LossLayer,
    /// The input layer at the bottom.
    pub input: InputLayer,
    /// Layers from the one nearest the input to the one just below the loss.
    pub layers: Vec<Layer>,
}

fn read_loss(r: &mut DatReader<'_>) -> Result<LossLayer> {
    let at = r.position();
    let name = r.expect_one_of(
        &["loss_metric_", "loss_metric_2", "loss_mmod_"],
        "loss layer name",
    )?;
    if name.starts_with("loss_metric") {
        let margin = r.read_f32("loss_metric margin")?;
        let distance_threshold = r.read_f32("loss_metric distance threshold")?;
        return Ok(LossLayer::Metric {
            margin,
            distance_threshold,
        });
    }
    let version = r.read_i32("mmod_options version")?;
    if !(1..=4).contains(&version) {
        return Err(r.invalid(at, "mmod_options version 1 to 4", version.to_string()));
    }
    let mut windows = Vec::new();
    if version == 1 {
        let width = r.read_unsigned("mmod window width")?;
        let height = r.read_unsigned("mmod window height")?;
        windows.push(DetectorWindow {
            width,
            height,
            label: String::new(),
        });
    } else {
        let n = r.read_len("mmod window count", 4)?;
        for _ in 0..n {
            let wat = r.position();
            let wv = r.read_i32("detector window version")?;
            if !(1..=2).contains(&wv) {
                return Err(r.invalid(wat, "detector window version 1 or 2", wv.to_string()));
            }
            let width = r.read_unsigned("mmod window width")?;
            let height = r.read_unsigned("mmod window height")?;
            let label = if wv == 2 {
                r.read_string("mmod window label")?
            } else {
                String::new()
            };
            windows.push(DetectorWindow {
                width,
                height,
                label,
            });
        }
    }
    let loss_per_false_alarm = r.read_f64("mmod loss per false alarm")?;
    let loss_per_missed_target = r.read_f64("mmod loss per missed target")?;
    let truth_match_iou_threshold = r.read_f64("mmod truth match iou")?;
    let overlaps_nms = (r.read_f64("mmod nms iou")?, r.read_f64("mmod nms covered")?);
    let overlaps_ignore = (
        r.read_f64("mmod ignore iou")?,
        r.read_f64("mmod ignore covered")?,
    );
    let assume_image_pyramid = if version >= 3 {
        Some(r.read_u8("mmod assume_image_pyramid")?)
    } else {
        None
    };
    let (use_bounding_box_regression, bbr_lambda) = if version >= 4 {
        (r.read_bool("mmod use_bbr")?, r.read_f64("mmod bbr_lambda")?)
    } else {
        (false, 0.0)
    };
    Ok(LossLayer::Mmod(MmodOptions {
        windows,
        loss_per_false_alarm,
        loss_per_missed_target,
        truth_match_iou_threshold,
        overlaps_nms,
        overlaps_ignore,
        assume_image_pyramid,
        use_bounding_box_regression,
        bbr_lambda,
    }))
}

fn read_input(r: &mut DatReader<'_>) -> Result<InputLayer> {
    let name = r.expect_one_of(
        &[
            "input_rgb_image_sized",
            "input_rgb_image_pyramid",
            "input_rgb_image_pyramid2",
        ],
        "input layer name",
    )?;
    let avg = [
        r.read_f32("input avg_red")?,
        r.read_f32("input avg_green")?,
        r.read_f32("input avg_blue")?,
    ];
    Ok(match name.as_str() {
        "input_rgb_image_sized" => InputLayer::RgbSized {
            avg,
            nr: r.read_unsigned("input rows")?,
            nc: r.read_unsigned("input cols")?,
        },
        "input_rgb_image_pyramid" => InputLayer::RgbPyramid {
            avg,
            pyramid_padding: 10,
            pyramid_outer_padding: 11,
        },
        _ => InputLayer::RgbPyramid {
            avg,
            pyramid_padding: r.read_unsigned("pyramid padding")?,
            pyramid_outer_padding: r.read_unsigned("pyramid outer padding")?,
        },
    })
}

fn non_negative(r: &DatReader<'_>, at: usize, v: i64, what: &str) -> Result<usize> {
    if !(0..=(1 << 24)).contains(&v) {
        return Err(r.invalid(at, format!("a small non-negative {what}"), v.to_string()));
    }
    Ok(v as usize)
}

fn read_shape(r: &mut DatReader<'_>, what: &str) -> Result<usize> {
    let at = r.position();
    let v = r.read_signed(what)?;
    non_negative(r, at, v, what)
}

fn read_details(r: &mut DatReader<'_>) -> Result<Layer> {
    let at = r.position();
    let name = r.expect_one_of(
        &[
            "con_4",
            "con_5",
            "con_6",
            "fc_2",
            "fc_3",
            "affine_",
            "affine_2",
            "bn_con2",
            "bn_fc2",
            "relu_",
            "relu_2",
            "add_prev_",
            "max_pool_2",
            "avg_pool_2",
        ],
        "layer name",
    )?;
    match name.as_str() {
        "con_4" | "con_5" | "con_6" => {
            let params = r.read_tensor("conv params")?;
            let num_filters = read_shape(r, "conv num_filters")?;
            let nr = read_shape(r, "conv kernel rows")?;
            let nc = read_shape(r, "conv kernel cols")?;
            let stride_y = read_shape(r, "conv stride_y")?;
            let stride_x = read_shape(r, "conv stride_x")?;
            let pad_y = read_shape(r, "conv padding_y")?;
            let pad_x = read_shape(r, "conv padding_x")?;
            let filters = r.read_alias_tensor("conv filters")?;
            let _biases = r.read_alias_tensor("conv biases")?;
            for w in ["lr mult", "wd mult", "bias lr mult", "bias wd mult"] {
                r.read_f64(w)?;
            }
            let use_bias = if name != "con_4" {
                r.read_bool("conv use_bias")?
            } else {
                true
            };
            let use_relu = if name == "con_6" {
                r.read_bool("conv use_relu")?
            } else {
                false
            };
            let k = filters[1].max(0) as usize;
            let expect = num_filters * k * nr * nc + if use_bias { num_filters } else { 0 };
            if params.data.len() != expect || stride_x == 0 || stride_y == 0 {
                return Err(r.invalid(
                    at,
                    format!("conv params of {expect} values with non-zero strides"),
                    format!("{:?}, strides {stride_y}x{stride_x}", params),
                ));
            }
            Ok(Layer::Conv {
                num_filters,
                nr,
                nc,
                stride_y,
                stride_x,
                pad_y,
                pad_x,
                params,
                use_bias,
                use_relu,
            })
        }
        "fc_2" | "fc_3" => {
            let num_outputs = r.read_unsigned("fc num_outputs")? as usize;
            let num_inputs = r.read_unsigned("fc num_inputs")? as usize;
            let params = r.read_tensor("fc params")?;
            r.read_alias_tensor("fc weights")?;
            r.read_alias_tensor("fc biases")?;
            let mode_at = r.position();
            let bias_mode = r.read_i32("fc bias mode")?;
            if !(0..=1).contains(&bias_mode) {
                return Err(r.invalid(mode_at, "fc bias mode 0 or 1", bias_mode.to_string()));
            }
            for w in ["lr mult", "wd mult", "bias lr mult", "bias wd mult"] {
                r.read_f64(w)?;
            }
            let mut has_bias = bias_mode == 0;
            if name == "fc_3" {
                has_bias &= r.read_bool("fc use_bias")?;
            }
            let expect = num_inputs
                .checked_mul(num_outputs)
                .map(|n| n + if has_bias { num_outputs } else { 0 });
            if expect != Some(params.data.len()) {
                return Err(r.invalid(
                    at,
                    format!("fc params of {num_inputs}x{num_outputs} weights"),
                    format!("{params:?}"),
                ));
            }
            Ok(Layer::Fc {
                num_outputs,
                num_inputs,
                params,
                has_bias,
            })
        }
        "affine_" | "affine_2" => {
            let params = r.read_tensor("affine params")?;
            r.read_alias_tensor("affine gamma")?;
            r.read_alias_tensor("affine beta")?;
            let mode_at = r.position();
            let mode = r.read_i32("affine mode")?;
            if !(0..=1).contains(&mode) {
                return Err(r.invalid(mode_at, "affine mode 0 or 1", mode.to_string()));
            }
            let disabled = if name == "affine_2" {
                r.read_bool("affine disabled")?
            } else {
                false
            };
            if params.data.len() % 2 != 0 {
                return Err(r.invalid(at, "affine params gamma then beta", format!("{params:?}")));
            }
            let half = params.data.len() / 2;
            Ok(Layer::Affine {
                gamma: params.data[..half].to_vec(),
                beta: params.data[half..].to_vec(),
                per_channel: mode == 0,
                disabled,
            })
        }
        "bn_con2" | "bn_fc2" => {
            let params = r.read_tensor("bn params")?;
            r.read_alias_tensor("bn gamma")?;
            r.read_alias_tensor("bn beta")?;
            r.read_tensor("bn means")?;
            r.read_tensor("bn invstds")?;
            let running_means = r.read_tensor("bn running means")?;
            let running_variances = r.read_tensor("bn running variances")?;
            r.read_unsigned("bn num_updates")?;
            r.read_unsigned("bn running_stats_window_size")?;
            for w in ["lr mult", "wd mult", "bias lr mult", "bias wd mult"] {
                r.read_f64(w)?;
            }
            let eps = r.read_f64("bn eps")?;
            let c = running_means.data.len();
            if params.data.len() != 2 * c || running_variances.data.len() != c {
                return Err(r.invalid(
                    at,
                    "batch-norm gamma, beta, means and variances of one length",
                    format!("{params:?}, {running_means:?}, {running_variances:?}"),
                ));
            }
            // Folded as dlib's affine_ constructor does: g = gamma/sqrt(var+eps), b = beta - g*mean,
            // in float after computing sqrt of (var + (float)eps).
            let eps = eps as f32;
            let mut gamma = Vec::with_capacity(c);
            let mut beta = Vec::with_capacity(c);
            for i in 0..c {
                let g = params.data[i] / (running_variances.data[i] + eps).sqrt();
                gamma.push(g);
                beta.push(params.data[c + i] - g * running_means.data[i]);
            }
            Ok(Layer::Affine {
                gamma,
                beta,
                per_channel: name == "bn_con2",
                disabled: false,
            })
        }
        "relu_" | "relu_2" => {
            let disabled = if name == "relu_2" {
                r.read_bool("relu disabled")?
            } else {
                false
            };
            Ok(Layer::Relu { disabled })
        }
        "add_prev_" => Ok(Layer::AddPrev),
        _ => {
            let pool = name.clone();
            let nr = read_shape(r, "pool rows")?;
            let nc = read_shape(r, "pool cols")?;
            let stride_y = read_shape(r, "pool stride_y")?;
            let stride_x = read_shape(r, "pool stride_x")?;
            let pad_y = read_shape(r, "pool padding_y")?;
            let pad_x = read_shape(r, "pool padding_x")?;
            if stride_x == 0 || stride_y == 0 {
                return Err(r.invalid(
                    at,
                    "non-zero pool strides",
                    format!("{stride_y}x{stride_x}"),
                ));
            }
            Ok(if pool == "max_pool_2" {
                Layer::MaxPool {
                    nr,
                    nc,
                    stride_y,
                    stride_x,
                    pad_y,
                    pad_x,
                }
            } else {
                Layer::AvgPool {
                    nr,
                    nc,
                    stride_y,
                    stride_x,
                    pad_y,
                    pad_x,
                }
            })
        }
    }
}

/// The three empty state tensors and three flags each `add_layer` stores after its details.
fn skip_layer_state(r: &mut DatReader<'_>) -> Result<()> {
    r.read_bool("this_layer_setup_called")?;
    r.read_bool("gradient_input_is_stale")?;
    r.read_bool("get_output_and_gradient_input_disabled")?;
    r.read_tensor("x_grad")?;
    r.read_tensor("cached_output")?;
    r.read_tensor("params_grad")?;
    Ok(())
}

/// Parses a whole DNN stream (a file saved with dlib's `serialize(net, out)`).
pub fn parse_dnn(r: &mut DatReader<'_>) -> Result<DnnFile> {
    r.expect_i64(1, "network (add_loss_layer) version")?;
    let loss = read_loss(r)?;
    // Outer-to-inner version numbers: 2 = add_layer, 1 = tag or skip, 3 = add_layer on input.
    let mut stack = Vec::new();
    loop {
        let at = r.position();
        match r.read_signed("layer version")? {
            3 => break,
            v @ (1 | 2) => stack.push(v),
            v => return Err(r.invalid(at, "layer version 1, 2 or 3", v.to_string())),
        }
        if stack.len() > 100_000 {
            return Err(r.invalid(at, "a network of at most 100000 layers", "more"));
        }
    }
    let input = read_input(r)?;
    let mut layers = Vec::with_capacity(stack.len() + 1);
    layers.push(read_details(r)?);
    skip_layer_state(r)?;
    r.read_unsigned("sample_expansion_factor")?;
    for v in stack.into_iter().rev() {
        if v == 1 {
            layers.push(Layer::TagOrSkip);
        } else {
            layers.push(read_details(r)?);
            skip_layer_state(r)?;
        }
    }
    r.expect_end()?;
    Ok(DnnFile {
        loss,
        input,
        layers,
    })
}
