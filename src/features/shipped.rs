//! The shipped Gherkin features, embedded in the binary: the checks every payer shares
//! (token, resources, access control) and one sign-in feature per kind of login, named like
//! the sandbox's personas. A target picks its sign-in with `sign_in = "NAME"`; `onramp init`
//! writes editable copies.

/// The feature every set runs before the sign-in.
const FIRST: (&str, &str) = (
    "discovery.feature",
    include_str!("../../features/discovery.feature"),
);

/// The features every set shares, in the order a run executes them (after the sign-in).
const SHARED: [(&str, &str); 11] = [
    (
        "token.feature",
        include_str!("../../features/token.feature"),
    ),
    (
        "openid.feature",
        include_str!("../../features/openid.feature"),
    ),
    (
        "resources.feature",
        include_str!("../../features/resources.feature"),
    ),
    (
        "carin-search.feature",
        include_str!("../../features/carin-search.feature"),
    ),
    (
        "clinical.feature",
        include_str!("../../features/clinical.feature"),
    ),
    // The public APIs: no sign-in needed (unless the formulary is read with the member's
    // token).
    (
        "provider-directory.feature",
        include_str!("../../features/provider-directory.feature"),
    ),
    (
        "formulary.feature",
        include_str!("../../features/formulary.feature"),
    ),
    (
        "isolation.feature",
        include_str!("../../features/isolation.feature"),
    ),
    (
        "access-control.feature",
        include_str!("../../features/access-control.feature"),
    ),
    // The app under test (skipped without [app]): before the refresh checks, while the
    // run's grant reads what the app should show.
    ("app.feature", include_str!("../../features/app.feature")),
    // Last: a server may end the whole grant when a rotated-out refresh token comes back.
    (
        "refresh.feature",
        include_str!("../../features/refresh.feature"),
    ),
];

/// The sign-in features, by name: the payer guide's demo health plan (an identity form),
/// and a CMS Blue Button 2.0-like login (username and password, then a consent page).
const SIGN_INS: [(&str, &str); 2] = [
    (
        "demo-plan",
        include_str!("../../features/authorization.feature"),
    ),
    (
        "bluebutton",
        include_str!("../../features/bluebutton/authorization.feature"),
    ),
];

/// The shipped files in the order a run executes them: discovery (it needs no sign-in), the
/// sign-in (its code serves the token scenario), the token (its grant serves the reads),
/// then the rest.
pub const RUN_ORDER: [&str; 13] = [
    "discovery.feature",
    "authorization.feature",
    "token.feature",
    "openid.feature",
    "resources.feature",
    "carin-search.feature",
    "clinical.feature",
    "provider-directory.feature",
    "formulary.feature",
    "isolation.feature",
    "access-control.feature",
    "app.feature",
    "refresh.feature",
];

/// The sign-in used when a target names none.
pub const DEFAULT_SIGN_IN: &str = "demo-plan";

/// The names of the shipped sign-in features.
pub fn sign_ins() -> Vec<&'static str> {
    SIGN_INS.iter().map(|(name, _)| *name).collect()
}

/// The shipped features with the sign-in called `sign_in`, as `(file name, text)`, in run
/// order; `None` for an unknown name.
pub fn set(sign_in: &str) -> Option<Vec<(&'static str, &'static str)>> {
    let (_, authorization) = SIGN_INS.iter().find(|(name, _)| *name == sign_in)?;
    Some(
        [FIRST, ("authorization.feature", *authorization)]
            .into_iter()
            .chain(SHARED)
            .collect(),
    )
}
