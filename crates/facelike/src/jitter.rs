//! dlib's face jittering: random small shifts, scalings, rotations and mirrorings of a chip,
//! drawn from dlib's own random generator so results match `compute_face_descriptor(...,
//! num_jitters)` on a freshly loaded model.
//!
//! The draws and their order are in `docs/dlib-algorithms.md#jitter` and `#dlib-rand`.

use crate::chip::{extract_chip, ChipDetails};
use crate::geometry::{DPoint, DRect};
use facelike_image::RgbImage;

/// MT19937 (32-bit Mersenne Twister) with the standard parameters.
#[derive(Clone)]
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            state[i] = 1_812_433_253u32
                .wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }
}

/// dlib's `dlib::rand`: MT19937 seeded with 5489 after discarding 10000 outputs; doubles are
/// built from two 24-bit draws.
#[derive(Clone)]
pub struct DlibRand {
    mt: Mt19937,
}

impl Default for DlibRand {
    fn default() -> Self {
        Self::new()
    }
}

impl DlibRand {
    /// A generator in the state of a freshly constructed `dlib::rand`: MT19937 seeded with
    /// 5489, with its first 10 000 outputs discarded.
    pub fn new() -> Self {
        let mut mt = Mt19937::new(5489);
        for _ in 0..10_000 {
            mt.next_u32();
        }
        DlibRand { mt }
    }

    /// The next raw 32-bit output (dlib's `get_random_32bit_number`).
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// A double in [0, 1).
    pub fn random_double(&mut self) -> f64 {
        const MAX: f64 = (0xFF_FFFF as f64) * (0x100_0000 as f64) + (0xFF_FFFF as f64) + 0.05;
        let a = (self.next_u32() & 0xFF_FFFF) as f64;
        let b = (self.next_u32() & 0xFF_FFFF) as f64;
        let v = (a * (0x100_0000 as f64) + b) / MAX;
        if v < 1.0 {
            v
        } else {
            1.0 - f64::EPSILON
        }
    }

    /// A double in `[lo, hi)`, from one [`random_double`](Self::random_double)
    /// (dlib's `get_double_in_range`).
    pub fn double_in_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.random_double() * (hi - lo)
    }
}

/// Produces jittered copies of square chips, with a random state that persists across calls
/// (like the member of dlib's `face_recognition_model_v1`).
#[derive(Clone, Default)]
pub struct Jitterer {
    rnd: DlibRand,
}

impl Jitterer {
    /// A jitterer in the state of a freshly loaded dlib model, so that the same chips give the
    /// same jitters as dlib.
    pub fn new() -> Self {
        Jitterer {
            rnd: DlibRand::new(),
        }
    }

    /// dlib's `jitter_image(img, rnd)` for a square chip.
    pub fn jitter(&mut self, chip: &RgbImage) -> RgbImage {
        let n = chip.width() as i64;
        assert_eq!(chip.width(), chip.height(), "jitter needs a square chip");
        // shrink_rect(get_rect(img), 3): [3, 3, n-4, n-4].
        let (l, t, r, b) = (3i64, 3i64, n - 4, n - 4);
        let (w, h) = ((r - l + 1) as f64, (b - t + 1) as f64);
        // GCC evaluates dpoint(x, y)'s arguments right to left: y is drawn first.
        let ty = self.rnd.double_in_range(-0.02, 0.02) * h;
        let tx = self.rnd.double_in_range(-0.02, 0.02) * w;
        let shift = DPoint::new(tx, ty).round();
        let scale = self.rnd.double_in_range(0.97, 0.99999);
        let box_size = ((b - t + 1) as f64 / scale) as i64;
        let cx = (l + r + 1) / 2 + shift.x;
        let cy = (t + b + 1) / 2 + shift.y;
        let left = cx - box_size / 2;
        let top = cy - box_size / 2;
        let crop = DRect::new(
            left as f64,
            top as f64,
            (left + box_size - 1) as f64,
            (top + box_size - 1) as f64,
        );
        let angle = self.rnd.double_in_range(-3.0, 3.0) * std::f64::consts::PI / 180.0;
        let details = ChipDetails {
            rect: crop,
            angle,
            rows: chip.height(),
            cols: chip.width(),
        };
        let mut out = extract_chip(chip, &details);
        if self.rnd.random_double() > 0.5 {
            flip_left_right(&mut out);
        }
        out
    }
}

fn flip_left_right(img: &mut RgbImage) {
    let w = img.width();
    for y in 0..img.height() {
        for x in 0..w / 2 {
            let a = img.pixel(x, y);
            let b = img.pixel(w - 1 - x, y);
            img.set_pixel(x, y, b);
            img.set_pixel(w - 1 - x, y, a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_standard_sequence() {
        // The 10000th output of the default-seeded mt19937 is 4123659995 (C++ standard).
        let mut mt = Mt19937::new(5489);
        let first = mt.next_u32();
        assert_eq!(first, 3_499_211_612);
        for _ in 1..9999 {
            mt.next_u32();
        }
        assert_eq!(mt.next_u32(), 4_123_659_995);
    }

    #[test]
    fn random_doubles_are_in_range() {
        let mut r = DlibRand::new();
        for _ in 0..1000 {
            let v = r.double_in_range(-3.0, 3.0);
            assert!((-3.0..3.0).contains(&v));
        }
    }
}
