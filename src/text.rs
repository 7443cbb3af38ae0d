//! Text from outside (a server's answer, a file being validated) made inert before it reaches
//! a terminal: control characters (C0, DEL, C1, so no escape sequence and no forged line)
//! and the bidirectional overrides that reorder what a terminal shows are written as
//! escapes (`\n`, `\u{1b}`, `\u{202e}`). Everything else, any script, passes unchanged.
//! Also the words of a text fit for a file name ([`slug_words`]), and an error told with
//! its causes ([`with_causes`]).

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

#[cfg(test)]
mod tests {
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
