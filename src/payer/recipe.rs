//! The member's sign-in as the features spell it: a small step language and the recipe that
//! every sign-in replays.
//!
//! A payer's login is whatever its pages say, so none of its wording lives in Rust. The
//! features say it, in steps such as `the member clicks "Verify identity"` or `the member
//! fills in the login form:` with a table of labels and values. The scenario tagged
//! `@sign-in` is the one place that defines the sign-in: cucumber runs it as a scenario, and
//! every other scenario that needs a code (the token, the reads, a second sign-in) replays
//! its actions. Edit that scenario and every sign-in follows.
//!
//! This module only reads text: it parses steps into [`Action`]s, finds the recipe among
//! parsed features and expands `${member.<name>}` placeholders. Driving the browser is the
//! run's job ([`crate::run`]).

use std::collections::BTreeMap;
use std::path::Path;

use cucumber::gherkin;

/// The tag of the scenario that defines the sign-in.
pub const SIGN_IN_TAG: &str = "sign-in";

/// One thing the member (or the app) does during a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `the app starts an authorization request`: a fresh `state` (and PKCE verifier).
    Start,
    /// `the member opens the authorization URL [in the browser]`.
    Open,
    /// `the member clicks "TEXT"`: a link or button by its text.
    Click(String),
    /// `the member fills in "LABEL" with "VALUE"`, or `the member fills in ...:` with a
    /// table of `| label | value |` rows. A field is found by its label, else its
    /// placeholder, its accessible name or its `name`.
    Fill(Vec<(String, String)>),
    /// `the member chooses "OPTION"` (a radio button or checkbox by its label), or
    /// `the member chooses "OPTION" for "FIELD"` (an option of the select labelled FIELD,
    /// or a radio button in the group whose legend is FIELD).
    Choose {
        option: String,
        field: Option<String>,
    },
    /// `the member checks "LABEL"` / `the member unchecks "LABEL"`.
    Check { label: String, on: bool },
    /// `the member waits for "TEXT"`: until the page shows the text.
    WaitFor(String),
    /// `the member submits the form`: Enter in the field filled last, as a person would.
    Submit,
}

/// The prefixes every step of the language starts with, for the cucumber step that
/// delegates to [`Action::parse`].
pub const STEP_PATTERN: &str = r"^the (?:app starts an authorization request|member (?:opens the authorization URL|clicks|fills in|chooses|checks|unchecks|waits for|submits)\b.*)$";

impl Action {
    /// Parse a step's text (without its keyword), with the step's table if it has one.
    /// `Ok(None)`: not a step of the sign-in language. `Err`: one of its steps, written
    /// wrong (the message says how to write it).
    pub fn parse(text: &str, table: Option<&[Vec<String>]>) -> Result<Option<Action>, Miswritten> {
        Self::read(text, table).map_err(Miswritten)
    }

