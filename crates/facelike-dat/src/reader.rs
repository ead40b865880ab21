//! The byte-level reader for dlib's serialisation primitives.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What went wrong while reading a dlib stream: always names the file and the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum DatError {
    /// The file could not be read at all.
    #[error("{file}: cannot read model file: {source}")]
    Io {
        /// The file that could not be read.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The stream ended before a value was complete.
    #[error("{file}: truncated at byte {offset}: expected {expected}, but the file has only {len} bytes")]
    Truncated {
        /// The file being read.
        file: PathBuf,
        /// Byte offset where the incomplete value starts.
        offset: u64,
        /// Length of the whole stream in bytes.
        len: u64,
        /// What was being read there.
        expected: String,
    },
    /// A value was present but not what this format allows at that place.
    #[error("{file}: at byte {offset}: expected {expected}, found {found}")]
    Invalid {
        /// The file being read.
        file: PathBuf,
        /// Byte offset of the offending value.
        offset: u64,
        /// What the format allows there.
        expected: String,
        /// What the file holds instead.
        found: String,
    },
}

impl DatError {
    /// The byte offset at which the problem was found, if any.
    pub fn offset(&self) -> Option<u64> {
        match self {
            DatError::Io { .. } => None,
            DatError::Truncated { offset, .. } | DatError::Invalid { offset, .. } => Some(*offset),
        }
    }
}

/// A result whose error is a [`DatError`].
pub type Result<T> = std::result::Result<T, DatError>;

/// A 4-D tensor as dlib stores DNN parameters: `n × k × nr × nc`, NCHW row-major float32.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    /// Outermost dimension `n` (samples, or filters for convolution weights).
    pub num_samples: usize,
    /// Channels.
    pub k: usize,
    /// Rows.
    pub nr: usize,
    /// Columns.
    pub nc: usize,
    /// `n × k × nr × nc` values, `nc` varying fastest.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Whether the tensor holds no values (dlib stores unused state tensors as 0×0×0×0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// The dims as `[num_samples, k, nr, nc]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.num_samples, self.k, self.nr, self.nc]
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({}x{}x{}x{}, {} values)",
            self.num_samples,
            self.k,
            self.nr,
            self.nc,
            self.data.len()
        )
    }
}

/// A dense matrix read from a dlib stream (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<T> {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows × cols` elements, row after row.
    pub data: Vec<T>,
}

/// Cursor over an in-memory dlib stream.
///
/// Every length field is checked against the bytes that remain before anything is allocated,
/// so a corrupt length can never make the reader allocate more than the file could hold.
pub struct DatReader<'a> {
    data: &'a [u8],
    pos: usize,
    file: Arc<Path>,
}

/// The common case of a `float_details` value read into a `float`, decoded without any
/// per-byte bounds checks: a well-formed mantissa of 1..=8 bytes and an exponent of one or two
/// bytes within ±1000, with at least 18 bytes left so that both can be read as whole
/// little-endian words. Returns the value and the bytes it took, or `None` for anything else,
/// which [`DatReader::read_f32`] then reads the careful way (same value, or the error).
#[inline(always)]
fn fast_f32(p: &[u8]) -> Option<(f32, usize)> {
    if p.len() < 18 {
        return None;
    }
    let ctrl = p[0];
    let n = (ctrl & 0x0F) as usize;
    // Bits 4..6 set mean the old text format; counts outside 1..=8 are errors.
    if ctrl & 0x70 != 0 || n == 0 || n > 8 {
        return None;
    }
    let word = u64::from_le_bytes(p[1..9].try_into().expect("8 bytes"));
    let mag = if n == 8 {
        word
    } else {
        word & ((1u64 << (8 * n)) - 1)
    };
    if mag > i64::MAX as u64 {
        return None;
    }
    let m = if ctrl & 0x80 != 0 {
        -(mag as i64)
    } else {
        mag as i64
    };
    let ectrl = p[1 + n];
    let en = (ectrl & 0x0F) as usize;
    if en == 0 || en > 2 {
        return None;
    }
    let eword = u16::from_le_bytes([p[2 + n], p[3 + n]]) as i64;
    let emag = if en == 1 { eword & 0xFF } else { eword };
    let e = if ectrl & 0x80 != 0 { -emag } else { emag };
    if !(-1000..=1000).contains(&e) {
        return None;
    }
    // Exactly `ldexp`: 2^e is a normal double for |e| <= 1000, so one multiply rounds once,
    // as the careful path's multiply by `2f64.powi(e)` does.
    let scale = f64::from_bits(((e + 1023) as u64) << 52);
    Some((((m as f32) as f64 * scale) as f32, 2 + n + en))
}

