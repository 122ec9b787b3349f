//! Pooling per-frame scores into one number per clip, as libvmaf pools them.

/// Arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// libvmaf's harmonic mean, shifted by one so that zero scores stay finite:
/// n / Σ 1/(x + 1) − 1. `None` for no values.
pub fn harmonic_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let inverse_sum: f64 = values.iter().map(|&v| 1.0 / (v + 1.0)).sum();
    Some(values.len() as f64 / inverse_sum - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_of_known_values() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(harmonic_mean(&[]), None);
        // Shifted: 1/(1+1) + 1/(3+1) = 0.75, 2 / 0.75 − 1 = 5/3.
        let h = harmonic_mean(&[1.0, 3.0]).unwrap();
        assert!((h - 5.0 / 3.0).abs() < 1e-12);
        assert!(harmonic_mean(&[0.0, 0.0]).unwrap().abs() < 1e-12);
    }
}
