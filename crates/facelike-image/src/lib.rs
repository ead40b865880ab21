//! # facelike-image: photos in, 8-bit RGB out — the way face_recognition sees them
//!
//! [`load`] reads JPEG, PNG, GIF, WEBP, BMP and PNM files, choosing the decoder from the file's
//! content (never its extension), and converts every pixel format to 8-bit RGB the way
//! Pillow's `Image.convert("RGB")` does, which is what `face_recognition.load_image_file`
//! hands to dlib:
//!
//! * JPEG goes through libjpeg-turbo's decoder (via the `mozjpeg` crate), the same code Pillow
//!   uses, so the pixels are bit-identical to Pillow's; CMYK/YCCK JPEGs are converted with
//!   Pillow's formula. A truncated JPEG is an error here (Pillow, with face_recognition's
//!   `LOAD_TRUNCATED_IMAGES`, would silently fill the missing part with grey).
//! * PNG/GIF/WEBP/BMP/PNM go through the `image` crate. Alpha is dropped (not composited),
//!   greyscale is replicated, 16-bit samples keep their high byte.
//! * EXIF orientation is applied by default ([`LoadOptions::exif_orientation`]); Pillow does not
//!   apply it, so `face_recognition` sees phone photos sideways. Turn it off for exact parity.
//! * Images above [`LoadOptions::max_pixels`] are refused from their header, before any pixel
//!   buffer is allocated.
//!
//! Every error names the file and says what is wrong with it.
//!
//! [`resample`] holds dlib's own resampling routines (bilinear resize, pyramids), reproduced
//! bit for bit because detector scores depend on them.
//!
//! [`walk`] finds the image files under folders (the one list of extensions taken as images,
//! [`walk::IMAGE_EXTENSIONS`], and the one folder walker, [`walk::image_files`]); [`files`]
//! holds the file hash ([`sha256_file`]) and the model-directory rule ([`models_dir`]) that the
//! crates above share.

mod exif;
pub mod files;
pub mod resample;
pub mod walk;

pub use files::{models_dir, samples_dir, sha256_file};
pub use walk::{image_files, is_image_path, WalkError, WalkOptions, IMAGE_EXTENSIONS};

use std::path::{Path, PathBuf};

/// An 8-bit RGB image, row-major, 3 bytes per pixel, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        RgbImage {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }

    /// Wraps raw RGB bytes; `None` if the length is not `width × height × 3`.
    pub fn from_raw(width: usize, height: usize, data: Vec<u8>) -> Option<Self> {
        (data.len() == width.checked_mul(height)?.checked_mul(3)?).then_some(RgbImage {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Whether the image has no pixels (zero width or height).
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }
    /// All pixels as `width × height × 3` bytes, R, G, B, row after row.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }
    /// All pixels, mutable, laid out as in [`as_raw`](Self::as_raw).
    pub fn as_raw_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    /// The pixel buffer, laid out as in [`as_raw`](Self::as_raw).
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// The pixel at (x, y); panics when outside (callers check bounds first).
    #[inline]
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Sets the pixel at (x, y) to `p` (R, G, B); panics when outside.
    #[inline]
    pub fn set_pixel(&mut self, x: usize, y: usize, p: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        self.data[i..i + 3].copy_from_slice(&p);
    }

    /// One row as bytes.
    #[inline]
    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.width * 3..(y + 1) * self.width * 3]
    }

    /// Saves as PNG (used for chips and thumbnails; never for anything committed).
    pub fn save_png(&self, path: &Path) -> Result<(), ImageError> {
        image::save_buffer(
            path,
            &self.data,
            self.width as u32,
            self.height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| ImageError::new(path, ImageErrorKind::Write(e.to_string())))
    }

    /// Encodes as PNG in memory.
    pub fn to_png_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let enc = image::codecs::png::PngEncoder::new(&mut out);
        image::ImageEncoder::write_image(
            enc,
            &self.data,
            self.width as u32,
            self.height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding PNG into memory cannot fail");
        out
    }
}

/// The container formats [`load`] recognises from their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JPEG, decoded by libjpeg-turbo.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (87a or 89a); only the first frame is read.
    Gif,
    /// WEBP (a RIFF container).
    Webp,
    /// Windows BMP.
    Bmp,
    /// Netpbm: PBM, PGM, PPM or PAM (`P1` to `P7`).
    Pnm,
}

impl Format {
    /// Identifies a format from magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Format::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Format::Gif),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Format::Webp),
            [b'B', b'M', ..] => Some(Format::Bmp),
            [b'P', b'1'..=b'7', ..] => Some(Format::Pnm),
            _ => None,
        }
    }

    /// The format's usual name in capitals, as used in error messages ("JPEG", "PNG", …).
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Webp => "WEBP",
            Format::Bmp => "BMP",
            Format::Pnm => "PNM",
        }
    }
}

