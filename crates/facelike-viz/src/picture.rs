//! Static pictures of a 2-D face map: PNG (plotters' bitmap backend, pure-Rust text) and SVG
//! (written directly, so thumbnails embed as PNG data).
//!
//! Both are drawn from one [`Scene`] of pixel-space primitives, so they look the same: points
//! coloured by identity, the largest identities labelled at their centre and listed in a
//! legend, optional face thumbnails at the points, optional query faces with lines to their
//! nearest identities.

use crate::map::{FaceMap, MapOptions};
use base64::Engine;
use facelike_plot::{ensure_font, FONT_FAMILY, PALETTE};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Why a picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// Encoding or writing the file failed.
    #[error("{path}: cannot write picture: {message}", path = path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// [`crate::write_map`] was given an extension it does not know.
    #[error("{path}: unknown picture format (use .png, .svg, .html or .tsv)", path = path.display())]
    Format {
        /// The file.
        path: std::path::PathBuf,
    },
}

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// Drawing primitives in pixel coordinates, painted in order.
#[derive(Clone, Debug)]
pub enum Shape {
    /// A filled disc, optionally outlined (2 px).
    Circle {
        /// Centre x.
        x: f64,
        /// Centre y (downwards).
        y: f64,
        /// Radius.
        r: f64,
        /// Fill colour.
        fill: Rgb,
        /// Outline colour, if any.
        stroke: Option<Rgb>,
    },
    /// A straight line segment.
    Line {
        /// Start x.
        x1: f64,
        /// Start y.
        y1: f64,
        /// End x.
        x2: f64,
        /// End y.
        y2: f64,
        /// Line colour.
        color: Rgb,
        /// Line width in pixels.
        width: u32,
    },
    /// A filled axis-aligned rectangle, optionally outlined.
    Rect {
        /// Left edge.
        x: f64,
        /// Top edge.
        y: f64,
        /// Width.
        w: f64,
        /// Height.
        h: f64,
        /// Fill colour.
        fill: Rgb,
        /// Outline colour, if any.
        stroke: Option<Rgb>,
    },
    /// One line of text in the embedded font.
    Text {
        /// Left edge.
        x: f64,
        /// Top edge (not the baseline).
        y: f64,
        /// The text.
        text: String,
        /// Font size in pixels.
        size: f64,
        /// Text colour.
        color: Rgb,
    },
    /// A decoded RGB image drawn with its top-left corner at (x, y), and its PNG bytes for SVG.
    Image {
        /// Left edge.
        x: f64,
        /// Top edge.
        y: f64,
        /// Width in pixels.
        w: u32,
        /// Height in pixels.
        h: u32,
        /// `w × h` RGB pixels, row-major, 3 bytes each (for PNG rendering).
        rgb: Vec<u8>,
        /// The same image as PNG bytes (embedded in SVG).
        png: Vec<u8>,
    },
}

/// A picture: size, background and primitives.
pub struct Scene {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The primitives, painted in order over white ([`scene`] starts with a background rect).
    pub shapes: Vec<Shape>,
}

pub(crate) fn color_of(rank: Option<usize>) -> Rgb {
    match rank {
        Some(r) if r < PALETTE.len() => {
            let c = PALETTE[r];
            (c.0, c.1, c.2)
        }
        _ => (180, 180, 180),
    }
}