/// `2^e` applied to a value without overflowing the intermediate power.
fn ldexp(mut v: f64, mut e: i64) -> f64 {
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
        if v.is_infinite() {
            return v;
        }
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
        if v == 0.0 {
            return v;
        }
    }
    v * 2f64.powi(e as i32)
}

impl<'a> DatReader<'a> {
    /// A reader at the start of `data`; `file` is only used to name the source in errors.
    ///
    /// Every `read_*` method takes `what`, a short description of the value that errors quote.
    pub fn new(data: &'a [u8], file: impl AsRef<Path>) -> Self {
        DatReader {
            data,
            pos: 0,
            file: Arc::from(file.as_ref()),
        }
    }

    /// The file name given to [`new`](Self::new).
    pub fn file(&self) -> &Path {
        &self.file
    }
    /// The byte offset of the next value.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// The number of bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    /// Whether every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    /// A [`DatError::Truncated`] for a value starting at byte `at`.
    pub fn truncated(&self, at: usize, expected: impl Into<String>) -> DatError {
        DatError::Truncated {
            file: self.file.to_path_buf(),
            offset: at as u64,
            len: self.data.len() as u64,
            expected: expected.into(),
        }
    }

    /// A [`DatError::Invalid`] for the value at byte `at`: what was `expected` there and what
    /// was `found`. Parsers of record kinds use it for their own checks.
    pub fn invalid(
        &self,
        at: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> DatError {
        DatError::Invalid {
            file: self.file.to_path_buf(),
            offset: at as u64,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Fails unless the whole stream was consumed.
    pub fn expect_end(&self) -> Result<()> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(self.invalid(
                self.pos,
                "end of file",
                format!("{} more bytes", self.remaining()),
            ))
        }
    }

    /// The next `n` raw bytes, borrowed from the stream.
    pub fn read_bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.truncated(self.pos, format!("{n} bytes of {what}")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// One raw byte.
    pub fn read_u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.read_bytes(1, what)?[0])
    }

