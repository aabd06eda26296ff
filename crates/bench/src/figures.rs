//! Figures: a median with its min and max over rounds, and the report they go into.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
}

impl Figure {
    /// The median of `samples` (which must not be empty), with their min and max.
    pub fn of(name: &'static str, unit: &'static str, samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            name,
            value: percentile(&sorted, 50.0),
            unit,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The `p`th percentile of sorted samples (nearest rank).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank within a sample count far below 2^52"
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What `lockstep-bench` writes.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub notes: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::{Figure, percentile};

    #[test]
    #[expect(
        clippy::float_cmp,
        reason = "the values are small integers, exactly representable"
    )]
    fn medians_and_percentiles_use_nearest_rank() {
        let figure = Figure::of("x", "u", &[5.0, 1.0, 3.0]);
        assert_eq!((figure.value, figure.min, figure.max), (3.0, 1.0, 5.0));
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 50.0), 50.0);
    }
}
