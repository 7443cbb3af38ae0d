//! FHIRPath for the constraints of the R4 definitions and the CARIN profiles.
//!
//! The candidates on crates.io were measured first (see the commit that added this module):
//! `octofhir-fhirpath` 0.4.57 answered 16 of 17 of our constraint cases right, but takes
//! about 10 µs per evaluation over `serde_json` values through an async engine, and the R4
//! definitions put a constraint on every element (`ele-1`), so a 10,000-claim corpus would
//! spend minutes there. This evaluator works on the parsed `sonic_rs` document directly,
//! typed by [`super::model`], and covers the functions the definitions use; an expression
//! it cannot parse, or a function it does not have, makes that constraint "not evaluated"
//! (counted, never guessed).

mod compiled;
mod eval;

pub use eval::days_in_month;
mod parse;
mod ucum;

pub use compiled::{Compiled, NotCompiled};
use eval::Stop;
pub use eval::{BUDGET_SPENT, Budget, Env, Host, Memo, Node};
pub use parse::Expr;
use parse::parse;

/// Parse `text` and check that every function it calls is one the evaluator has.
pub fn compile(text: &str) -> Result<Compiled, NotCompiled> {
    let expr = parse(text).map_err(|e| NotCompiled(format!("cannot parse: {e}")))?;
    check_functions(&expr).map_err(NotCompiled)?;
    Ok(Compiled { expr })
}

fn check_functions(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::Call(base, name, args) => {
            if !eval::known_function(name, args.len()) {
                return Err(format!("{name}() is not supported"));
            }
            if let Some(base) = base {
                check_functions(base)?;
            }
            // A type argument is a name, not an expression to check.
            if !matches!(name.as_str(), "ofType" | "is" | "as") {
                for arg in args {
                    check_functions(arg)?;
                }
            }
            Ok(())
        }
        Expr::Member(Some(base), _) | Expr::Negate(base) | Expr::Type(_, base, _) => {
            check_functions(base)
        }
        Expr::Indexer(a, b) | Expr::Binary(_, a, b) => {
            check_functions(a)?;
            check_functions(b)
        }
        _ => Ok(()),
    }
}

/// What a constraint said about one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Fails,
    /// The expression could not be decided here: why.
    Undecided(String),
}

impl Compiled {
    /// Evaluate with `%context` the env's context. True or empty holds; false fails.
    pub fn check<'a>(&'a self, env: &Env<'a, '_>) -> Verdict {
        match eval::evaluate(&self.expr, env).and_then(|result| eval::truth(&result, env.model)) {
            Err(Stop(why)) => Verdict::Undecided(why),
            Ok(Some(false)) => Verdict::Fails,
            Ok(_) => Verdict::Holds,
        }
    }
}
