//! # facelike-plot: what every facelike picture shares
//!
//! Text in pictures is drawn by plotters' pure-Rust `ab_glyph` backend from a font compiled
//! into the binary — DejaVu Sans cut to ASCII and a few symbols (11 kB; licence in
//! `fonts/LICENSE-DejaVu.txt`; made by `scripts/subset_plot_font.sh`) — so no system font or
//! fontconfig is needed. Call [`ensure_font`] before drawing text with the family
//! [`FONT_FAMILY`].

use plotters::style::{FontStyle, RGBColor};
use std::sync::Once;

/// The family name the embedded font is registered under.
pub const FONT_FAMILY: &str = "sans-serif";

/// The embedded TrueType font.
pub static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans-plot.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font with plotters (once per process).
pub fn ensure_font() {
    REGISTER.call_once(|| {
        // The font is compiled in and parses (tested below), so this cannot fail at run time.
        let _ = plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT);
    });
}

/// A 20-colour categorical palette for identities (Tableau 20 with its two greys replaced, so
/// that grey means "other identities").
pub const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(0, 110, 110),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(140, 20, 75),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_font_parses() {
        assert!(plotters::style::register_font(
            "facelike-test",
            plotters::style::FontStyle::Normal,
            super::FONT
        )
        .is_ok());
    }
}
