//! The Gherkin features a run executes: a shipped set ([`crate::features::shipped`]) or a folder of
//! the user's own (`--features DIR`, or the target's `features`), parsed before the run
//! starts so that a feature that does not parse, or a sign-in written wrong, stops the run
//! with a usage error naming the file and line. `${resources.required}` in an Examples row
//! becomes one row per type the target requires. Cucumber then runs the parsed features
//! through [`Parser`].

pub mod shipped;

use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv};

/// The placeholder an Examples row uses for the target's required types.
pub const REQUIRED_TYPES_PLACEHOLDER: &str = "${resources.required}";
/// The placeholder for the clinical types the `@clinical` features read.
pub const CLINICAL_TYPES_PLACEHOLDER: &str = "${resources.clinical}";
/// The placeholder for two cells: each clinical type and each search US Core's
/// CapabilityStatement makes SHALL for it (`Observation | patient+category`).
pub const CLINICAL_SEARCHES_PLACEHOLDER: &str = "${clinical.searches}";

/// The placeholders of the public APIs' rows, each `${KEY.WHAT}` with `KEY` `directory` or
/// `formulary`: `types` (one cell), `searches`, `includes` and `revincludes` (two cells: the
/// type and what is tried), all read from the API's IG.
pub const BOOK_PLACEHOLDERS: &[&str] = &["types", "searches", "includes", "revincludes"];

/// What each placeholder of an Examples row becomes: rows of cells, filled in from the
/// placeholder's cell on.
#[derive(Debug, Clone, Default)]
pub struct Fill {
    pub rows: Vec<(String, Vec<Vec<String>>)>,
}

impl Fill {
    /// The required types, the clinical types and the clinical types' SHALL searches.
    pub fn of(required: &[String], clinical: &[String]) -> Self {
        let one = |types: &[String]| types.iter().map(|t| vec![t.clone()]).collect();
        let searches = clinical
            .iter()
            .flat_map(|kind| {
                crate::payer::clinical::searches(kind)
                    .into_iter()
                    .map(move |search| vec![kind.clone(), search])
            })
            .collect();
        let mut rows: Vec<(String, Vec<Vec<String>>)> = vec![
            (REQUIRED_TYPES_PLACEHOLDER.to_owned(), one(required)),
            (CLINICAL_TYPES_PLACEHOLDER.to_owned(), one(clinical)),
            (CLINICAL_SEARCHES_PLACEHOLDER.to_owned(), searches),
        ];
        for book in crate::payer::public::Book::ALL {
            let two = |pairs: Vec<(String, String)>| -> Vec<Vec<String>> {
                pairs.into_iter().map(|(a, b)| vec![a, b]).collect()
            };
            for what in BOOK_PLACEHOLDERS {
                let cells = match *what {
                    "types" => one(&book.types()),
                    "searches" => two(book.searches()),
                    "includes" => two(book.includes()),
                    _ => two(book.revincludes()),
                };
                rows.push((format!("${{{}.{what}}}", book.key()), cells));
            }
        }
        Self { rows }
    }
}

/// Feature texts with the names they are reported under.
#[derive(Debug, Clone)]
pub struct Features {
    pub files: Vec<(PathBuf, String)>,
}

/// Why features could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    #[error("cannot read the features folder {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no .feature files")]
    Empty { path: PathBuf },
    #[error("no shipped sign-in is called \"{name}\"; the shipped ones are: {}", shipped::sign_ins().join(", "))]
    UnknownSet { name: String },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    SignIn(#[from] crate::payer::recipe::RecipeError),
}

impl Features {
    /// The shipped features with the sign-in called `sign_in`.
    pub fn embedded(sign_in: &str) -> Result<Self, FeaturesError> {
        let set = shipped::set(sign_in).ok_or_else(|| FeaturesError::UnknownSet {
            name: sign_in.to_owned(),
        })?;
        Ok(Self {
            files: set
                .into_iter()
                .map(|(name, text)| (PathBuf::from(format!("features/{name}")), text.to_owned()))
                .collect(),
        })
    }

