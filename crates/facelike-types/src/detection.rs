//! What found a face, and what the detector said about it.

use serde::{Deserialize, Serialize};

/// How a face's rectangle was obtained: one variant per detector, each with the numbers that
/// detector gives (no optional score fields to get wrong).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "lowercase")]
pub enum DetectedBy {
    /// dlib's HOG frontal face detector.
    Hog {
        /// Detection score minus the detector's threshold (dlib's `run(..., adjust_threshold=0)`).
        score: f64,
        /// Which of the detector's five filters fired (front, left, right, front-rotated left,
        /// front-rotated right).
        filter: usize,
    },
    /// dlib's MMOD CNN face detector.
    Cnn {
        /// The network's detection confidence.
        confidence: f64,
    },
    /// The caller gave the rectangle (face_recognition's `known_face_locations`).
    Given,
}

impl DetectedBy {
    /// The HOG score, when HOG found the face.
    pub fn score(&self) -> Option<f64> {
        match self {
            DetectedBy::Hog { score, .. } => Some(*score),
            _ => None,
        }
    }

    /// The CNN confidence, when the CNN found the face.
    pub fn confidence(&self) -> Option<f64> {
        match self {
            DetectedBy::Cnn { confidence } => Some(*confidence),
            _ => None,
        }
    }

    /// The HOG filter index, when HOG found the face.
    pub fn hog_filter(&self) -> Option<usize> {
        match self {
            DetectedBy::Hog { filter, .. } => Some(*filter),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_follow_the_variant() {
        let h = DetectedBy::Hog {
            score: 0.5,
            filter: 3,
        };
        assert_eq!(
            (h.score(), h.confidence(), h.hog_filter()),
            (Some(0.5), None, Some(3))
        );
        let c = DetectedBy::Cnn { confidence: 1.1 };
        assert_eq!(
            (c.score(), c.confidence(), c.hog_filter()),
            (None, Some(1.1), None)
        );
        let g = DetectedBy::Given;
        assert_eq!(
            (g.score(), g.confidence(), g.hog_filter()),
            (None, None, None)
        );
    }
}