/// Lays out the map as a scene.
pub fn scene(map: &FaceMap, opts: &MapOptions) -> Scene {
    let (w, h) = (opts.width as f64, opts.height as f64);
    let (left, top, right, bottom) = (
        30.0,
        if opts.title.is_empty() { 20.0 } else { 56.0 },
        250.0,
        30.0,
    );
    let (minx, miny, maxx, maxy) = map.bounds();
    let sx = (w - left - right) / (maxx - minx).max(1e-12);
    let sy = (h - top - bottom) / (maxy - miny).max(1e-12);
    let s = sx.min(sy);
    let ox = left + (w - left - right - s * (maxx - minx)) / 2.0;
    let oy = top + (h - top - bottom - s * (maxy - miny)) / 2.0;
    let to_px = |p: [f64; 2]| (ox + (p[0] - minx) * s, oy + (maxy - p[1]) * s);

    let mut shapes = vec![Shape::Rect {
        x: 0.0,
        y: 0.0,
        w,
        h,
        fill: (255, 255, 255),
        stroke: None,
    }];
    if !opts.title.is_empty() {
        shapes.push(Shape::Text {
            x: left,
            y: 18.0,
            text: opts.title.clone(),
            size: 26.0,
            color: (30, 30, 30),
        });
    }
    let ranks = map.identity_ranks(opts.legend_max);
    // Unranked (grey) points first so coloured ones stay visible on top.
    let mut order: Vec<usize> = (0..map.points.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse(
            ranks
                .get(&map.points[i].identity)
                .map_or(usize::MAX, |r| *r),
        )
    });
    for &i in &order {
        let p = &map.points[i];
        let (x, y) = to_px(p.xy);
        let rank = ranks.get(&p.identity).copied();
        shapes.push(Shape::Circle {
            x,
            y,
            r: if rank.is_some() { 4.5 } else { 3.0 },
            fill: color_of(rank),
            stroke: None,
        });
    }
    if opts.thumbnails {
        let t = opts.thumbnail_size as f64;
        for p in &map.points {
            if let Some(img) = p.decoded_thumbnail(opts.thumbnail_size) {
                let (x, y) = to_px(p.xy);
                let rank = ranks.get(&p.identity).copied();
                shapes.push(Shape::Rect {
                    x: x - t / 2.0 - 1.0,
                    y: y - t / 2.0 - 1.0,
                    w: t + 2.0,
                    h: t + 2.0,
                    fill: color_of(rank),
                    stroke: None,
                });
                shapes.push(Shape::Image {
                    x: x - t / 2.0,
                    y: y - t / 2.0,
                    w: img.0,
                    h: img.1,
                    rgb: img.2,
                    png: img.3,
                });
            }
        }
    }
    if opts.label_identities {
        for (name, rank) in &ranks {
            if let Some(c) = map.identity_centre(name) {
                let (x, y) = to_px(c);
                let _ = rank;
                shapes.push(Shape::Text {
                    x: x + 6.0,
                    y: y - 14.0,
                    text: name.replace('_', " "),
                    size: 15.0,
                    color: (20, 20, 20),
                });
            }
        }
    }
    for q in &map.queries {
        let (qx, qy) = to_px(q.xy);
        for n in &q.nearest {
            if let Some(c) = map.identity_centre(&n.identity) {
                let (x, y) = to_px(c);
                shapes.push(Shape::Line {
                    x1: qx,
                    y1: qy,
                    x2: x,
                    y2: y,
                    color: (200, 0, 0),
                    width: 2,
                });
                shapes.push(Shape::Text {
                    x: (qx + x) / 2.0 + 4.0,
                    y: (qy + y) / 2.0 - 8.0,
                    text: format!("{:.2}", n.distance),
                    size: 13.0,
                    color: (160, 0, 0),
                });
            }
        }
        shapes.push(Shape::Circle {
            x: qx,
            y: qy,
            r: 9.0,
            fill: (255, 230, 0),
            stroke: Some((200, 0, 0)),
        });
        shapes.push(Shape::Text {
            x: qx + 12.0,
            y: qy - 8.0,
            text: q.label.clone(),
            size: 16.0,
            color: (160, 0, 0),
        });
    }
    // Legend.
    let lx = w - right + 20.0;
    let mut ly = top;
    let mut legend: Vec<(&String, &usize)> = ranks.iter().collect();
    legend.sort_by_key(|(_, r)| **r);
    for (name, rank) in legend {
        shapes.push(Shape::Circle {
            x: lx,
            y: ly + 7.0,
            r: 5.0,
            fill: color_of(Some(*rank)),
            stroke: None,
        });
        let count = map.points.iter().filter(|p| &p.identity == name).count();
        shapes.push(Shape::Text {
            x: lx + 12.0,
            y: ly,
            text: format!("{} ({count})", name.replace('_', " ")),
            size: 13.0,
            color: (40, 40, 40),
        });
        ly += 19.0;
    }
    let others = map
        .points
        .iter()
        .filter(|p| !ranks.contains_key(&p.identity))
        .count();
    if others > 0 {
        shapes.push(Shape::Circle {
            x: lx,
            y: ly + 7.0,
            r: 4.0,
            fill: color_of(None),
            stroke: None,
        });
        shapes.push(Shape::Text {
            x: lx + 12.0,
            y: ly,
            text: format!("others ({others})"),
            size: 13.0,
            color: (40, 40, 40),
        });
    }
    Scene {
        width: opts.width,
        height: opts.height,
        shapes,
    }
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Renders a scene to an RGB buffer.
pub fn render_rgb(scene: &Scene) -> Vec<u8> {
    ensure_font();
    let (w, h) = (scene.width, scene.height);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let mut pending: Vec<&Shape> = Vec::new();
    // plotters draws vector shapes; images are blitted between runs of vector shapes so the
    // painting order is kept.
    let flush = |buf: &mut Vec<u8>, shapes: &mut Vec<&Shape>| {
        if shapes.is_empty() {
            return;
        }
        {
            let area = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
            for s in shapes.iter() {
                let _ = match s {
                    Shape::Circle {
                        x,
                        y,
                        r,
                        fill,
                        stroke,
                    } => {
                        let c = (*x as i32, *y as i32);
                        let a = area.draw(&Circle::new(c, *r as i32, rgb(*fill).filled()));
                        if let Some(st) = stroke {
                            let _ = area.draw(&Circle::new(c, *r as i32, rgb(*st).stroke_width(2)));
                        }
                        a
                    }
                    Shape::Line {
                        x1,
                        y1,
                        x2,
                        y2,
                        color,
                        width,
                    } => area.draw(&PathElement::new(
                        vec![(*x1 as i32, *y1 as i32), (*x2 as i32, *y2 as i32)],
                        rgb(*color).stroke_width(*width),
                    )),
                    Shape::Rect {
                        x,
                        y,
                        w,
                        h,
                        fill,
                        stroke,
                    } => {
                        let a = area.draw(&Rectangle::new(
                            [(*x as i32, *y as i32), ((x + w) as i32, (y + h) as i32)],
                            rgb(*fill).filled(),
                        ));
                        if let Some(st) = stroke {
                            let _ = area.draw(&Rectangle::new(
                                [(*x as i32, *y as i32), ((x + w) as i32, (y + h) as i32)],
                                rgb(*st),
                            ));
                        }
                        a
                    }
                    Shape::Text {
                        x,
                        y,
                        text,
                        size,
                        color,
                    } => {
                        let style = (FONT_FAMILY, *size).into_font().color(&rgb(*color));
                        area.draw(&plotters::element::Text::new(
                            text.clone(),
                            (*x as i32, *y as i32),
                            style,
                        ))
                    }
                    Shape::Image { .. } => Ok(()),
                };
            }
            let _ = area.present();
        }
        shapes.clear();
    };
    for s in &scene.shapes {
        if let Shape::Image {
            x,
            y,
            w: iw,
            h: ih,
            rgb: px,
            ..
        } = s
        {
            flush(&mut buf, &mut pending);
            blit(&mut buf, w, h, *x as i64, *y as i64, *iw, *ih, px);
        } else {
            pending.push(s);
        }
    }
    flush(&mut buf, &mut pending);
    buf
}

