//! The sandbox's HTML pages: plain, accessible, no JavaScript, readable in a screenshot.
//! Templates live next to this file and are embedded at build time; handlebars runs in
//! strict mode and escapes everything it substitutes.

use handlebars::Handlebars;
use serde::Serialize;

/// The compiled page templates.
#[derive(Debug)]
pub struct Pages {
    registry: Handlebars<'static>,
    /// The plan's name, shown on every page.
    brand: &'static str,
}

const TEMPLATES: [(&str, &str); 8] = [
    ("login", include_str!("pages/login.hbs")),
    ("consent", include_str!("pages/consent.hbs")),
    ("layout", include_str!("pages/layout.hbs")),
    ("landing", include_str!("pages/landing.hbs")),
    ("identity", include_str!("pages/identity.hbs")),
    ("error", include_str!("pages/error.hbs")),
    ("index", include_str!("pages/index.hbs")),
    ("callback", include_str!("pages/callback.hbs")),
];

impl Pages {
    /// Compile the embedded templates; they are part of the binary and tested, so a failure
    /// is a build defect.
    pub fn new(brand: &'static str) -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for (name, text) in TEMPLATES {
            registry
                .register_template_string(name, text)
                .unwrap_or_else(|error| panic!("page template {name} compiles: {error}"));
        }
        Self { registry, brand }
    }

    /// Render a page; a rendering failure becomes a minimal error page rather than a panic.
    pub fn render(&self, name: &str, data: &impl Serialize) -> String {
        let mut data = serde_json::to_value(data).unwrap_or_default();
        if let Some(object) = data.as_object_mut() {
            object.insert("brand".into(), self.brand.into());
        }
        self.registry.render(name, &data).unwrap_or_else(|error| {
            tracing::error!(page = name, %error, "a sandbox page failed to render");
            "<!doctype html><title>Error</title><p>The page could not be shown.</p>".to_owned()
        })
    }

    /// The error page: what went wrong and what to do.
    pub fn error(&self, title: &str, message: &str, advice: &str) -> String {
        #[derive(Serialize)]
        struct ErrorPage<'a> {
            title: &'a str,
            message: &'a str,
            advice: &'a str,
        }
        self.render(
            "error",
            &ErrorPage {
                title,
                message,
                advice,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_renders_and_escapes() {
        let pages = Pages::new("Demo Health Plan");
        let hostile = "<script>alert(1)</script>\"><img onerror=x>";
        let identity = pages.render(
            "identity",
            &json!({
                "request": hostile, "identity_action": "/x", "error": hostile,
                "values": { "first_name": hostile, "last_name": "", "birth_date": "", "member_id": "", "zip": "" }
            }),
        );
        assert!(!identity.contains("<script>"), "{identity}");
        assert!(identity.contains("&lt;script&gt;"));
        for label in [
            "First Name",
            "Last Name",
            "Birthdate",
            "Plan Member ID",
            "Zip Code",
            "Verify identity",
        ] {
            assert!(identity.contains(label), "{label}");
        }
        let landing = pages.render(
            "landing",
            &json!({ "client_id": hostile, "scope": "patient/*.read", "redirect_uri": "http://x",
                     "identity_url": "/i", "identity_action": "/i", "request": "r" }),
        );
        assert!(landing.contains("Click here to confirm identity"));
        assert!(!landing.contains("<img onerror"));
        let error = pages.error("Bad", hostile, "Do this");
        assert!(!error.contains("<script>"));
        let index = pages.render(
            "index",
            &json!({ "authorize_url": "a", "token_url": "t", "fhir_base": "f" }),
        );
        assert!(index.contains("FHIR base"));
    }
}
