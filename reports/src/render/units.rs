//! Numbers as people read them: durations with a unit that keeps 3 significant digits.

use std::time::Duration;

/// `812 ns`, `41.2 µs`, `3.05 ms`, `1.20 s`.
pub fn ns(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v} ns");
    }
    let (scaled, unit) = match v.abs() {
        a if a < 1e3 => (v, "ns"),
        a if a < 1e6 => (v / 1e3, "µs"),
        a if a < 1e9 => (v / 1e6, "ms"),
        _ => (v / 1e9, "s"),
    };
    format!("{} {unit}", sig3(scaled))
}

/// Three significant digits, no exponent: `812`, `41.2`, `3.05`.
pub fn sig3(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// Milliseconds without the unit, to three significant digits and at least to the microsecond:
/// `412`, `41.2`, `4.12`, `0.412`, `0.041`.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 1.0 || v == 0.0 { sig3(v) } else { format!("{v:.3}") }
}

/// A wall-clock duration: `950 ms`, `6.1 s`, `2 min 05 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A duration given in milliseconds, as [`duration`]; one that no `Duration` can hold (negative,
/// not finite, or beyond 584 billion years, as a damaged report may say) is shown as given.
pub fn duration_ms(ms: f64) -> String {
    match Duration::try_from_secs_f64(ms / 1e3) {
        Ok(d) => duration(d),
        Err(_) => format!("{ms} ms"),
    }
}

/// A signed percentage: `+12.3%`, `-4.0%`.
pub fn percent(ratio: f64) -> String {
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_no_duration_can_hold_is_shown_as_given() {
        assert_eq!(duration_ms(1500.0), "1.5 s");
        assert_eq!(
            duration_ms(6.8e140),
            "680000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000 ms"
        );
        assert_eq!(duration_ms(-1.0), "-1 ms");
        assert_eq!(duration_ms(f64::NAN), "NaN ms");
    }

    #[test]
    fn units_scale() {
        assert_eq!(ns(812.0), "812 ns");
        assert_eq!(ns(41_230.0), "41.2 µs");
        assert_eq!(ns(3_050_000.0), "3.05 ms");
        assert_eq!(ns(1.2e9), "1.20 s");
        assert_eq!(duration(Duration::from_millis(6140)), "6.1 s");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 05 s");
        assert_eq!(percent(1.123), "+12.3%");
        assert_eq!(percent(0.96), "-4.0%");
        let ms_of = |us: u64| ms(Duration::from_micros(us));
        assert_eq!(
            [ms_of(412_000), ms_of(41_230), ms_of(4_120), ms_of(412), ms_of(41), ms_of(0)],
            ["412", "41.2", "4.12", "0.412", "0.041", "0"]
        );
    }
}