#[allow(clippy::too_many_arguments)]
fn blit(buf: &mut [u8], w: u32, h: u32, x0: i64, y0: i64, iw: u32, ih: u32, px: &[u8]) {
    for yy in 0..ih as i64 {
        let y = y0 + yy;
        if y < 0 || y >= h as i64 {
            continue;
        }
        for xx in 0..iw as i64 {
            let x = x0 + xx;
            if x < 0 || x >= w as i64 {
                continue;
            }
            let s = ((yy * iw as i64 + xx) * 3) as usize;
            let d = ((y * w as i64 + x) * 3) as usize;
            buf[d..d + 3].copy_from_slice(&px[s..s + 3]);
        }
    }
}

/// Writes the scene as a PNG file.
pub fn write_png(scene: &Scene, path: &Path) -> Result<(), PictureError> {
    let buf = render_rgb(scene);
    let img = facelike_image::RgbImage::from_raw(scene.width as usize, scene.height as usize, buf)
        .expect("buffer matches size");
    img.save_png(path).map_err(|e| PictureError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The scene as SVG text (thumbnails embedded as PNG data URIs).
pub fn svg_string(scene: &Scene) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#,
        w = scene.width,
        h = scene.height
    );
    for sh in &scene.shapes {
        let _ = match sh {
            Shape::Circle {
                x,
                y,
                r,
                fill,
                stroke,
            } => writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="{}"{}/>"#,
                hex(*fill),
                stroke
                    .map(|c| format!(r#" stroke="{}" stroke-width="2""#, hex(c)))
                    .unwrap_or_default()
            ),
            Shape::Line {
                x1,
                y1,
                x2,
                y2,
                color,
                width,
            } => {
                writeln!(
                    s,
                    r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{}" stroke-width="{width}"/>"#,
                    hex(*color)
                )
            }
            Shape::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
            } => writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"{}/>"#,
                hex(*fill),
                stroke
                    .map(|c| format!(r#" stroke="{}""#, hex(c)))
                    .unwrap_or_default()
            ),
            // plotters places text by its top-left corner; SVG by the baseline.
            Shape::Text {
                x,
                y,
                text,
                size,
                color,
            } => writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" font-size="{size:.0}" fill="{}">{}</text>"#,
                y + size * 0.8,
                hex(*color),
                xml_escape(text)
            ),
            Shape::Image {
                x, y, w, h, png, ..
            } => writeln!(
                s,
                r#"<image x="{x:.1}" y="{y:.1}" width="{w}" height="{h}" xlink:href="data:image/png;base64,{}"/>"#,
                base64::engine::general_purpose::STANDARD.encode(png)
            ),
        };
    }
    s.push_str("</svg>\n");
    s
}

/// Writes the scene as an SVG file ([`svg_string`]).
pub fn write_svg(scene: &Scene, path: &Path) -> Result<(), PictureError> {
    std::fs::write(path, svg_string(scene)).map_err(|e| PictureError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
