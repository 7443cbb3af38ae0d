//! What went wrong, told whole: an error with its causes ([`with_causes`]), a panic's
//! message ([`panic_message`]).

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

/// What a panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
