//! Addresses as a browser compares them: the same origin (scheme, host and port), and an
//! address fit for a message or the timeline (its query and fragment, which can carry an
//! authorization code or a state, left out).

use url::Url;

/// Whether `url` and `other` share scheme, host and port.
pub fn same_origin(url: &Url, other: &Url) -> bool {
    url.scheme() == other.scheme()
        && url.host_str() == other.host_str()
        && url.port_or_known_default() == other.port_or_known_default()
}

/// `url` without its query and fragment.
pub fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_addresses_without_their_query() {
        let at = |u: &str| Url::parse(u).expect("url");
        assert!(same_origin(
            &at("http://a.example/x?y"),
            &at("http://a.example:80/z")
        ));
        assert!(!same_origin(
            &at("http://a.example/"),
            &at("https://a.example/")
        ));
        assert!(!same_origin(
            &at("http://a.example:1/"),
            &at("http://a.example:2/")
        ));
        assert_eq!(
            without_query(&at("http://a.example/cb?code=secret#frag")),
            "http://a.example/cb"
        );
    }
}