    fn read(text: &str, table: Option<&[Vec<String>]>) -> Result<Option<Action>, String> {
        let text = text.trim();
        if text == "the app starts an authorization request" {
            return Ok(Some(Action::Start));
        }
        let Some(rest) = text.strip_prefix("the member ") else {
            return Ok(None);
        };
        if rest == "opens the authorization URL"
            || rest == "opens the authorization URL in the browser"
        {
            return Ok(Some(Action::Open));
        }
        if rest == "submits the form" {
            return Ok(Some(Action::Submit));
        }
        if let Some(args) = rest.strip_prefix("clicks ") {
            let [text] = quoted::<1>(args, "the member clicks \"TEXT\"")?;
            return Ok(Some(Action::Click(text)));
        }
        if let Some(args) = rest.strip_prefix("waits for ") {
            let [text] = quoted::<1>(args, "the member waits for \"TEXT\"")?;
            return Ok(Some(Action::WaitFor(text)));
        }
        if let Some(args) = rest.strip_prefix("checks ") {
            let [label] = quoted::<1>(args, "the member checks \"LABEL\"")?;
            return Ok(Some(Action::Check { label, on: true }));
        }
        if let Some(args) = rest.strip_prefix("unchecks ") {
            let [label] = quoted::<1>(args, "the member unchecks \"LABEL\"")?;
            return Ok(Some(Action::Check { label, on: false }));
        }
        if let Some(args) = rest.strip_prefix("chooses ") {
            if let Some((option, field)) = args.split_once("\" for \"") {
                let [option, field] = quoted::<2>(
                    &format!("{option}\" \"{field}"),
                    "the member chooses \"OPTION\" for \"FIELD\"",
                )?;
                return Ok(Some(Action::Choose {
                    option,
                    field: Some(field),
                }));
            }
            let [option] = quoted::<1>(args, "the member chooses \"OPTION\"")?;
            return Ok(Some(Action::Choose {
                option,
                field: None,
            }));
        }
        if let Some(args) = rest.strip_prefix("fills in") {
            if args.trim_end().ends_with(':') {
                let rows = table.ok_or_else(|| {
                    "`the member fills in ...:` needs a table of | label | value | rows".to_owned()
                })?;
                let mut pairs = Vec::new();
                for row in rows {
                    let [label, value] = row.as_slice() else {
                        return Err(format!(
                            "each row of the table is | label | value |, not {row:?}"
                        ));
                    };
                    pairs.push((label.clone(), value.clone()));
                }
                if pairs.is_empty() {
                    return Err("the table names no field to fill in".into());
                }
                return Ok(Some(Action::Fill(pairs)));
            }
            if let Some((label, value)) = args.split_once("\" with \"") {
                let [label, value] = quoted::<2>(
                    &format!("{label}\" \"{value}"),
                    "the member fills in \"LABEL\" with \"VALUE\"",
                )?;
                return Ok(Some(Action::Fill(vec![(label, value)])));
            }
            return Err(
                "write `the member fills in \"LABEL\" with \"VALUE\"`, or end the step with `:` and give a table"
                    .into(),
            );
        }
        Ok(None)
    }

    /// The texts a person would see in this step (for placeholders and messages).
    fn texts(&self) -> Vec<&str> {
        match self {
            Action::Start | Action::Open | Action::Submit => Vec::new(),
            Action::Click(text) | Action::WaitFor(text) => vec![text],
            Action::Fill(pairs) => pairs
                .iter()
                .flat_map(|(l, v)| [l.as_str(), v.as_str()])
                .collect(),
            Action::Choose { option, field } => std::iter::once(option.as_str())
                .chain(field.as_deref())
                .collect(),
            Action::Check { label, .. } => vec![label],
        }
    }
}

/// `N` double-quoted strings separated by spaces: `"a" "b"`.
fn quoted<const N: usize>(text: &str, form: &str) -> Result<[String; N], String> {
    let mut found = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("write it as {form}"))?;
        let end = inner
            .find('"')
            .ok_or_else(|| format!("write it as {form}"))?;
        found.push(inner[..end].to_owned());
        rest = inner[end + 1..].trim_start();
    }
    found.try_into().map_err(|_| format!("write it as {form}"))
}

/// A step of the recipe, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeStep {
    pub action: Action,
    pub text: String,
    pub line: usize,
}

/// The sign-in, as the `@sign-in` scenario defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// `features/authorization.feature:10`: where the scenario is, for messages.
    pub source: String,
    pub steps: Vec<RecipeStep>,
    /// The scenario's tags with its rule's and feature's: what a tag filter sees.
    pub tags: Vec<String>,
}

/// A step of the sign-in language written wrong: the message says how to write it (usage).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Miswritten(pub String);

/// Why the features' sign-in cannot be used: the features are written wrong (usage).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecipeError {
    /// A step of the `@sign-in` scenario is of the language but written wrong.
    #[error("{at}: {problem}")]
    Step { at: String, problem: String },
    #[error(
        "more than one scenario is tagged @{SIGN_IN_TAG} ({places}); the sign-in is defined in one place"
    )]
    Several { places: String },
}

