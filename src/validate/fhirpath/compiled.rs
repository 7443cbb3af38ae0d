//! A constraint's expression as the type model holds it, compiled by [`super::compile`]
//! and evaluated by [`Compiled::check`] (beside the evaluator): a type of its own, so that
//! the model can keep it without knowing the evaluator, which reads the model.

use super::parse::Expr;

/// A constraint expression, ready to evaluate.
#[derive(Debug)]
pub struct Compiled {
    pub(super) expr: Expr,
}