/// Names other common formats so the error can say what the file is.
fn describe_unknown(bytes: &[u8]) -> String {
    let what = match bytes {
        [] => return "the file is empty".into(),
        [b'I', b'I', 0x2A, 0, ..] | [b'M', b'M', 0, 0x2A, ..] => "a TIFF file",
        [_, _, _, _, b'f', b't', b'y', b'p', b'h', b'e', b'i', b'c', ..]
        | [_, _, _, _, b'f', b't', b'y', b'p', b'm', b'i', b'f', b'1', ..] => "a HEIC/HEIF file",
        [_, _, _, _, b'f', b't', b'y', b'p', b'a', b'v', b'i', b'f', ..] => "an AVIF file",
        [b'%', b'P', b'D', b'F', ..] => "a PDF document",
        [0xFF, 0xD8, ..] => "a JPEG file with a broken header",
        _ => "not an image format facelike reads",
    };
    format!(
        "{what} (first bytes {:02x?}); supported: JPEG, PNG, GIF, WEBP, BMP, PNM",
        &bytes[..bytes.len().min(8)]
    )
}

/// Options for [`load_with`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Largest accepted `width × height`. Default 100 megapixels (a 10000×10000 photo), which
    /// keeps a worst-case RGB buffer near 300 MB.
    pub max_pixels: u64,
    /// Rotate/flip JPEGs according to their EXIF orientation tag. Default on.
    pub exif_orientation: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_pixels: 100_000_000,
            exif_orientation: true,
        }
    }
}

/// What went wrong with one image file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct ImageError {
    /// The file that failed.
    pub path: PathBuf,
    /// What was wrong with it.
    pub kind: ImageErrorKind,
}

impl ImageError {
    /// An error about the file at `path`.
    pub fn new(path: &Path, kind: ImageErrorKind) -> Self {
        ImageError {
            path: path.to_path_buf(),
            kind,
        }
    }
}

