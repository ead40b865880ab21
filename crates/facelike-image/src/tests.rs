use super::*;

fn encode_png(w: u32, h: u32, color: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut out);
    image::ImageEncoder::write_image(enc, data, w, h, color).unwrap();
    out
}

fn encode_jpeg_rgb(w: usize, h: usize, data: &[u8], markers: &[(u8, &[u8])]) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w, h);
    c.set_quality(90.0);
    let mut s = c.start_compress(Vec::new()).unwrap();
    for (n, d) in markers {
        s.write_marker(mozjpeg::Marker::APP(*n), d);
    }
    s.write_scanlines(data).unwrap();
    s.finish().unwrap()
}

fn gradient(w: usize, h: usize) -> Vec<u8> {
    (0..w * h)
        .flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 128])
        .collect()
}

fn opts() -> LoadOptions {
    LoadOptions::default()
}

#[test]
fn rgba_png_drops_alpha_without_compositing() {
    let data: Vec<u8> = (0..16u8)
        .flat_map(|i| [i * 10, 255 - i, i, i * 7])
        .collect();
    let png = encode_png(4, 4, image::ExtendedColorType::Rgba8, &data);
    let img = decode(&png, &opts()).unwrap();
    let expect: Vec<u8> = data.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert_eq!(img.as_raw(), &expect[..]);
}

#[test]
fn grey_and_grey_alpha_are_replicated() {
    let g: Vec<u8> = (0..9u8).map(|i| i * 20).collect();
    let img = decode(&encode_png(3, 3, image::ExtendedColorType::L8, &g), &opts()).unwrap();
    assert_eq!(img.pixel(2, 1), [100, 100, 100]);
    let la: Vec<u8> = g.iter().flat_map(|&v| [v, 0]).collect();
    let img = decode(
        &encode_png(3, 3, image::ExtendedColorType::La8, &la),
        &opts(),
    )
    .unwrap();
    assert_eq!(img.pixel(1, 2), [140, 140, 140]);
}