    /// Every `.feature` file under `dir`: the shipped names in their run order
    /// ([`shipped::RUN_ORDER`]), then the others in name order.
    pub fn from_dir(dir: &Path) -> Result<Self, FeaturesError> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|e| FeaturesError::Read {
                path: e.path().unwrap_or(dir).to_owned(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("loop in the folder")),
            })?;
            if entry.file_type().is_file()
                && entry.path().extension().is_some_and(|e| e == "feature")
            {
                let text = std::fs::read_to_string(entry.path()).map_err(|source| {
                    FeaturesError::Read {
                        path: entry.path().to_owned(),
                        source,
                    }
                })?;
                files.push((entry.into_path(), text));
            }
        }
        if files.is_empty() {
            return Err(FeaturesError::Empty {
                path: dir.to_owned(),
            });
        }
        // A stable sort keeps the walk's name order within each rank.
        files.sort_by_key(|(path, _)| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            shipped::RUN_ORDER
                .iter()
                .position(|shipped| *shipped == name)
                .unwrap_or(shipped::RUN_ORDER.len())
        });
        Ok(Self { files })
    }

    /// Parse every file, fill `${resources.required}` rows with `required` and expand the
    /// Scenario Outlines.
    pub fn parse(self, required: &[String]) -> Result<Vec<gherkin::Feature>, FeaturesError> {
        self.parse_with(&Fill::of(required, &[]))
    }

    /// Parse every file, fill the placeholders' rows as `fill` says and expand the Scenario
    /// Outlines.
    pub fn parse_with(self, fill: &Fill) -> Result<Vec<gherkin::Feature>, FeaturesError> {
        self.files
            .into_iter()
            .map(|(path, text)| {
                let mut feature =
                    gherkin::Feature::parse(&text, GherkinEnv::default()).map_err(|e| {
                        FeaturesError::Parse {
                            path: path.clone(),
                            message: e.to_string(),
                        }
                    })?;
                feature.path = Some(path.clone());
                for scenario in feature.scenarios.iter_mut().chain(
                    feature
                        .rules
                        .iter_mut()
                        .flat_map(|r| r.scenarios.iter_mut()),
                ) {
                    for examples in &mut scenario.examples {
                        if let Some(table) = &mut examples.table {
                            table.rows = fill_rows(&table.rows, fill);
                        }
                    }
                }
                feature.expand_examples().map_err(|e| FeaturesError::Parse {
                    path,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

/// Rows with a placeholder cell repeated once per row of what it stands for, that row's
/// cells put in from the placeholder's cell on. A placeholder with no rows (a target with no
/// clinical types) leaves no row.
fn fill_rows(rows: &[Vec<String>], fill: &Fill) -> Vec<Vec<String>> {
    let Some((header, values)) = rows.split_first() else {
        return rows.to_vec();
    };
    let mut out = vec![header.clone()];
    for row in values {
        let found = row.iter().enumerate().find_map(|(at, cell)| {
            fill.rows
                .iter()
                .find(|(name, _)| cell.trim() == name)
                .map(|(_, filled)| (at, filled))
        });
        let Some((at, filled)) = found else {
            out.push(row.clone());
            continue;
        };
        for cells in filled {
            let mut new = row.clone();
            for (offset, cell) in cells.iter().enumerate() {
                if let Some(slot) = new.get_mut(at + offset) {
                    *slot = cell.clone();
                }
            }
            out.push(new);
        }
    }
    out
}

/// Cucumber's view of the parsed features.
#[derive(Debug, Default, Clone, Copy)]
pub struct Parser;

impl cucumber::Parser<Vec<gherkin::Feature>> for Parser {
    type Cli = cucumber::cli::Empty;
    type Output =
        futures_util::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, input: Vec<gherkin::Feature>, _: Self::Cli) -> Self::Output {
        futures_util::stream::iter(input.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_required_types_fill_their_examples_row() {
        let rows = vec![
            vec!["type".to_owned()],
            vec![REQUIRED_TYPES_PLACEHOLDER.to_owned()],
        ];
        let filled = fill_rows(
            &rows,
            &Fill::of(&["Patient".into(), "Coverage".into()], &[]),
        );
        assert_eq!(
            filled,
            vec![
                vec!["type".to_owned()],
                vec!["Patient".to_owned()],
                vec!["Coverage".to_owned()]
            ]
        );
    }

    #[test]
    fn every_shipped_set_parses_and_has_one_sign_in() {
        for name in shipped::sign_ins() {
            let parsed = Features::embedded(name)
                .expect("a shipped set")
                .parse(&["Patient".into(), "Coverage".into()])
                .expect("parses");
            let recipe = crate::payer::recipe::Recipe::find(&parsed)
                .expect("well written")
                .expect("a sign-in");
            assert!(recipe.source.starts_with("features/authorization.feature:"));
            let resources = parsed
                .iter()
                .find(|f| f.name == "Required resources")
                .expect("resources");
            assert_eq!(resources.scenarios.len(), 2, "one scenario per type");
        }
    }
}