impl Recipe {
    /// The one scenario tagged `@sign-in` among `features` (whatever tags select for the
    /// run). `Ok(None)` when there is none; an error when there are several or a step of
    /// the language is written wrong.
    pub fn find(features: &[gherkin::Feature]) -> Result<Option<Recipe>, RecipeError> {
        let mut found: Vec<(&gherkin::Feature, &gherkin::Scenario, Vec<String>)> = Vec::new();
        for feature in features {
            let scenarios = feature.scenarios.iter().map(|s| (s, None)).chain(
                feature
                    .rules
                    .iter()
                    .flat_map(|r| r.scenarios.iter().map(move |s| (s, Some(r)))),
            );
            for (scenario, rule) in scenarios {
                let tags: Vec<String> = scenario
                    .tags
                    .iter()
                    .chain(rule.iter().flat_map(|r| &r.tags))
                    .chain(&feature.tags)
                    .cloned()
                    .collect();
                if tags.iter().any(|t| t == SIGN_IN_TAG) {
                    found.push((feature, scenario, tags));
                }
            }
        }
        let place = |feature: &gherkin::Feature, line: usize| {
            format!(
                "{}:{line}",
                feature
                    .path
                    .as_deref()
                    .map_or_else(|| feature.name.clone(), |p| p.display().to_string())
            )
        };
        match found.as_slice() {
            [] => Ok(None),
            [(feature, scenario, tags)] => {
                let mut steps = Vec::new();
                for step in &scenario.steps {
                    let table = step.table.as_ref().map(|t| t.rows.as_slice());
                    match Action::parse(&step.value, table) {
                        Ok(Some(action)) => steps.push(RecipeStep {
                            action,
                            text: step.value.clone(),
                            line: step.position.line,
                        }),
                        Ok(None) => {}
                        Err(Miswritten(problem)) => {
                            return Err(RecipeError::Step {
                                at: place(feature, step.position.line),
                                problem,
                            });
                        }
                    }
                }
                Ok(Some(Recipe {
                    source: place(feature, scenario.position.line),
                    steps,
                    tags: tags.clone(),
                }))
            }
            several => Err(RecipeError::Several {
                places: several
                    .iter()
                    .map(|(f, s, _)| place(f, s.position.line))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// `${member.<name>}` names the recipe uses.
    pub fn placeholders(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .steps
            .iter()
            .flat_map(|s| s.action.texts())
            .flat_map(placeholder_names)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The `<name>`s of `${member.<name>}` in `text`.
pub fn placeholder_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${member.") {
        let after = &rest[start + "${member.".len()..];
        let Some(end) = after.find('}') else { break };
        names.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    names
}

/// A `${member.…}` that cannot be filled in: the features do not fit the target (usage).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemberValue {
    #[error("\"{text}\" has an unclosed ${{member.…}}")]
    Unclosed { text: String },
    #[error(
        "the features use ${{member.{name}}} but the target's [member] has no \"{name}\" (it has: {has})"
    )]
    Missing { name: String, has: String },
}

/// `text` with every `${member.<name>}` replaced from `member`. The error names the
/// placeholder and what the target's `[member]` has.
pub fn expand(text: &str, member: &BTreeMap<String, String>) -> Result<String, MemberValue> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${member.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${member.".len()..];
        let end = after.find('}').ok_or_else(|| MemberValue::Unclosed {
            text: text.to_owned(),
        })?;
        let name = &after[..end];
        let value = member.get(name).ok_or_else(|| MemberValue::Missing {
            name: name.to_owned(),
            has: if member.is_empty() {
                "nothing".to_owned()
            } else {
                member.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where a feature file is, as a short string for messages.
pub fn display_path(path: Option<&Path>) -> String {
    path.map_or_else(|| "(features)".to_owned(), |p| p.display().to_string())
}

/// The language's steps as people write them (a parameter shown as `…`), for suggesting
/// the closest to a step nothing matches.
pub const AS_WRITTEN: &[&str] = &[
    "the app starts an authorization request",
    "the member opens the authorization URL",
    "the member clicks \"…\"",
    "the member fills in \"…\" with \"…\"",
    "the member chooses \"…\"",
    "the member checks \"…\"",
    "the member waits for \"…\"",
    "the member submits the form",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Action> {
        Action::parse(text, None).expect("well written")
    }

    #[test]
    fn every_form_of_the_language_parses() {
        assert_eq!(
            parse("the app starts an authorization request"),
            Some(Action::Start)
        );
        assert_eq!(
            parse("the member opens the authorization URL in the browser"),
            Some(Action::Open)
        );
        assert_eq!(
            parse("the member clicks \"Verify identity\""),
            Some(Action::Click("Verify identity".into()))
        );
        assert_eq!(
            parse("the member fills in \"Username\" with \"${member.username}\""),
            Some(Action::Fill(vec![(
                "Username".into(),
                "${member.username}".into()
            )]))
        );
        assert_eq!(
            parse("the member chooses \"Share healthcare data\""),
            Some(Action::Choose {
                option: "Share healthcare data".into(),
                field: None
            })
        );
        assert_eq!(
            parse("the member chooses \"Massachusetts\" for \"State\""),
            Some(Action::Choose {
                option: "Massachusetts".into(),
                field: Some("State".into())
            })
        );
        assert_eq!(
            parse("the member unchecks \"Remember me\""),
            Some(Action::Check {
                label: "Remember me".into(),
                on: false
            })
        );
        assert_eq!(
            parse("the member waits for \"Welcome\""),
            Some(Action::WaitFor("Welcome".into()))
        );
        assert_eq!(parse("the member submits the form"), Some(Action::Submit));
        let rows = vec![
            vec!["First Name".to_owned(), "John".to_owned()],
            vec!["Zip Code".to_owned(), "02114".to_owned()],
        ];
        assert_eq!(
            Action::parse("the member fills in the identity form:", Some(&rows)),
            Ok(Some(Action::Fill(vec![
                ("First Name".into(), "John".into()),
                ("Zip Code".into(), "02114".into())
            ])))
        );
        assert_eq!(parse("the member has authorized the app"), None);
        assert_eq!(parse("the token type is Bearer"), None);
    }

    #[test]
    fn the_step_pattern_covers_the_language_and_nothing_else() {
        let pattern = regex::Regex::new(STEP_PATTERN).expect("regex");
        for text in [
            "the app starts an authorization request",
            "the member opens the authorization URL",
            "the member clicks \"x\"",
            "the member fills in the form:",
            "the member chooses \"x\"",
            "the member checks \"x\"",
            "the member unchecks \"x\"",
            "the member waits for \"x\"",
            "the member submits the form",
        ] {
            assert!(pattern.is_match(text), "{text}");
            assert!(Action::parse(text, Some(&[vec!["a".into(), "b".into()]])).is_ok());
        }
        for text in [
            "the member has authorized the app",
            "the member authorizes the app once more",
            "the member authorizes the app once more with PKCE",
        ] {
            assert!(!pattern.is_match(text), "{text}");
        }
    }

    #[test]
    fn badly_written_steps_say_how_to_write_them() {
        let error = Action::parse("the member clicks Verify", None)
            .expect_err("unquoted")
            .to_string();
        assert!(error.contains("the member clicks \"TEXT\""), "{error}");
        let error = Action::parse("the member fills in:", None)
            .expect_err("no table")
            .to_string();
        assert!(error.contains("table"), "{error}");
    }

    #[test]
    fn placeholders_expand_from_the_member_or_name_what_is_missing() {
        let member: BTreeMap<String, String> =
            [("first_name".to_owned(), "John".to_owned())].into();
        assert_eq!(
            expand("Hello ${member.first_name}!", &member).as_deref(),
            Ok("Hello John!")
        );
        let error = expand("${member.birth_date}", &member)
            .expect_err("missing")
            .to_string();
        assert!(
            error.contains("birth_date") && error.contains("first_name"),
            "{error}"
        );
        assert_eq!(
            placeholder_names("${member.a} and ${member.b}"),
            vec!["a", "b"]
        );
    }

    #[test]
    fn the_recipe_is_the_one_scenario_tagged_sign_in() {
        let text = "Feature: F\n\n  @sign-in\n  Scenario: S\n    Given the app starts an authorization request\n    When the member opens the authorization URL\n    And the member clicks \"Go\"\n    Then the redirect carries an authorization code\n\n  Scenario: Other\n    Given the member clicks \"Elsewhere\"\n";
        let feature =
            gherkin::Feature::parse(text, gherkin::GherkinEnv::default()).expect("parses");
        let recipe = Recipe::find(std::slice::from_ref(&feature))
            .expect("one")
            .expect("found");
        assert_eq!(
            recipe
                .steps
                .iter()
                .map(|s| s.action.clone())
                .collect::<Vec<_>>(),
            vec![Action::Start, Action::Open, Action::Click("Go".into())]
        );
        assert_eq!(recipe.steps[2].line, 7);
        let twice = Recipe::find(&[feature.clone(), feature])
            .expect_err("two")
            .to_string();
        assert!(twice.contains("more than one"), "{twice}");
    }
}