/// The kinds of failure of [`decode`], [`load`] and [`RgbImage::save_png`], without the path.
#[derive(Debug, thiserror::Error)]
pub enum ImageErrorKind {
    /// The file could not be read.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// The first bytes match no format [`load`] reads; the message says what the file seems
    /// to be and shows its first bytes.
    #[error("unrecognised image format: {0}")]
    UnknownFormat(String),
    /// The decoder rejected the data.
    #[error("corrupt {format} data: {message}")]
    Corrupt {
        /// The format's name ([`Format::name`]).
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The data ends before the last pixel.
    #[error("truncated {format} file: the data ends before the image is complete")]
    Truncated {
        /// The format's name ([`Format::name`]).
        format: &'static str,
    },
    /// The header declares more than [`LoadOptions::max_pixels`] pixels.
    #[error("image is {width}x{height} = {} pixels, over the limit of {limit} pixels (raise it with --max-pixels)", width * height)]
    TooLarge {
        /// Declared width in pixels.
        width: u64,
        /// Declared height in pixels.
        height: u64,
        /// The limit in force ([`LoadOptions::max_pixels`]).
        limit: u64,
    },
    /// The image has zero width or height.
    #[error("image has zero width or height")]
    Empty,
    /// A valid file using a feature the decoder does not support.
    #[error("unsupported {format} variant: {message}")]
    Unsupported {
        /// The format's name ([`Format::name`]).
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// Encoding or writing an image failed (the encoder's message).
    #[error("cannot write image: {0}")]
    Write(String),
}

/// Loads an image file with default [`LoadOptions`].
pub fn load(path: impl AsRef<Path>) -> Result<RgbImage, ImageError> {
    load_with(path, &LoadOptions::default())
}

/// Loads an image file as 8-bit RGB with the given options; errors name the file.
pub fn load_with(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<RgbImage, ImageError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ImageError::new(path, ImageErrorKind::Io(e)))?;
    decode(&bytes, opts).map_err(|kind| ImageError::new(path, kind))
}

/// Decodes an in-memory image (the format is sniffed from the bytes).
pub fn decode(bytes: &[u8], opts: &LoadOptions) -> Result<RgbImage, ImageErrorKind> {
    let format = Format::sniff(bytes)
        .ok_or_else(|| ImageErrorKind::UnknownFormat(describe_unknown(bytes)))?;
    let img = match format {
        Format::Jpeg => decode_jpeg(bytes, opts)?,
        other => decode_with_image_crate(bytes, other, opts)?,
    };
    if img.is_empty() {
        return Err(ImageErrorKind::Empty);
    }
    Ok(img)
}

fn check_size(width: u64, height: u64, opts: &LoadOptions) -> Result<(), ImageErrorKind> {
    if width == 0 || height == 0 {
        return Err(ImageErrorKind::Empty);
    }
    if width.saturating_mul(height) > opts.max_pixels {
        return Err(ImageErrorKind::TooLarge {
            width,
            height,
            limit: opts.max_pixels,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JPEG through libjpeg-turbo (mozjpeg), bit-identical to Pillow.

mod jpeg_warnings {
    use std::cell::Cell;
    thread_local! {
        pub static HIT_EOF: Cell<bool> = const { Cell::new(false) };
    }
}

/// libjpeg reports a premature end of data as a warning and pads with grey; we want to know.
extern "C-unwind" fn record_warning(
    cinfo: &mut mozjpeg_sys::jpeg_common_struct,
    level: std::os::raw::c_int,
) {
    // SAFETY: libjpeg always calls this with a valid error manager installed.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && code == mozjpeg_sys::JWRN_JPEG_EOF {
        jpeg_warnings::HIT_EOF.with(|c| c.set(true));
    }
}

extern "C-unwind" fn unwind_on_error(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    let mut buf = [0u8; 200];
    // SAFETY: format_message writes at most JMSG_LENGTH_MAX (200) bytes into the buffer.
    let msg = unsafe {
        match (*cinfo.err).format_message {
            Some(f) => {
                let f: unsafe extern "C-unwind" fn(
                    &mut mozjpeg_sys::jpeg_common_struct,
                    &mut [u8; 200],
                ) = std::mem::transmute(f);
                f(cinfo, &mut buf);
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            }
            None => format!("libjpeg error {}", (*cinfo.err).msg_code),
        }
    };
    std::panic::resume_unwind(Box::new(msg));
}

fn jpeg_error_mgr() -> mozjpeg::decompress::DecompressBuilder<'static> {
    // SAFETY: jpeg_std_error fills in a zeroed error manager with libjpeg's defaults.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe {
        mozjpeg_sys::jpeg_std_error(&mut err);
    }
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(record_warning);
    mozjpeg::Decompress::with_err(err)
}

fn decode_jpeg(bytes: &[u8], opts: &LoadOptions) -> Result<RgbImage, ImageErrorKind> {
    jpeg_warnings::HIT_EOF.with(|c| c.set(false));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_jpeg_inner(bytes, opts)
    }));
    let hit_eof = jpeg_warnings::HIT_EOF.with(|c| c.replace(false));
    match result {
        Ok(Ok(img)) if hit_eof => {
            drop(img);
            Err(ImageErrorKind::Truncated { format: "JPEG" })
        }
        Ok(r) => r,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "decoder failed".into());
            if hit_eof {
                return Err(ImageErrorKind::Truncated { format: "JPEG" });
            }
            Err(ImageErrorKind::Corrupt {
                format: "JPEG",
                message,
            })
        }
    }
}

fn decode_jpeg_inner(bytes: &[u8], opts: &LoadOptions) -> Result<RgbImage, ImageErrorKind> {
    use mozjpeg::ColorSpace;
    let corrupt = |e: std::io::Error| ImageErrorKind::Corrupt {
        format: "JPEG",
        message: e.to_string(),
    };
    let d = jpeg_error_mgr()
        .with_markers(&[mozjpeg::Marker::APP(1)])
        .from_mem(bytes)
        .map_err(corrupt)?;
    let (w, h) = d.size();
    check_size(w as u64, h as u64, opts)?;
    let orientation = if opts.exif_orientation {
        d.markers()
            .filter(|m| m.marker == mozjpeg::Marker::APP(1))
            .find_map(|m| exif::orientation(m.data))
            .unwrap_or(1)
    } else {
        1
    };
    let img = match d.color_space() {
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            // libjpeg converts YCCK to CMYK; Adobe CMYK JPEGs store inverted values, which
            // Pillow undoes ("CMYK;I") before its CMYK->RGB formula.
            let adobe = bytes.windows(5).take(4096).any(|w| w == b"Adobe");
            let mut s = d.to_colorspace(ColorSpace::JCS_CMYK).map_err(corrupt)?;
            let px: Vec<[u8; 4]> = s.read_scanlines().map_err(corrupt)?;
            s.finish().map_err(corrupt)?;
            let mut out = Vec::with_capacity(w * h * 3);
            for p in px {
                let [c, m, y, k] = if adobe { p.map(|v| 255 - v) } else { p };
                out.extend_from_slice(&cmyk_to_rgb(c, m, y, k));
            }
            RgbImage::from_raw(w, h, out).expect("size matches")
        }
        _ => {
            let mut s = d.rgb().map_err(corrupt)?;
            let px: Vec<u8> = s.read_scanlines().map_err(corrupt)?;
            s.finish().map_err(corrupt)?;
            RgbImage::from_raw(w, h, px).ok_or_else(|| ImageErrorKind::Corrupt {
                format: "JPEG",
                message: "decoder returned fewer rows than the header declares".into(),
            })?
        }
    };
    Ok(exif::apply_orientation(img, orientation))
}