#[test]
fn sixteen_bit_keeps_the_high_byte() {
    // Pillow opens 16-bit RGB PNGs with rawmode "RGB;16B": the high byte of each sample.
    let samples: Vec<u16> = vec![0x0000, 0x00FF, 0x0100, 0x7FFF, 0x8000, 0xFFFF];
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let png = encode_png(2, 1, image::ExtendedColorType::Rgb16, &bytes);
    let img = decode(&png, &opts()).unwrap();
    assert_eq!(img.as_raw(), &[0x00, 0x00, 0x01, 0x7F, 0x80, 0xFF]);
    let grey = encode_png(2, 1, image::ExtendedColorType::L16, &bytes[..4]);
    assert_eq!(
        decode(&grey, &opts()).unwrap().as_raw(),
        &[0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn webp_named_jpg_is_decoded_by_content() {
    let data = gradient(16, 8);
    let mut webp = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp),
        &data,
        16,
        8,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("facelike-img-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("actually-webp.jpg");
    std::fs::write(&path, &webp).unwrap();
    let img = load(&path).unwrap();
    assert_eq!((img.width(), img.height()), (16, 8));
    assert_eq!(img.as_raw(), &data[..]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gif_bmp_and_pnm_decode() {
    let data = gradient(5, 4);
    for fmt in [image::ImageFormat::Bmp, image::ImageFormat::Pnm] {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_raw(5, 4, data.clone())
            .unwrap()
            .write_to(&mut out, fmt)
            .unwrap();
        let img = decode(out.get_ref(), &opts()).unwrap();
        assert_eq!(img.as_raw(), &data[..], "{fmt:?}");
    }
    let pgm = b"P5\n3 2\n255\n\x00\x10\x20\x30\x40\xff";
    let img = decode(pgm, &opts()).unwrap();
    assert_eq!(img.pixel(2, 1), [255, 255, 255]);
    assert_eq!(img.pixel(1, 0), [16, 16, 16]);
    let mut gif = std::io::Cursor::new(Vec::new());
    let grey: Vec<u8> = (0..20u8).flat_map(|i| [i * 12; 3]).collect();
    image::RgbImage::from_raw(5, 4, grey.clone())
        .unwrap()
        .write_to(&mut gif, image::ImageFormat::Gif)
        .unwrap();
    let img = decode(gif.get_ref(), &opts()).unwrap();
    assert_eq!(img.pixel(3, 2), [grey[39]; 3]);
}

#[test]
fn jpeg_round_trip_and_truncation() {
    let data = gradient(64, 48);
    let jpg = encode_jpeg_rgb(64, 48, &data, &[]);
    let img = decode(&jpg, &opts()).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
    let err = decode(&jpg[..jpg.len() / 2], &opts()).unwrap_err();
    assert!(
        matches!(err, ImageErrorKind::Truncated { format: "JPEG" }),
        "{err}"
    );
    // Only the header: still truncated, not a panic.
    let err = decode(&jpg[..40], &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageErrorKind::Truncated { .. } | ImageErrorKind::Corrupt { .. }
        ),
        "{err}"
    );
    // Garbage after a JPEG signature.
    let mut bad = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bad.extend(std::iter::repeat_n(0x42u8, 100));
    let err = decode(&bad, &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageErrorKind::Corrupt { .. } | ImageErrorKind::Truncated { .. }
        ),
        "{err}"
    );
}

#[test]
fn truncated_png_is_reported() {
    let png = encode_png(32, 32, image::ExtendedColorType::Rgb8, &gradient(32, 32));
    let err = decode(&png[..png.len() - 30], &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageErrorKind::Truncated { .. } | ImageErrorKind::Corrupt { .. }
        ),
        "{err}"
    );
}

fn exif_orientation_segment(o: u16) -> Vec<u8> {
    let mut v = b"Exif\0\0II*\0".to_vec();
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&0x0112u16.to_le_bytes());
    v.extend_from_slice(&3u16.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&o.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    v
}

#[test]
fn exif_rotation_is_applied_unless_disabled() {
    // A 16x8 image, left half black, right half white, tagged "rotate 90 CW" (6).
    let data: Vec<u8> = (0..16 * 8)
        .flat_map(|i| if i % 16 < 8 { [0u8; 3] } else { [255u8; 3] })
        .collect();
    let jpg = encode_jpeg_rgb(16, 8, &data, &[(1, &exif_orientation_segment(6))]);
    let img = decode(&jpg, &opts()).unwrap();
    assert_eq!((img.width(), img.height()), (8, 16));
    // After a clockwise turn the white half is at the bottom.
    assert!(img.pixel(4, 14)[0] > 200 && img.pixel(4, 1)[0] < 50);
    let raw = decode(
        &jpg,
        &LoadOptions {
            exif_orientation: false,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!((raw.width(), raw.height()), (16, 8));
}

#[test]
fn cmyk_jpeg_is_converted_like_pillow() {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    c.set_size(8, 8);
    c.set_quality(100.0);
    let px: Vec<u8> = std::iter::repeat_n([0u8, 255, 255, 0], 64)
        .flatten()
        .collect();
    let mut s = c.start_compress(Vec::new()).unwrap();
    s.write_scanlines(&px).unwrap();
    let jpg = s.finish().unwrap();
    let img = decode(&jpg, &opts()).unwrap();
    // mozjpeg writes an Adobe marker, so values are stored inverted: C=0 M=255 Y=255 K=0 inverted
    // reads back as C=255 M=0 Y=0 K=255 -> black under Pillow's formula.
    let p = img.pixel(3, 3);
    assert_eq!(cmyk_to_rgb(255, 0, 0, 255), [0, 0, 0]);
    assert_eq!(cmyk_to_rgb(0, 0, 0, 0), [255, 255, 255]);
    assert_eq!(cmyk_to_rgb(255, 0, 0, 0), [0, 255, 255]);
    // Values checked against Pillow 13: Image.new('CMYK', (1, 1), v).convert('RGB').
    assert_eq!(cmyk_to_rgb(128, 64, 0, 64), [95, 143, 191]);
    assert_eq!(cmyk_to_rgb(10, 200, 77, 3), [242, 54, 176]);
    assert!(p.iter().all(|&v| v < 8) || p[0] > 200, "{p:?}");
}

#[test]
fn oversized_header_is_refused_before_decoding() {
    // A PNG that claims 20000x20000 pixels but holds no data.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    let crc = crc32(&ihdr);
    png.extend_from_slice(&crc.to_be_bytes());
    let err = decode(
        &png,
        &LoadOptions {
            max_pixels: 100_000_000,
            ..opts()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ImageErrorKind::TooLarge {
                width: 20000,
                height: 20000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("400000000 pixels"), "{err}");
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn unknown_and_empty_files_say_what_they_are() {
    let e = decode(b"", &opts()).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = decode(b"II*\0\x08\0\0\0rest", &opts()).unwrap_err();
    assert!(e.to_string().contains("TIFF"), "{e}");
    let e = decode(b"hello world, not an image", &opts()).unwrap_err();
    assert!(e.to_string().contains("unrecognised"), "{e}");
    let e = load("/nonexistent/dir/x.jpg").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dir/x.jpg"), "{e}");
}

#[test]
fn one_pixel_image_loads() {
    let img = decode(
        &encode_png(1, 1, image::ExtendedColorType::Rgb8, &[1, 2, 3]),
        &opts(),
    )
    .unwrap();
    assert_eq!(img.pixel(0, 0), [1, 2, 3]);
}
