//! The EXIF orientation tag (0x0112) of a JPEG APP1 segment, and applying it.

use crate::RgbImage;

/// Returns the orientation (1..=8) stored in an APP1 payload, if it is EXIF and has one.
pub fn orientation(app1: &[u8]) -> Option<u16> {
    let tiff = app1.strip_prefix(b"Exif\0\0")?;
    let big = match tiff.get(..4)? {
        [b'M', b'M', 0, 42] => true,
        [b'I', b'I', 42, 0] => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = tiff.get(o..o + 2)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = tiff.get(o..o + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    for i in 0..count.min(512) {
        let e = ifd + 2 + 12 * i;
        if u16_at(e)? == 0x0112 {
            let v = u16_at(e + 8)?;
            return (1..=8).contains(&v).then_some(v);
        }
    }
    None
}

/// Transforms the image so that it displays upright, as viewers do for orientation 2..=8.
pub fn apply_orientation(img: RgbImage, orientation: u16) -> RgbImage {
    if !(2..=8).contains(&orientation) {
        return img;
    }
    let (w, h) = (img.width(), img.height());
    // Orientations 5..=8 swap the axes.
    let (ow, oh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let mut out = RgbImage::new(ow, oh);
    for y in 0..oh {
        for x in 0..ow {
            // (sx, sy): where output pixel (x, y) comes from in the stored image.
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            out.set_pixel(x, y, img.pixel(sx, sy));
        }
    }
    out
}