/// Pillow's CMYK → RGB (`cmyk2rgb` in libImaging/Convert.c): `nk - c·nk/255` with nk = 255 − k.
fn cmyk_to_rgb(c: u8, m: u8, y: u8, k: u8) -> [u8; 3] {
    let nk = 255 - k as i32;
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    [c, m, y].map(|v| (nk - muldiv255(v as i32, nk)).clamp(0, 255) as u8)
}

// ---------------------------------------------------------------------------------------------
// Everything else through the `image` crate.

fn decode_with_image_crate(
    bytes: &[u8],
    format: Format,
    opts: &LoadOptions,
) -> Result<RgbImage, ImageErrorKind> {
    use image::ImageDecoder;
    let fmt = match format {
        Format::Png => image::ImageFormat::Png,
        Format::Gif => image::ImageFormat::Gif,
        Format::Webp => image::ImageFormat::WebP,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::Pnm => image::ImageFormat::Pnm,
        Format::Jpeg => unreachable!("JPEG has its own decoder"),
    };
    let name = format.name();
    let map_err = |e: image::ImageError| match e {
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageErrorKind::Truncated { format: name }
        }
        image::ImageError::Unsupported(u) => ImageErrorKind::Unsupported {
            format: name,
            message: u.to_string(),
        },
        image::ImageError::Limits(l) => ImageErrorKind::Corrupt {
            format: name,
            message: format!("decoder limit: {l}"),
        },
        other => {
            let message = other.to_string();
            // The png and gif decoders report a short file in their own words.
            let lower = message.to_lowercase();
            if lower.contains("eof")
                || lower.contains("end of")
                || lower.contains("unexpected end")
                || lower.contains("truncat")
            {
                ImageErrorKind::Truncated { format: name }
            } else {
                ImageErrorKind::Corrupt {
                    format: name,
                    message,
                }
            }
        }
    };
    if let (Format::Png, Some(ihdr)) = (format, bytes.get(16..24)) {
        // Check the declared size before the decoder looks any further.
        let w = u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]);
        let h = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
        check_size(w as u64, h as u64, opts)?;
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), fmt);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(1 << 26));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    check_size(w as u64, h as u64, opts)?;
    let color = decoder.color_type();
    let mut buf = vec![0u8; decoder.total_bytes() as usize];
    decoder.read_image(&mut buf).map_err(map_err)?;
    let (w, h) = (w as usize, h as usize);
    let n = w * h;
    use image::ColorType as C;
    let be16 = |b: &[u8], i: usize| -> u8 {
        // The image crate hands out native-endian u16; keep the high byte as Pillow does.
        u16::from_ne_bytes([b[2 * i], b[2 * i + 1]]).to_be_bytes()[0]
    };
    let mut out = Vec::with_capacity(n * 3);
    match color {
        C::Rgb8 => out = buf,
        C::Rgba8 => buf
            .chunks_exact(4)
            .for_each(|p| out.extend_from_slice(&p[..3])),
        C::L8 => buf.iter().for_each(|&v| out.extend_from_slice(&[v, v, v])),
        C::La8 => buf
            .chunks_exact(2)
            .for_each(|p| out.extend_from_slice(&[p[0], p[0], p[0]])),
        C::Rgb16 => (0..n * 3).for_each(|i| out.push(be16(&buf, i))),
        C::Rgba16 => (0..n).for_each(|i| (0..3).for_each(|c| out.push(be16(&buf, i * 4 + c)))),
        C::L16 => (0..n).for_each(|i| {
            let v = be16(&buf, i);
            out.extend_from_slice(&[v, v, v])
        }),
        C::La16 => (0..n).for_each(|i| {
            let v = be16(&buf, 2 * i);
            out.extend_from_slice(&[v, v, v])
        }),
        other => {
            return Err(ImageErrorKind::Unsupported {
                format: name,
                message: format!("pixel format {other:?}"),
            })
        }
    }
    Ok(RgbImage::from_raw(w, h, out).expect("size matches"))
}

#[cfg(test)]
mod tests;
