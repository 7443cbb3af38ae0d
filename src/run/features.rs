//! The Gherkin features a run executes: the ones shipped in the binary, or a folder of the
//! user's own (`--features DIR`, as `onramp init` writes them), fed to cucumber through a
//! parser of its own so that the installed binary needs no files beside it.

use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv};

/// The shipped features, in the order a run executes them.
pub const EMBEDDED: [(&str, &str); 4] = [
    (
        "authorization.feature",
        include_str!("../../features/authorization.feature"),
    ),
    (
        "token.feature",
        include_str!("../../features/token.feature"),
    ),
    (
        "resources.feature",
        include_str!("../../features/resources.feature"),
    ),
    (
        "access-control.feature",
        include_str!("../../features/access-control.feature"),
    ),
];

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
}

impl Features {
    /// The features shipped in the binary.
    pub fn embedded() -> Self {
        Self {
            files: EMBEDDED
                .iter()
                .map(|(name, text)| {
                    (
                        PathBuf::from(format!("features/{name}")),
                        (*text).to_owned(),
                    )
                })
                .collect(),
        }
    }

    /// Every `.feature` file under `dir`, in name order.
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
        Ok(Self { files })
    }
}

/// Cucumber's view of [`Features`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Parser;

impl cucumber::Parser<Features> for Parser {
    type Cli = cucumber::cli::Empty;
    type Output =
        futures_util::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, input: Features, _: Self::Cli) -> Self::Output {
        let parsed: Vec<cucumber::parser::Result<gherkin::Feature>> = input
            .files
            .into_iter()
            .map(
                |(path, text)| match gherkin::Feature::parse(&text, GherkinEnv::default()) {
                    Ok(mut feature) => {
                        feature.path = Some(path);
                        // Scenario Outlines become one scenario per Examples row.
                        feature.expand_examples().map_err(Into::into)
                    }
                    Err(error) => Err(gherkin::ParseFileError::Parsing {
                        path,
                        error: None,
                        source: error,
                    }
                    .into()),
                },
            )
            .collect();
        futures_util::stream::iter(parsed)
    }
}
