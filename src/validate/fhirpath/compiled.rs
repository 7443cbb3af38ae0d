//! A constraint's expression as the type model holds it, compiled by [`super::compile`]
//! and evaluated by [`Compiled::check`] (beside the evaluator): a type of its own, so that
//! the model can keep it without knowing the evaluator, which reads the model.

use super::parse::Expr;

/// A constraint expression, ready to evaluate.
#[derive(Debug)]
pub struct Compiled {
    pub(super) expr: Expr,
}

/// Why a constraint is never evaluated: it cannot be parsed, or calls a function the
/// evaluator does not have (counted as "not evaluated", never guessed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct NotCompiled(pub String);
