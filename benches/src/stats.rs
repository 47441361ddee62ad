//! Order statistics for the numbers this crate computes itself (the bare-libc reference loops and
//! the CPU times); criterion computes the rest.

/// The median of `v` (mean of the two middle values for an even count); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

/// A distribution-free 95% confidence interval of the median: the order statistics at
/// n/2 ∓ 1.96·√n/2 (the normal approximation of the binomial, fine from about 20 samples).
pub fn median_ci95(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let half = 1.96 * n.sqrt() / 2.0;
    let lo = ((n / 2.0 - half).floor().max(0.0)) as usize;
    let hi = ((n / 2.0 + half).ceil() as usize).min(s.len() - 1);
    Some((s[lo], s[hi]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ci_brackets_the_median_and_narrows_with_more_samples() {
        let small: Vec<f64> = (0..25).map(f64::from).collect();
        let large: Vec<f64> = (0..2500).map(|i| f64::from(i) / 100.0).collect();
        let (a, b) = median_ci95(&small).unwrap();
        let (c, d) = median_ci95(&large).unwrap();
        let m = median(&small).unwrap();
        assert!(a <= m && m <= b, "{a} {m} {b}");
        assert!(d - c < b - a, "{c}..{d} vs {a}..{b}");
    }
}
