//! Reading a document: JSON parsed exactly (numbers as written, `JSON.parse` semantics for
//! repeated member names), refused before parsing when it nests deeper than [`MAX_DEPTH`],
//! and where it repeated names or carried a primitive's companion (`_name`) members.

use super::finding::Finding;

/// How deep arrays and objects may nest in a document onramp reads. FHIR resources nest a
/// few dozen levels (a Bundle of an ExplanationOfBenefit with contained resources and
/// extensions stays under 30); every walk over a document (parsing, validation, redaction,
/// rendering) is recursive, and this bound keeps each of them far inside the stack.
pub const MAX_DEPTH: usize = 512;

/// The stack of every thread that walks documents (validation workers, the run's runtime):
/// a document [`MAX_DEPTH`] levels deep needs about 10 MiB in a debug build, 2 MiB in a
/// release build. It is reserved, not used: untouched pages cost no memory.
pub const STACK_SIZE: usize = 64 << 20;

/// A parsed document and where it repeated member names (which parsing resolved to the
/// last value, as `JSON.parse` does).
#[derive(Debug)]
pub struct Parsed {
    pub document: sonic_rs::Value,
    /// JSON pointers of the repeated members.
    pub repeated: Vec<String>,
    /// Whether some object has a `_name` member (a primitive's id and extensions).
    pub companions: bool,
}

/// Parse one JSON document exactly (numbers as written) and with `JSON.parse` semantics for
/// repeated member names. A parse failure is a finding with keyword `json`.
pub fn parse(bytes: &[u8]) -> Result<sonic_rs::Value, Box<Finding>> {
    parse_document(bytes).map(|parsed| parsed.document)
}

/// The members `names` of a document that is a JSON object, each parsed, the rest skipped
/// unparsed (a search page's `link` and `total`, read before its hundred entries are).
/// `None` when the document is not JSON or not an object: [`parse_document`] says why.
/// A repeated name keeps its last value, as [`parse_document`] does.
pub fn head(bytes: &[u8], names: &[&str]) -> Option<sonic_rs::Value> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Skipping a member checks it recursively: a document too deep is refused first.
    if deeper_than(bytes, MAX_DEPTH).is_some() {
        return None;
    }
    let mut head = sonic_rs::Object::new();
    for member in sonic_rs::to_object_iter(bytes) {
        let (name, value) = member.ok()?;
        if names.contains(&&*name) {
            let parsed: sonic_rs::Value = sonic_rs::from_str(value.as_raw_str()).ok()?;
            head.insert(&&*name, parsed);
        }
    }
    Some(head.into_value())
}

/// [`parse`], and where the document repeated member names.
pub fn parse_document(bytes: &[u8]) -> Result<Parsed, Box<Finding>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Box::new(Finding::empty()));
    }
    if let Some(at) = deeper_than(bytes, MAX_DEPTH) {
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        return Err(Box::new(Finding::too_deep(line, column, MAX_DEPTH)));
    }
    match sonic_rs::from_slice::<sonic_rs::Value>(bytes) {
        Ok(mut document) => {
            let (repeated, companions) = super::sonic::dedupe(&mut document);
            Ok(Parsed {
                document,
                repeated,
                companions,
            })
        }
        Err(error) => Err(Box::new(Finding::malformed(&error, bytes.len()))),
    }
}

/// The byte offset where `bytes` first nests deeper than `limit` arrays and objects, if it
/// does. One pass, no recursion; brackets inside strings do not count. Strings, most of a
/// FHIR document's bytes, are skipped with `memchr` (a page of a hundred claims is 800 KB,
/// and a byte-at-a-time scan of it cost more than parsing it).
pub fn deeper_than(bytes: &[u8], limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                // To the closing quote, past escaped characters. An unterminated string
                // holds no brackets: the parser reports it.
                loop {
                    at += 1;
                    at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
                    if bytes[at] == b'"' {
                        break;
                    }
                    at += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use sonic_rs::JsonValueTrait as _;

    use super::head;

    #[test]
    fn the_head_of_a_page_is_read_without_its_entries() {
        let page = br#"{"resourceType":"Bundle","entry":[{"resource":{"a":[[[1]]]}}],"total":2,
            "link":[{"relation":"next","url":"p2"}],"type":"searchset"}"#;
        let found = head(page, &["resourceType", "total", "link"]).expect("an object");
        assert_eq!(found.get("total").and_then(|t| t.as_u64()), Some(2));
        assert_eq!(
            found.get("resourceType").and_then(|t| t.as_str()),
            Some("Bundle")
        );
        assert!(found.get("entry").is_none() && found.get("type").is_none());
        // A byte order mark is allowed; a repeated name keeps its last value, as parsing
        // the whole document does.
        let repeated = b"\xEF\xBB\xBF{\"total\":1,\"total\":3}";
        let found = head(repeated, &["total"]).expect("an object");
        assert_eq!(found.get("total").and_then(|t| t.as_u64()), Some(3));
        // Not JSON, not an object, or too deep: the whole document is parsed to say why.
        let deep = format!("{{\"entry\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
        for bad in [
            &b"[1,2]"[..],
            b"{\"total\":",
            b"<html>",
            b"{\"a\":1,\"entry\":[}",
            deep.as_bytes(),
        ] {
            assert!(head(bad, &["total"]).is_none(), "{}", bad.len());
        }
    }
}
