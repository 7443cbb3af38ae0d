//! JSON as onramp writes it: serde_json's, with the characters it leaves raw escaped too.
//!
//! serde_json escapes the C0 controls but writes DEL, the C1 controls (U+0080–U+009F, of
//! which U+009B starts a terminal escape as ESC `[` does) and the line and paragraph
//! separators as they are. A payer's text in `summary.json` would then act on the terminal
//! of whoever runs `cat` or `jq` on it. Here they are written `\u009b`: the same string to
//! every JSON reader, inert to a person's terminal.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// A formatter that escapes what [`inert_char`] names, and otherwise is `F`.
struct Inert<F>(F);

/// Characters written as `\uXXXX` although JSON allows them raw.
fn inert_char(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}')
}

impl<F: Formatter> Formatter for Inert<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if inert_char(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

/// For `skip_serializing_if`: a count of nothing is left out.
pub fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `value` as compact JSON into `writer`.
pub fn to_writer<W: Write, T: ?Sized + Serialize>(writer: W, value: &T) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(writer, Inert(CompactFormatter));
    value.serialize(&mut serializer)
}

/// `value` as indented JSON into `writer`.
pub fn to_writer_pretty<W: Write, T: ?Sized + Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut serializer =
        serde_json::Serializer::with_formatter(writer, Inert(PrettyFormatter::new()));
    value.serialize(&mut serializer)
}

/// `value` as indented JSON.
pub fn to_vec_pretty<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    to_writer_pretty(&mut out, value)?;
    Ok(out)
}

/// `value` as indented JSON text.
pub fn to_string_pretty<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    // Only JSON's own bytes and the strings' UTF-8 are written.
    to_vec_pretty(value).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// `value` as compact JSON text.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    to_writer(&mut out, value)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn controls_json_leaves_raw_are_escaped_and_read_back_the_same() {
        let text = "a\u{1b}[2J b\u{7f} c\u{9b}31m d\u{2028}e\u{2029}f é ✓";
        let value = serde_json::json!({ text: [text, 1] });
        for written in [
            super::to_string(&value).unwrap(),
            super::to_string_pretty(&value).unwrap(),
        ] {
            assert!(
                !written
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || super::inert_char(c)),
                "{written:?}"
            );
            assert!(written.contains("\\u009b") && written.contains("\\u2028"));
            assert!(written.contains("é ✓"));
            let back: serde_json::Value = serde_json::from_str(&written).unwrap();
            assert_eq!(back, value);
        }
        assert!(super::to_string_pretty(&value).unwrap().contains("\n  "));
    }
}
