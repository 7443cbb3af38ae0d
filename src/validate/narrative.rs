//! The narrative's rules (`Narrative.div`, FHIR R4 §2.4 "Narrative"), which the definitions
//! state as `htmlChecks()`, one expression for two rules: `txt-1`, only the basic HTML
//! formatting elements and attributes (no script, no forms, no event handlers, no active
//! links), in an XHTML `div`; and `txt-2`, some non-whitespace content. Both are judged here
//! on the XHTML text by a small scanner of tags, lenient about everything else.

/// The elements a narrative may hold (HTML 4.0 chapters 7-11 and 15, less section 9.4, plus
/// `a` and `img`), as HL7's validator accepts them.
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "b",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "ul",
    "var",
];

/// The attributes they may carry (presentation, identity, tables, links and images).
const ATTRIBUTES: &[&str] = &[
    "abbr",
    "accesskey",
    "align",
    "alt",
    "axis",
    "border",
    "cellpadding",
    "cellspacing",
    "char",
    "charoff",
    "class",
    "colspan",
    "dir",
    "frame",
    "headers",
    "height",
    "href",
    "id",
    "lang",
    "name",
    "rowspan",
    "rules",
    "scope",
    "span",
    "src",
    "style",
    "summary",
    "tabindex",
    "title",
    "valign",
    "width",
    "xml:lang",
];

/// The XHTML namespace the `div` must declare.
const XHTML: &str = "http://www.w3.org/1999/xhtml";

/// A start tag: its name and its attributes' names and values.
struct Tag<'a> {
    name: &'a str,
    attributes: Vec<(&'a str, &'a str)>,
}

/// Every start tag of `xhtml` in order (end tags, comments and the like passed over); an
/// `Err` for a `<` that opens nothing the scanner can read. Linear in the text: `<` found
/// with memchr, tags ended on bytes (`>` and quotes are ASCII, so never inside a UTF-8
/// sequence).
fn scan(xhtml: &str) -> Result<Vec<Tag<'_>>, String> {
    let mut tags = Vec::new();
    let mut rest = xhtml;
    while let Some(open) = memchr::memchr(b'<', rest.as_bytes()) {
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            let end =
                memchr::memmem::find(after.as_bytes(), b"-->").ok_or("an unclosed comment")?;
            rest = &after[end + 3..];
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            return Err("a declaration or processing instruction (<! or <?)".into());
        }
        let end = tag_end(rest).ok_or("an unclosed tag")?;
        let inside = &rest[1..end];
        rest = &rest[end + 1..];
        if inside.starts_with('/') {
            continue;
        }
        tags.push(tag(inside.trim_end_matches('/'))?);
    }
    Ok(tags)
}

/// Where the tag that starts `text` ends (its `>`, outside quoted values).
fn tag_end(text: &str) -> Option<usize> {
    let mut quote = None;
    for (at, &b) in text.as_bytes().iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => return Some(at),
            _ => {}
        }
    }
    None
}

/// A start tag's name and attributes, from what stands between `<` and `>`.
fn tag(inside: &str) -> Result<Tag<'_>, String> {
    let inside = inside.trim();
    let name_end = inside
        .find(|c: char| c.is_whitespace())
        .unwrap_or(inside.len());
    let name = &inside[..name_end];
    if name.is_empty() {
        return Err("a tag without a name".into());
    }
    let mut attributes = Vec::new();
    let mut rest = inside[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("an attribute without a value in <{name}>"))?;
        let attribute = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("an unquoted attribute {attribute} in <{name}>"))?;
        let value_end = after[1..]
            .find(quote)
            .ok_or_else(|| format!("an unclosed attribute {attribute} in <{name}>"))?;
        attributes.push((attribute, &after[1..1 + value_end]));
        rest = after[value_end + 2..].trim_start();
    }
    Ok(Tag { name, attributes })
}

