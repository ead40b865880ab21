//! The 128-D face descriptor and the distances between descriptors.
//!
//! dlib's descriptors are *not* unit length (norms of about 1.2–1.7); face_recognition compares
//! them with plain Euclidean distance at a tolerance of 0.6. FaceNet-style use wants them on the
//! unit sphere: [`Descriptor::normalized`].

use serde::{Deserialize, Serialize};

/// Length of a dlib face descriptor.
pub const DESCRIPTOR_LEN: usize = 128;

/// face_recognition's default same-person tolerance on raw (unnormalised) L2 distance.
pub const DEFAULT_TOLERANCE: f32 = 0.6;

/// A 128-D face embedding.
#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Descriptor(#[serde(with = "serde_arrays")] pub [f32; DESCRIPTOR_LEN]);

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Descriptor([{:.6}, {:.6}, {:.6}, … norm {:.6}])",
            self.0[0],
            self.0[1],
            self.0[2],
            self.norm()
        )
    }
}

impl Default for Descriptor {
    fn default() -> Self {
        Descriptor([0.0; DESCRIPTOR_LEN])
    }
}

/// Distance measures between descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance (face_recognition's `face_distance`).
    L2,
    /// Manhattan distance.
    L1,
    /// `1 − cos(a, b)`.
    Cosine,
}

impl Metric {
    /// This metric's distance between two equal-length vectors, accumulated in f64.
    /// L2 matches face_recognition bit for bit (see [`l2`]).
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2(a, b),
            Metric::L1 => l1(a, b),
            Metric::Cosine => cosine_distance(a, b),
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Metric::L2),
            "l1" | "manhattan" => Ok(Metric::L1),
            "cosine" | "cos" => Ok(Metric::Cosine),
            _ => Err(format!("unknown metric {s:?}: use l2, l1 or cosine")),
        }
    }
}

/// Euclidean distance as face_recognition's `face_distance` computes it: the descriptors as
/// float64, squared differences summed in numpy's pairwise order, then the square root.
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    l2_f64(a, b) as f32
}

/// [`l2`] in full double precision: exactly `numpy.linalg.norm(a - b)` on float64 copies.
pub fn l2_f64(a: &[f32], b: &[f32]) -> f64 {
    let sq: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = *x as f64 - *y as f64;
            d * d
        })
        .collect();
    numpy_pairwise_sum(&sq).sqrt()
}

/// numpy's `pairwise_sum` (used by `add.reduce` on contiguous data): eight running sums over
/// blocks of up to 128 values, combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), halves above.
pub fn numpy_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |s, v| s + v);
    }
    if n <= 128 {
        let mut r = [0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[full..] {
            res += v;
        }
        return res;
    }
    let mut half = n / 2;
    half -= half % 8;
    numpy_pairwise_sum(&a[..half]) + numpy_pairwise_sum(&a[half..])
}

/// Manhattan distance, summed in f64 (sequential order) and returned as f32.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((*x as f64) - (*y as f64)).abs())
        .sum::<f64>() as f32
}

/// `1 − a·b / (|a||b|)`; 1 when either vector is zero.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na.sqrt() * nb.sqrt())) as f32
}

impl Descriptor {
    /// Copies a slice of exactly [`DESCRIPTOR_LEN`] values; `None` for any other length.
    pub fn from_slice(v: &[f32]) -> Option<Self> {
        Some(Descriptor(v.try_into().ok()?))
    }
    /// The 128 components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
    /// Euclidean length, computed in f64. About 1.2–1.7 for raw dlib descriptors, 1 once
    /// [`normalized`](Self::normalized).
    pub fn norm(&self) -> f32 {
        self.0
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt() as f32
    }
    /// The unit-length (FaceNet-style) version; a zero vector stays zero.
    pub fn normalized(&self) -> Self {
        let n = self.norm();
        if n == 0.0 {
            return *self;
        }
        Descriptor(self.0.map(|v| v / n))
    }
    /// The distance to `other` under `metric`, on the descriptors as stored (raw or unit
    /// length, whichever they are).
    pub fn distance(&self, other: &Descriptor, metric: Metric) -> f32 {
        metric.distance(&self.0, &other.0)
    }
    /// face_recognition's `compare_faces`: same person when the L2 distance is `<=` tolerance.
    pub fn same_person(&self, other: &Descriptor, tolerance: f32) -> bool {
        l2(&self.0, &other.0) <= tolerance
    }
}

mod serde_arrays {
    use super::DESCRIPTOR_LEN;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[f32; DESCRIPTOR_LEN], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f32; DESCRIPTOR_LEN], D::Error> {
        let v = Vec::<f32>::deserialize(d)?;
        v.as_slice().try_into().map_err(|_| {
            D::Error::custom(format!(
                "expected {DESCRIPTOR_LEN} numbers, got {}",
                v.len()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn distances() {
        let mut a = [0f32; 128];
        let mut b = [0f32; 128];
        a[0] = 3.0;
        b[1] = 4.0;
        assert_eq!(l2(&a, &b), 5.0);
        assert_eq!(l1(&a, &b), 7.0);
        assert_eq!(cosine_distance(&a, &b), 1.0);
        assert_eq!(cosine_distance(&a, &a), 0.0);
        let d = Descriptor(a);
        assert_eq!(d.normalized().norm(), 1.0);
        assert!(d.same_person(
            &Descriptor({
                let mut c = a;
                c[0] = 2.4;
                c
            }),
            0.6
        ));
        assert!(!d.same_person(
            &Descriptor({
                let mut c = a;
                c[0] = 2.39;
                c
            }),
            0.6
        ));
        assert_eq!("COSINE".parse::<Metric>().unwrap(), Metric::Cosine);
        // numpy's pairwise order differs from a running sum in the last bits: 0.1 * 10
        // summed sequentially is 0.9999999999999999, pairwise 1.0 (checked with numpy 2.4).
        assert_eq!(numpy_pairwise_sum(&[0.1; 10]), 1.0);
        assert_eq!([0.1f64; 10].iter().sum::<f64>(), 0.9999999999999999);
    }
}