    fn peek_u8(&self, what: &str) -> Result<u8> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.truncated(self.pos, what.to_string()))
    }

    /// dlib's packed signed integer: a control byte (low nibble = byte count, bit 7 = negative)
    /// followed by the magnitude in little-endian order.
    pub fn read_signed(&mut self, what: &str) -> Result<i64> {
        let at = self.pos;
        let ctrl = self.read_u8(what)?;
        let n = (ctrl & 0x0F) as usize;
        if n == 0 || n > 8 {
            return Err(self.invalid(
                at,
                format!("an integer ({what})"),
                format!("control byte 0x{ctrl:02x}"),
            ));
        }
        let bytes = self.read_bytes(n, what)?;
        let mut mag: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            mag |= (*b as u64) << (8 * i);
        }
        if mag > i64::MAX as u64 {
            return Err(self.invalid(at, format!("an integer ({what})"), "a value beyond i64"));
        }
        let v = mag as i64;
        Ok(if ctrl & 0x80 != 0 { -v } else { v })
    }

    /// dlib's packed unsigned integer (a set sign bit is an error, as in dlib).
    pub fn read_unsigned(&mut self, what: &str) -> Result<u64> {
        let at = self.pos;
        let ctrl = self.read_u8(what)?;
        let n = (ctrl & 0x8F) as usize;
        if n == 0 || n > 8 {
            return Err(self.invalid(
                at,
                format!("an unsigned integer ({what})"),
                format!("control byte 0x{ctrl:02x}"),
            ));
        }
        let bytes = self.read_bytes(n, what)?;
        let mut v: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        Ok(v)
    }

    /// A signed integer that must fit an `i32` (dlib's `int`).
    pub fn read_i32(&mut self, what: &str) -> Result<i32> {
        let at = self.pos;
        let v = self.read_signed(what)?;
        i32::try_from(v)
            .map_err(|_| self.invalid(at, format!("a 32-bit int ({what})"), v.to_string()))
    }

    /// Reads an int and checks it equals `expected` (version numbers and the like).
    pub fn expect_i64(&mut self, expected: i64, what: &str) -> Result<()> {
        let at = self.pos;
        let v = self.read_signed(what)?;
        if v != expected {
            return Err(self.invalid(at, format!("{what} = {expected}"), v.to_string()));
        }
        Ok(())
    }

    /// A non-negative count of elements, each at least `min_elem_bytes` long in the stream:
    /// rejected if the file cannot possibly hold that many.
    pub fn read_len(&mut self, what: &str, min_elem_bytes: usize) -> Result<usize> {
        let at = self.pos;
        let v = self.read_unsigned(what)?;
        self.check_len(at, v, what, min_elem_bytes)
    }

    /// As [`read_len`](Self::read_len), for a length stored as a signed integer.
    pub fn read_signed_len(&mut self, what: &str, min_elem_bytes: usize) -> Result<usize> {
        let at = self.pos;
        let v = self.read_signed(what)?;
        if v < 0 {
            return Err(self.invalid(at, format!("a non-negative {what}"), v.to_string()));
        }
        self.check_len(at, v as u64, what, min_elem_bytes)
    }

    fn check_len(&self, at: usize, v: u64, what: &str, min_elem_bytes: usize) -> Result<usize> {
        let need = (v as u128) * (min_elem_bytes.max(1) as u128);
        if need > self.remaining() as u128 {
            return Err(self.invalid(
                at,
                format!("{what} that fits in the {} bytes left", self.remaining()),
                v.to_string(),
            ));
        }
        Ok(v as usize)
    }

    /// dlib's `float_details` encoding: an int64 mantissa and an int16 exponent; the value is
    /// `mantissa × 2^exponent`, with three special exponents for ±inf and NaN.
    fn read_float_parts(&mut self, what: &str) -> Result<(i64, i64)> {
        let at = self.pos;
        let first = self.peek_u8(what)?;
        if first & 0x70 != 0 {
            return Err(self.invalid(
                at,
                format!("a binary float ({what})"),
                "dlib's old text float format, which these models never use",
            ));
        }
        let m = self.read_signed(what)?;
        let e = self.read_signed(what)?;
        if !(i16::MIN as i64..=i16::MAX as i64).contains(&e) {
            return Err(self.invalid(at, format!("a float exponent ({what})"), e.to_string()));
        }
        Ok((m, e))
    }

    /// A `float_details` value as a `double`: `mantissa × 2^exponent`, or ±inf or NaN.
    pub fn read_f64(&mut self, what: &str) -> Result<f64> {
        let (m, e) = self.read_float_parts(what)?;
        Ok(match e {
            32000 => f64::INFINITY,
            32001 => f64::NEG_INFINITY,
            32002 => f64::NAN,
            _ => ldexp(m as f64, e),
        })
    }

    /// A float read into `float`: dlib casts the mantissa to `float` before scaling.
    #[inline]
    pub fn read_f32(&mut self, what: &str) -> Result<f32> {
        if let Some((v, len)) = fast_f32(&self.data[self.pos..]) {
            self.pos += len;
            return Ok(v);
        }
        self.read_f32_slow(what)
    }

    /// [`read_f32`](Self::read_f32) for what the fast path leaves: special values, huge
    /// exponents, the end of the stream and malformed input (with its error message).
    #[cold]
    #[inline(never)]
    fn read_f32_slow(&mut self, what: &str) -> Result<f32> {
        let (m, e) = self.read_float_parts(what)?;
        Ok(match e {
            32000 => f32::INFINITY,
            32001 => f32::NEG_INFINITY,
            32002 => f32::NAN,
            _ => ldexp((m as f32) as f64, e) as f32,
        })
    }

    /// dlib writes bools as the ASCII digits '0' and '1'.
    pub fn read_bool(&mut self, what: &str) -> Result<bool> {
        let at = self.pos;
        match self.read_u8(what)? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            b => Err(self.invalid(
                at,
                format!("a bool '0' or '1' ({what})"),
                format!("byte 0x{b:02x}"),
            )),
        }
    }

    /// A string: an unsigned length, then that many bytes, each taken as one Latin-1 char.
    pub fn read_string(&mut self, what: &str) -> Result<String> {
        let n = self.read_len(what, 1)?;
        let bytes = self.read_bytes(n, what)?;
        Ok(bytes.iter().map(|&b| b as char).collect())
    }

    /// Reads a string that must be one of `allowed`; returns which.
    pub fn expect_one_of(&mut self, allowed: &[&str], what: &str) -> Result<String> {
        let at = self.pos;
        let s = self.read_string(what)?;
        if allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(self.invalid(
                at,
                format!("{what}: one of {}", allowed.join(", ")),
                format!("{s:?}"),
            ))
        }
    }

    fn read_matrix_dims(&mut self, what: &str, min_elem_bytes: usize) -> Result<(usize, usize)> {
        let at = self.pos;
        let nr = self.read_signed(what)?.unsigned_abs();
        let nc = self.read_signed(what)?.unsigned_abs();
        let count = (nr as u128) * (nc as u128);
        if count * (min_elem_bytes as u128) > self.remaining() as u128 {
            return Err(self.invalid(
                at,
                format!(
                    "{what}: a matrix that fits in the {} bytes left",
                    self.remaining()
                ),
                format!("{nr}x{nc}"),
            ));
        }
        Ok((nr as usize, nc as usize))
    }

    /// A `dlib::matrix<float>`: dims as signed ints (negated in the current format), then the
    /// elements row-major in float encoding.
    pub fn read_matrix_f32(&mut self, what: &str) -> Result<Matrix<f32>> {
        let mut data = Vec::new();
        let (rows, cols) = self.read_matrix_f32_into(what, &mut data)?;
        Ok(Matrix { rows, cols, data })
    }

    /// A `dlib::matrix<float>` whose elements are appended to `out` (so that many small
    /// matrices can share one allocation); returns its rows and columns.
    pub fn read_matrix_f32_into(
        &mut self,
        what: &str,
        out: &mut Vec<f32>,
    ) -> Result<(usize, usize)> {
        // Each float needs at least 4 bytes (two 2-byte ints).
        let (rows, cols) = self.read_matrix_dims(what, 4)?;
        let count = rows * cols;
        let start = out.len();
        out.resize(start + count, 0.0);
        let data = self.data;
        let mut pos = self.pos;
        for d in &mut out[start..] {
            let p = &data[pos..];
            // Almost every float of a trained model is a 3-byte mantissa and a 1-byte exponent
            // (float's 24-bit significand): take those with a constant step, so that the next
            // value's position does not wait for this one's control bytes.
            if p.len() >= 18 && p[0] & 0x7F == 3 && p[4] & 0x7F == 1 {
                let mag = u32::from_le_bytes([p[1], p[2], p[3], 0]) as i32;
                let m = if p[0] & 0x80 != 0 { -mag } else { mag };
                let e = if p[4] & 0x80 != 0 {
                    -(p[5] as i32)
                } else {
                    p[5] as i32
                };
                // |m| < 2^24 converts exactly; with 2^e a normal float, the one float
                // multiply rounds the exact product once, as dlib's double multiply and
                // cast to float do.
                *d = if (-126..=127).contains(&e) {
                    m as f32 * f32::from_bits(((e + 127) as u32) << 23)
                } else {
                    ((m as f32) as f64 * f64::from_bits(((e + 1023) as u64) << 52)) as f32
                };
                pos += 6;
            } else {
                self.pos = pos;
                *d = self.read_f32(what)?;
                pos = self.pos;
            }
        }
        self.pos = pos;
        Ok((rows, cols))
    }

    /// A `dlib::matrix<double>`: as [`read_matrix_f32`](Self::read_matrix_f32), elements
    /// read with [`read_f64`](Self::read_f64).
    pub fn read_matrix_f64(&mut self, what: &str) -> Result<Matrix<f64>> {
        let (rows, cols) = self.read_matrix_dims(what, 4)?;
        let mut data = Vec::with_capacity(rows * cols);
        for _ in 0..rows * cols {
            data.push(self.read_f64(what)?);
        }
        Ok(Matrix { rows, cols, data })
    }

    /// `resizable_tensor`: version 2, four dims, then raw little-endian float32 data.
    pub fn read_tensor(&mut self, what: &str) -> Result<Tensor> {
        self.expect_i64(2, &format!("tensor version of {what}"))?;
        let at = self.pos;
        let mut dims = [0usize; 4];
        for d in dims.iter_mut() {
            let v = self.read_signed(what)?;
            if v < 0 {
                return Err(self.invalid(
                    at,
                    format!("non-negative tensor dims ({what})"),
                    v.to_string(),
                ));
            }
            *d = v as usize;
        }
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let count = match count {
            Some(c) if c.checked_mul(4).is_some_and(|b| b <= self.remaining()) => c,
            _ => {
                return Err(self.invalid(
                    at,
                    format!(
                        "{what}: a tensor that fits in the {} bytes left",
                        self.remaining()
                    ),
                    format!("{}x{}x{}x{}", dims[0], dims[1], dims[2], dims[3]),
                ))
            }
        };
        let bytes = self.read_bytes(count * 4, what)?;
        let data = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Tensor {
            num_samples: dims[0],
            k: dims[1],
            nr: dims[2],
            nc: dims[3],
            data,
        })
    }

    /// An `alias_tensor` (a shape only): version 1 then four dims.
    pub fn read_alias_tensor(&mut self, what: &str) -> Result<[i64; 4]> {
        self.expect_i64(1, &format!("alias tensor version of {what}"))?;
        let mut dims = [0i64; 4];
        for d in dims.iter_mut() {
            *d = self.read_signed(what)?;
        }
        Ok(dims)
    }
}