/// txt-1: a `div` in the XHTML namespace holding only the elements and attributes the
/// narrative allows, with no script in a link or image; what is wrong, when something is.
pub fn basic_html(xhtml: &str) -> Result<(), String> {
    let tags = scan(xhtml)?;
    let Some(root) = tags.first() else {
        return Err("there is no div element".into());
    };
    if root.name != "div" || !xhtml.trim_start().starts_with('<') {
        return Err(format!("the narrative is a <{}>, not a <div>", root.name));
    }
    if !root
        .attributes
        .iter()
        .any(|(name, value)| *name == "xmlns" && *value == XHTML)
    {
        return Err(format!("the div does not declare xmlns=\"{XHTML}\""));
    }
    for tag in &tags {
        if ELEMENTS.binary_search(&tag.name).is_err() {
            return Err(format!("<{}> is not a basic formatting element", tag.name));
        }
        for (name, value) in &tag.attributes {
            let allowed = ATTRIBUTES.binary_search(name).is_ok() || name.starts_with("xmlns");
            if !allowed {
                return Err(format!("<{} {name}> is not an allowed attribute", tag.name));
            }
            let scripted = value
                .trim_start()
                .get(..11)
                .is_some_and(|s| s.eq_ignore_ascii_case("javascript:"));
            if (*name == "href" || *name == "src") && scripted {
                return Err(format!("<{} {name}> runs a script", tag.name));
            }
        }
    }
    Ok(())
}

/// txt-2: some text that is not whitespace, or an image. Stops at the first that is.
pub fn has_content(xhtml: &str) -> bool {
    let mut rest = xhtml;
    loop {
        let open = memchr::memchr(b'<', rest.as_bytes()).unwrap_or(rest.len());
        if has_text(&rest[..open]) {
            return true;
        }
        rest = &rest[open..];
        if rest.is_empty() {
            return false;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            match memchr::memmem::find(after.as_bytes(), b"-->") {
                Some(end) => rest = &after[end + 3..],
                None => return true, // what cannot be read is txt-1's to report
            }
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            return true; // txt-1 reports it
        }
        let Some(end) = tag_end(rest) else {
            return true;
        };
        let name = rest[1..end]
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        if name == "img" {
            return true;
        }
        rest = &rest[end + 1..];
    }
}

/// Whether text between tags holds something other than whitespace and non-breaking spaces.
fn has_text(text: &str) -> bool {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest
            .strip_prefix("&nbsp;")
            .or_else(|| rest.strip_prefix("&#160;"))
        {
            rest = after;
            continue;
        }
        if !c.is_whitespace() && c != '\u{a0}' {
            return true;
        }
        rest = &rest[c.len_utf8()..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_names_are_sorted_for_binary_search() {
        assert!(ELEMENTS.is_sorted());
        assert!(ATTRIBUTES.is_sorted());
    }

    const OK: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>John <b>Allen</b></p><table class=\"grid\"><tr><td colspan='2'>x &gt; y</td></tr></table><a href=\"#x\">see</a><!-- note --><br/></div>";

    #[test]
    fn basic_formatting_passes_and_active_content_does_not() {
        assert_eq!(basic_html(OK), Ok(()));
        assert!(has_content(OK));
        let bad = |inner: &str| {
            basic_html(&format!(
                "<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>"
            ))
            .expect_err(inner)
        };
        assert!(bad("<script>alert(1)</script>").contains("<script>"));
        assert!(bad("<p onclick=\"x()\">hi</p>").contains("onclick"));
        assert!(bad("<a href=\" JavaScript:alert(1)\">x</a>").contains("runs a script"));
        assert!(bad("<form><input name=\"a\"/></form>").contains("<form>"));
        assert!(bad("<iframe src=\"https://x\"></iframe>").contains("<iframe>"));
        assert!(
            basic_html("<div><p>no namespace</p></div>")
                .expect_err("no xmlns")
                .contains("xmlns")
        );
        assert!(basic_html("<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>").is_err());
    }

    #[test]
    fn a_narrative_needs_text_or_an_image() {
        assert!(!has_content(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">  <p> &nbsp;</p>\n</div>"
        ));
        assert!(has_content(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"#pic\" alt=\"\"/></div>"
        ));
        assert!(has_content(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"
        ));
    }
}
