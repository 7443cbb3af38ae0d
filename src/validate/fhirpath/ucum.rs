//! The UCUM units a comparison of quantities meets most in claims and clinical data, each
//! as a factor of its dimension's base unit, so that `2 g` and `500 mg` compare (FHIRPath
//! §6.1: quantities of comparable units are compared after conversion). A unit outside the
//! table leaves the comparison undecided ("not evaluated"), never guessed. Temperatures
//! (`Cel`, `[degF]`) are not a factor apart and are left out.

/// `(code, factor, base)`: one `code` is `factor` of `base`.
const UNITS: &[(&str, f64, &str)] = &[
    // mass
    ("kg", 1e3, "g"),
    ("g", 1.0, "g"),
    ("mg", 1e-3, "g"),
    ("ug", 1e-6, "g"),
    ("ng", 1e-9, "g"),
    ("[lb_av]", 453.592_37, "g"),
    ("[oz_av]", 28.349_523_125, "g"),
    // length
    ("km", 1e3, "m"),
    ("m", 1.0, "m"),
    ("cm", 1e-2, "m"),
    ("mm", 1e-3, "m"),
    ("um", 1e-6, "m"),
    ("[in_i]", 0.0254, "m"),
    ("[ft_i]", 0.3048, "m"),
    // volume
    ("L", 1.0, "L"),
    ("l", 1.0, "L"),
    ("dL", 1e-1, "L"),
    ("cL", 1e-2, "L"),
    ("mL", 1e-3, "L"),
    ("uL", 1e-6, "L"),
    // time (UCUM's mean month and year)
    ("ms", 1e-3, "s"),
    ("s", 1.0, "s"),
    ("min", 60.0, "s"),
    ("h", 3600.0, "s"),
    ("d", 86_400.0, "s"),
    ("wk", 604_800.0, "s"),
    ("mo", 2_629_800.0, "s"),
    ("a", 31_557_600.0, "s"),
    // pressure
    ("Pa", 1e-3, "kPa"),
    ("kPa", 1.0, "kPa"),
    ("mm[Hg]", 0.133_322_387_415, "kPa"),
];

/// A simple unit's factor and base.
fn simple(unit: &str) -> Option<(f64, &'static str)> {
    UNITS
        .iter()
        .find(|(code, _, _)| *code == unit)
        .map(|(_, factor, base)| (*factor, *base))
}

/// `value` of `unit` in its base unit: a unit of the table, or one divided by another
/// (`mg/dL`); `None` for any other.
fn canonical(value: f64, unit: &str) -> Option<(f64, String)> {
    match unit.split_once('/') {
        None => simple(unit).map(|(factor, base)| (value * factor, base.to_owned())),
        Some((top, bottom)) => {
            let (top_factor, top_base) = simple(top)?;
            let (bottom_factor, bottom_base) = simple(bottom)?;
            Some((
                value * top_factor / bottom_factor,
                format!("{top_base}/{bottom_base}"),
            ))
        }
    }
}

/// The order of `a` of `u` and `b` of `v` after conversion to a common unit; `None` when
/// the units are not both known or measure different things.
pub fn compare(a: f64, u: &str, b: f64, v: &str) -> Option<std::cmp::Ordering> {
    let (x, base_x) = canonical(a, u)?;
    let (y, base_y) = canonical(b, v)?;
    if base_x != base_y {
        return None;
    }
    // Conversion factors are not exact in binary: within a part in 10¹² is equal.
    let scale = x.abs().max(y.abs()).max(f64::MIN_POSITIVE);
    if (x - y).abs() <= scale * 1e-12 {
        return Some(std::cmp::Ordering::Equal);
    }
    x.partial_cmp(&y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn quantities_of_comparable_units_compare_after_conversion() {
        assert_eq!(compare(2.0, "g", 500.0, "mg"), Some(Greater));
        assert_eq!(compare(1.0, "g", 1000.0, "mg"), Some(Equal));
        assert_eq!(compare(100.0, "mg/dL", 1.0, "g/L"), Some(Equal));
        assert_eq!(compare(1.0, "[lb_av]", 1.0, "kg"), Some(Less));
        assert_eq!(compare(12.0, "mo", 1.0, "a"), Some(Equal));
        assert_eq!(compare(120.0, "mm[Hg]", 10.0, "kPa"), Some(Greater));
        // Different things, or a unit outside the table: not decided.
        assert_eq!(compare(1.0, "g", 1.0, "m"), None);
        assert_eq!(compare(1.0, "Cel", 1.0, "[degF]"), None);
        assert_eq!(compare(1.0, "g", 1.0, "{tbl}"), None);
    }
}