/// Reads a whole model file into memory, naming it in any error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DatError::Io {
        file: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(bytes: &[u8]) -> DatReader<'_> {
        DatReader::new(bytes, "t.dat")
    }

    #[test]
    fn integers_match_dlib_examples() {
        assert_eq!(r(&[0x01, 0x00]).read_signed("x").unwrap(), 0);
        assert_eq!(r(&[0x01, 0x05]).read_signed("x").unwrap(), 5);
        assert_eq!(r(&[0x01, 0x96]).read_unsigned("x").unwrap(), 150);
        assert_eq!(r(&[0x81, 0x0A]).read_signed("x").unwrap(), -10);
        assert_eq!(r(&[0x02, 0x80, 0x12]).read_signed("x").unwrap(), 4736);
        // A negative value cannot be read as unsigned.
        assert!(r(&[0x81, 0x0A]).read_unsigned("x").is_err());
        assert!(r(&[0x00]).read_signed("x").is_err());
        assert!(r(&[0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .read_signed("x")
            .is_err());
    }

    #[test]
    fn floats_match_dlib_examples() {
        let v = r(&[0x03, 0x9A, 0x99, 0x99, 0x81, 0x18])
            .read_f32("x")
            .unwrap();
        assert_eq!(v, 0.6f32);
        let v = r(&[0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C])
            .read_f32("x")
            .unwrap();
        assert_eq!(v, 0.04f32);
        assert_eq!(r(&[0x01, 0x10, 0x81, 0x04]).read_f64("x").unwrap(), 1.0);
        assert_eq!(r(&[0x01, 0x80, 0x81, 0x07]).read_f32("x").unwrap(), 1.0);
        assert_eq!(r(&[0x01, 0x00, 0x01, 0x28]).read_f32("x").unwrap(), 0.0);
        // Special exponents: 32000 = +inf (0x7D00), 32002 = NaN.
        assert_eq!(
            r(&[0x01, 0x00, 0x02, 0x00, 0x7D]).read_f64("x").unwrap(),
            f64::INFINITY
        );
        assert!(r(&[0x01, 0x00, 0x02, 0x02, 0x7D])
            .read_f64("x")
            .unwrap()
            .is_nan());
        // The old ASCII float format is refused with a clear message.
        let e = r(b"1.5 ").read_f64("x").unwrap_err();
        assert!(e.to_string().contains("old text float"), "{e}");
    }

    /// dlib's encoding of an int: control byte (count | sign) and the magnitude's bytes.
    fn encode_int(v: i64, out: &mut Vec<u8>) {
        let mag = v.unsigned_abs();
        let n = (8 - mag.leading_zeros() as usize / 8).max(1);
        out.push(n as u8 | if v < 0 { 0x80 } else { 0 });
        out.extend_from_slice(&mag.to_le_bytes()[..n]);
    }

    #[test]
    fn fast_float_path_equals_the_careful_one() {
        // Mantissas and exponents around every boundary of the fast path, each followed by
        // padding so the fast path applies, and also at the very end of the stream.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases: Vec<(i64, i64)> = Vec::new();
        for m in [
            0i64,
            1,
            -1,
            255,
            256,
            -65536,
            16777217,
            i64::MAX,
            -i64::MAX,
            1 << 40,
        ] {
            for e in [
                0i64, 1, -1, -127, 127, -149, -150, -1000, 1000, -1001, 1001, 32000, 32002,
            ] {
                cases.push((m, e));
            }
        }
        for _ in 0..20000 {
            // Mostly the common form: a 24-bit mantissa and a one-byte exponent.
            let m = (next() % (1 << 24)) as i64 - (1 << 23);
            cases.push((m, (next() % 300) as i64 - 150));
            let bits = next() % 64;
            let m = (next() >> (63 - bits.min(62))) as i64 * if next() % 2 == 0 { 1 } else { -1 };
            let e = (next() % 2400) as i64 - 1200;
            cases.push((m, e));
        }
        // The same values as one matrix (the leaf-reading path), against one careful read each.
        let mut matrix = Vec::new();
        encode_int(-(cases.len() as i64), &mut matrix);
        encode_int(-1, &mut matrix);
        for &(m, e) in &cases {
            encode_int(m, &mut matrix);
            encode_int(e, &mut matrix);
        }
        let got = r(&matrix).read_matrix_f32("m").unwrap();
        let mut slow = r(&matrix);
        slow.read_signed("rows").unwrap();
        slow.read_signed("cols").unwrap();
        for (i, g) in got.data.iter().enumerate() {
            let want = slow.read_f32_slow("x").unwrap();
            assert_eq!(g.to_bits(), want.to_bits(), "{:?}", cases[i]);
        }
        for (m, e) in cases {
            let mut b = Vec::new();
            encode_int(m, &mut b);
            encode_int(e, &mut b);
            let len = b.len();
            let mut padded = b.clone();
            padded.resize(len + 20, 0x01);
            let mut fast = r(&padded);
            let got = fast.read_f32("x").unwrap();
            let mut slow = r(&b);
            let want = slow.read_f32_slow("x").unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "m={m} e={e}");
            assert_eq!(fast.position(), len, "m={m} e={e}");
            assert_eq!(r(&b).read_f32("x").unwrap().to_bits(), want.to_bits());
        }
        // Malformed input still gets the careful path's errors.
        let mut bad = vec![0x00u8];
        bad.resize(30, 0);
        assert!(r(&bad).read_f32("x").is_err());
        let mut bad = vec![0x09u8];
        bad.resize(30, 0);
        assert!(r(&bad).read_f32("x").is_err());
        let mut text = b"1.5 ".to_vec();
        text.resize(30, b' ');
        assert!(r(&text).read_f32("x").is_err());
    }

    #[test]
    fn truncation_names_file_and_offset() {
        let e = r(&[0x02, 0x80]).read_signed("count").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("t.dat") && s.contains("byte 1") && s.contains("count"),
            "{s}"
        );
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        // A string claiming 2^56 bytes in a 10-byte stream.
        let e = r(&[0x08, 0, 0, 0, 0, 0, 0, 0, 1, b'a'])
            .read_string("name")
            .unwrap_err();
        assert!(matches!(e, DatError::Invalid { offset: 0, .. }), "{e}");
        // A tensor claiming 10^6 x 10^6 elements.
        let mut b = vec![0x01, 0x02];
        for _ in 0..4 {
            b.extend_from_slice(&[0x03, 0x40, 0x42, 0x0F]);
        }
        assert!(r(&b).read_tensor("w").is_err());
        // A matrix with negative (new-format) dims larger than the stream.
        assert!(r(&[0x84, 0xFF, 0xFF, 0xFF, 0x7F, 0x81, 0x01])
            .read_matrix_f32("m")
            .is_err());
    }

    #[test]
    fn matrices_bools_and_tensors() {
        // -2 x -1 matrix of floats 1.0, 0.0
        let b = [
            0x81, 0x02, 0x81, 0x01, 0x01, 0x80, 0x81, 0x07, 0x01, 0x00, 0x01, 0x28,
        ];
        let m = r(&b).read_matrix_f32("m").unwrap();
        assert_eq!((m.rows, m.cols, m.data), (2, 1, vec![1.0, 0.0]));
        assert!(r(b"1").read_bool("b").unwrap());
        assert!(!r(b"0").read_bool("b").unwrap());
        assert!(r(b"2").read_bool("b").is_err());
        let empty = [0x01, 0x02, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00];
        let t = r(&empty).read_tensor("t").unwrap();
        assert!(t.is_empty());
        let mut one = vec![0x01, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
        one.extend_from_slice(&1.5f32.to_le_bytes());
        assert_eq!(r(&one).read_tensor("t").unwrap().data, vec![1.5]);
    }
}
