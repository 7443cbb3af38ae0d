//! Text from outside (a server's answer, a file being validated) made inert before it reaches
//! a terminal: control characters (C0, DEL, C1, so no escape sequence and no forged line)
//! and the bidirectional overrides that reorder what a terminal shows are written as
//! escapes (`\n`, `\u{1b}`, `\u{202e}`). Everything else, any script, passes unchanged.
//! Also the words of a text fit for a file name ([`slug_words`]), and an error told with
//! its causes ([`with_causes`]), and durations, counts and articles as people write them.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as itself.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character and bidirectional override escaped.
pub fn inert(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` made inert line by line: its own line breaks kept, everything else escaped.
pub fn inert_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(body) => format!("{}\n", inert(body)),
            None => inert(line).into_owned(),
        })
        .collect()
}

/// The words of `text` for a file name: ASCII letters and digits in lower case, split at
/// everything else.
pub fn slug_words(text: &str) -> Vec<String> {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `error` and each error that caused it, joined by ": ", as one line: what failed, then why.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

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

/// `text` cut to at most `max` characters, with `…` where it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
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

/// What a panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
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
    #[test]
    fn durations_counts_and_articles_read_as_people_write_them() {
        use std::time::Duration;
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(seconds(Duration::from_micros(15_109_747)), "15.1 s");
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(seconds(Duration::from_secs(240)), "4 min");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("日本語", 5), "日本語");
        assert_eq!(plural(1, "warning"), "1 warning");
        assert_eq!(plural(0, "warning"), "0 warnings");
        assert_eq!(article("ExplanationOfBenefit"), "an ExplanationOfBenefit");
        assert_eq!(article("Coverage"), "a Coverage");
    }

    use super::*;

    #[test]
    fn control_characters_and_overrides_are_escaped_and_nothing_else() {
        assert_eq!(inert("Patient/p1 日本 é"), "Patient/p1 日本 é");
        assert_eq!(inert("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(inert("x\nforged  Patient/evil"), "x\\nforged  Patient/evil");
        assert_eq!(inert("\r\t\u{7f}\u{85}"), "\\r\\t\\u{7f}\\u{85}");
        assert_eq!(inert("abc\u{202e}cba"), "abc\\u{202e}cba");
    }

    #[test]
    fn an_error_is_told_with_its_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open a browser session")]
        struct Session(#[source] std::io::Error);
        let chained = Session(std::io::Error::other("session not created"));
        assert_eq!(
            with_causes(&chained),
            "cannot open a browser session: session not created"
        );
    }
}
