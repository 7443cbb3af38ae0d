//! `${NAME}` and `${NAME:-default}` in files the user writes (targets, onboarding
//! manifests): replaced with the environment's values, so that secrets stay out of files.

/// Why a `${…}` cannot be expanded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpandError {
    #[error("an unclosed ${{ (write ${{NAME}})")]
    Unclosed,
    #[error("\"${{{0}}}\" is not an environment variable name")]
    NotAName(String),
}

/// Replace every `${NAME}` (or `${NAME:-default}`) with the variable's value. A variable
/// that is not set and has no default is passed to `missing` and expands to nothing.
pub fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    missing: &mut dyn FnMut(&str),
) -> Result<String, ExpandError> {
    expand_keeping(text, env, missing, &|_| false)
}

/// [`expand`], leaving the `${…}` whose name `kept` says are filled later (the app's
/// `${app.port}`, known when the run starts) as they are.
pub fn expand_keeping(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    missing: &mut dyn FnMut(&str),
    kept: &dyn Fn(&str) -> bool,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Unclosed)?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        if kept(name) {
            out.push_str(&rest[start..start + 2 + end + 1]);
            rest = &after[end + 1..];
            continue;
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ExpandError::NotAName(name.to_owned()));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => missing(name),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
