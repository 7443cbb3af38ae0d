//! Text from outside (a server's answer, a file being validated) made inert before it reaches
//! a terminal: control characters (C0, DEL, C1, so no escape sequence and no forged line)
//! and the bidirectional overrides that reorder what a terminal shows are written as
//! escapes (`\n`, `\u{1b}`, `\u{202e}`). Everything else, any script, passes unchanged.
//! Also the words of a text fit for a file name ([`slug_words`]) and a text cut short
//! ([`truncate`]).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as itself.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// A CI runner reads a line starting (after its indentation) with `::` or `##[` as a
/// workflow command (GitHub Actions: `::warning file=…::`, `::stop-commands::`).
fn looks_like_a_command(text: &str) -> bool {
    let start = text.trim_start();
    start.starts_with("::") || start.starts_with("##[")
}

/// The word joiner put before such a line's first character: invisible on a terminal, and
/// no runner trims it, so the line is text again.
const UNCOMMAND: char = '\u{2060}';

/// `text` with every control character, line separator and bidirectional override escaped,
/// and a start that a CI runner would take for a workflow command (`::warning::`) made
/// plain text: safe to print as one line of a terminal or a CI log.
pub fn inert(text: &str) -> Cow<'_, str> {
    let command = looks_like_a_command(text);
    if !command && !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let indent = text.len() - text.trim_start().len();
    for (at, c) in text.char_indices() {
        if command && at == indent {
            out.push(UNCOMMAND);
        }
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

/// `text` cut to at most `max` characters, with `…` where it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payer's text cannot start a workflow command in a CI log, on any line, whatever its
    /// indentation; text that merely contains `::` is left as it is.
    #[test]
    fn payer_text_cannot_drive_a_ci_runner() {
        let hostile = "diagnostics:\n  ::warning file=src/main.rs::forged\n::stop-commands::x\n##[error]forged\nurn:oid::1";
        for line in inert_lines(hostile).lines() {
            let start = line.trim_start();
            assert!(
                !start.starts_with("::") && !start.starts_with("##["),
                "{line:?}"
            );
        }
        assert_eq!(inert("urn:oid::1"), "urn:oid::1");
        assert_eq!(inert("  ::x::y"), "  \u{2060}::x::y");
        // Line and paragraph separators are escaped, as line breaks are.
        assert_eq!(inert("a\u{2028}b\u{2029}c"), "a\\u{2028}b\\u{2029}c");
    }

    #[test]
    fn control_characters_and_overrides_are_escaped_and_nothing_else() {
        assert_eq!(inert("Patient/p1 日本 é"), "Patient/p1 日本 é");
        assert_eq!(inert("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(inert("x\nforged  Patient/evil"), "x\\nforged  Patient/evil");
        assert_eq!(inert("\r\t\u{7f}\u{85}"), "\\r\\t\\u{7f}\\u{85}");
        assert_eq!(inert("abc\u{202e}cba"), "abc\\u{202e}cba");
    }

    #[test]
    fn a_long_text_is_cut_at_a_character() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("日本語", 5), "日本語");
    }
}
