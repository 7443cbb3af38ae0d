//! How onramp writes durations, counts, articles, months and lists of problems, as people
//! write them.

/// The months, as English writes them out.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A duration as people read it: `0.5 s`, `15.1 s`, `30 s`, `2 min 5 s`.
pub fn seconds(duration: std::time::Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 120.0 {
        let whole = duration.as_secs();
        return match whole % 60 {
            0 => format!("{} min", whole / 60),
            rest => format!("{} min {rest} s", whole / 60),
        };
    }
    let tenths = (secs * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0} s")
    } else {
        format!("{tenths:.1} s")
    }
}

/// `count` and `noun`, in the plural unless it is 1: `1 warning`, `3 warnings`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `noun` with its indefinite article: `an ExplanationOfBenefit`, `a Coverage`.
pub fn article(noun: &str) -> String {
    let vowel = noun
        .chars()
        .next()
        .is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {noun}", if vowel { "an" } else { "a" })
}

/// A list of problems as one failure message: the first ten, and how many more.
pub fn listed(head: &str, problems: &[String]) -> String {
    let mut text = head.to_owned();
    for problem in problems.iter().take(10) {
        text.push_str("\n  - ");
        text.push_str(problem);
    }
    if problems.len() > 10 {
        text.push_str(&format!(
            "\n  (and {} more; see summary.json)",
            problems.len() - 10
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_counts_and_articles_read_as_people_write_them() {
        use std::time::Duration;
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(seconds(Duration::from_micros(15_109_747)), "15.1 s");
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(seconds(Duration::from_secs(240)), "4 min");
        assert_eq!(plural(1, "warning"), "1 warning");
        assert_eq!(plural(0, "warning"), "0 warnings");
        assert_eq!(article("ExplanationOfBenefit"), "an ExplanationOfBenefit");
        assert_eq!(article("Coverage"), "a Coverage");
    }
}
