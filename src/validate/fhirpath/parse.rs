//! FHIRPath text → [`Expr`]: a lexer and a precedence-climbing parser for the grammar of
//! FHIRPath N1 (the version FHIR R4 uses). Anything outside the grammar is a parse error;
//! functions are checked against the evaluator's list in [`super::compile`].

use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Literal),
    /// `{}`.
    Empty,
    /// `$this`.
    This,
    /// `$index`.
    Index,
    /// `$total`.
    Total,
    /// `%name`.
    Variable(String),
    /// `base.name`, or a bare `name` (on the focus).
    Member(Option<Box<Expr>>, String),
    /// `base.name(args)`, or a bare `name(args)` (on the focus).
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    /// `base[index]`.
    Indexer(Box<Expr>, Box<Expr>),
    /// `-x`, `+x`.
    Negate(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    /// `x is T`, `x as T`.
    Type(TypeOp, Box<Expr>, String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    String(String),
    Integer(i64),
    Decimal(f64),
    /// `@2020-01-01`, `@2020-01-01T10:00:00Z`: the text after `@`.
    DateTime(String),
    /// `@T10:00`: the text after `@T`.
    Time(String),
    /// `4 'mg'`, `2 days`.
    Quantity(f64, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeOp {
    Is,
    As,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

/// Why text is not an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Identifier(String),
    /// A `` `delimited` `` identifier: never a keyword.
    Delimited(String),
    String(String),
    Number(String),
    DateTime(String),
    Time(String),
    Variable(String),
    Special(String),
    Symbol(&'static str),
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Identifier(chars[start..i].iter().collect()));
            continue;
        }
        if c == '`' {
            let (value, next) =
                quoted(&chars, i, '`').ok_or_else(|| position_error("unterminated `", i))?;
            tokens.push(Token::Delimited(value));
            i = next;
            continue;
        }
        if c == '\'' {
            let (value, next) =
                quoted(&chars, i, '\'').ok_or_else(|| position_error("unterminated string", i))?;
            tokens.push(Token::String(value));
            i = next;
            continue;
        }
        if c.is_ascii_digit() {
            let (token, next) = number(&chars, i);
            tokens.push(token);
            i = next;
            continue;
        }
        if c == '@' {
            let (token, next) = date_time(&chars, i)?;
            tokens.push(token);
            i = next;
            continue;
        }
        if c == '%' {
            let (token, next) = variable(&chars, i)?;
            tokens.push(token);
            i = next;
            continue;
        }
        if c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            tokens.push(Token::Special(chars[start..i].iter().collect()));
            continue;
        }
        let (token, next) = symbol(&chars, i)?;
        tokens.push(token);
        i = next;
    }
    Ok(tokens)
}

fn position_error(what: &str, at: usize) -> ParseError {
    ParseError(format!("{what} at character {}", at + 1))
}

/// A number at `i`: its token, and where the text goes on.
fn number(chars: &[char], mut i: usize) -> (Token, usize) {
    let start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    (Token::Number(chars[start..i].iter().collect()), i)
}

/// A date, date-time (`@2024-01-01T10:00`) or time (`@T10:00`) literal at `i`.
fn date_time(chars: &[char], mut i: usize) -> Result<(Token, usize), ParseError> {
    let start = i + 1;
    i += 1;
    if chars.get(i) == Some(&'T') {
        i += 1;
        let from = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || matches!(chars[i], ':' | '.')) {
            i += 1;
        }
        return Ok((Token::Time(chars[from..i].iter().collect()), i));
    }
    while i < chars.len()
        && (chars[i].is_ascii_digit() || matches!(chars[i], '-' | ':' | '.' | 'T' | 'Z' | '+'))
    {
        i += 1;
    }
    if start == i {
        return Err(position_error("@ without a date", start));
    }
    Ok((Token::DateTime(chars[start..i].iter().collect()), i))
}

/// An environment variable (`%resource`, `%`ext-1``, `%'vs-name'`) at `i`.
fn variable(chars: &[char], mut i: usize) -> Result<(Token, usize), ParseError> {
    i += 1;
    match chars.get(i) {
        Some('`') => {
            let (value, next) =
                quoted(chars, i, '`').ok_or_else(|| position_error("unterminated %`", i))?;
            Ok((Token::Variable(value), next))
        }
        Some('\'') => {
            let (value, next) =
                quoted(chars, i, '\'').ok_or_else(|| position_error("unterminated %'", i))?;
            Ok((Token::Variable(value), next))
        }
        _ => {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '-'))
            {
                i += 1;
            }
            if start == i {
                return Err(position_error("% without a name", i));
            }
            Ok((Token::Variable(chars[start..i].iter().collect()), i))
        }
    }
}

/// An operator or punctuation at `i`: two characters first (`<=`), then one.
fn symbol(chars: &[char], i: usize) -> Result<(Token, usize), ParseError> {
    let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
    if let Some(symbol) = ["<=", ">=", "!=", "!~"].into_iter().find(|s| *s == two) {
        return Ok((Token::Symbol(symbol), i + 2));
    }
    let symbol = match chars[i] {
        '.' => ".",
        '[' => "[",
        ']' => "]",
        '(' => "(",
        ')' => ")",
        ',' => ",",
        '+' => "+",
        '-' => "-",
        '*' => "*",
        '/' => "/",
        '|' => "|",
        '&' => "&",
        '=' => "=",
        '~' => "~",
        '<' => "<",
        '>' => ">",
        '{' => "{",
        '}' => "}",
        c => return Err(position_error(&format!("unexpected {c:?}"), i)),
    };
    Ok((Token::Symbol(symbol), i + 1))
}

/// A quoted run starting at `chars[start] == quote`, with FHIRPath escapes: its value and
/// the index after the closing quote.
fn quoted(chars: &[char], start: usize, quote: char) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Some((value, i + 1));
        }
        if c == '\\' {
            i += 1;
            let escaped = *chars.get(i)?;
            match escaped {
                'n' => value.push('\n'),
                'r' => value.push('\r'),
                't' => value.push('\t'),
                'f' => value.push('\u{c}'),
                'u' => {
                    let hex: String = chars.get(i + 1..i + 5)?.iter().collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i += 4;
                }
                other => value.push(other),
            }
            i += 1;
            continue;
        }
        value.push(c);
        i += 1;
    }
    None
}

/// Parse FHIRPath text.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let tokens = lex(text)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.expression(0)?;
    if parser.at != parser.tokens.len() {
        return Err(ParseError(format!(
            "unexpected {:?} after the expression",
            parser.tokens[parser.at]
        )));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

/// Binding power of a binary operator token (higher binds tighter), per FHIRPath's table.
fn binary(token: &Token) -> Option<(u8, Option<Op>)> {
    let op = match token {
        Token::Symbol(s) => match *s {
            "*" => (10, Some(Op::Mul)),
            "/" => (10, Some(Op::Div)),
            "+" => (9, Some(Op::Add)),
            "-" => (9, Some(Op::Sub)),
            "&" => (9, Some(Op::Concat)),
            "|" => (7, Some(Op::Union)),
            "<" => (6, Some(Op::Lt)),
            ">" => (6, Some(Op::Gt)),
            "<=" => (6, Some(Op::Le)),
            ">=" => (6, Some(Op::Ge)),
            "=" => (5, Some(Op::Eq)),
            "!=" => (5, Some(Op::Ne)),
            "~" => (5, Some(Op::Equiv)),
            "!~" => (5, Some(Op::NotEquiv)),
            _ => return None,
        },
        Token::Identifier(word) => match word.as_str() {
            "div" => (10, Some(Op::IntDiv)),
            "mod" => (10, Some(Op::Mod)),
            // `is` and `as` take a type name, not an expression.
            "is" | "as" => (8, None),
            "in" => (4, Some(Op::In)),
            "contains" => (4, Some(Op::Contains)),
            "and" => (3, Some(Op::And)),
            "or" => (2, Some(Op::Or)),
            "xor" => (2, Some(Op::Xor)),
            "implies" => (1, Some(Op::Implies)),
            _ => return None,
        },
        _ => return None,
    };
    Some(op)
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, symbol: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(Token::Symbol(s)) if s == symbol => Ok(()),
            other => Err(ParseError(format!("expected {symbol}, found {other:?}"))),
        }
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol)
    }

    fn expression(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while let Some(token) = self.peek() {
            let Some((power, op)) = binary(token) else {
                break;
            };
            if power < min {
                break;
            }
            let word = match token {
                Token::Identifier(w) => Some(w.clone()),
                _ => None,
            };
            self.at += 1;
            match op {
                Some(op) => {
                    // All binary operators are left-associative.
                    let right = self.expression(power + 1)?;
                    left = Expr::Binary(op, Box::new(left), Box::new(right));
                }
                None => {
                    let name = self.type_name()?;
                    let op = if word.as_deref() == Some("is") {
                        TypeOp::Is
                    } else {
                        TypeOp::As
                    };
                    left = Expr::Type(op, Box::new(left), name);
                }
            }
        }
        Ok(left)
    }

    fn type_name(&mut self) -> Result<String, ParseError> {
        let mut name = match self.next() {
            Some(Token::Identifier(n) | Token::Delimited(n)) => n,
            other => return Err(ParseError(format!("expected a type name, found {other:?}"))),
        };
        while self.is_symbol(".") {
            self.at += 1;
            match self.next() {
                Some(Token::Identifier(n) | Token::Delimited(n)) => {
                    name.push('.');
                    name.push_str(&n);
                }
                other => return Err(ParseError(format!("expected a type name, found {other:?}"))),
            }
        }
        Ok(name)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_symbol("-") {
            self.at += 1;
            let operand = self.unary()?;
            return Ok(Expr::Negate(Box::new(operand)));
        }
        if self.is_symbol("+") {
            self.at += 1;
            return self.unary();
        }
        let mut expr = self.term()?;
        loop {
            if self.is_symbol(".") {
                self.at += 1;
                expr = self.invocation(Some(expr))?;
            } else if self.is_symbol("[") {
                self.at += 1;
                let index = self.expression(0)?;
                self.expect("]")?;
                expr = Expr::Indexer(Box::new(expr), Box::new(index));
            } else {
                break;
            }
        }
        Ok(expr)
    }

    fn invocation(&mut self, base: Option<Expr>) -> Result<Expr, ParseError> {
        let base = base.map(Box::new);
        let name = match self.next() {
            Some(Token::Identifier(n) | Token::Delimited(n)) => n,
            Some(Token::Special(s)) if s == "$this" => return Ok(Expr::This),
            other => return Err(ParseError(format!("expected a name, found {other:?}"))),
        };
        if self.is_symbol("(") {
            self.at += 1;
            let mut args = Vec::new();
            if !self.is_symbol(")") {
                loop {
                    args.push(self.expression(0)?);
                    if self.is_symbol(",") {
                        self.at += 1;
                        continue;
                    }
                    break;
                }
            }
            self.expect(")")?;
            return Ok(Expr::Call(base, name, args));
        }
        Ok(Expr::Member(base, name))
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        match self.peek().cloned() {
            Some(Token::Symbol("(")) => {
                self.at += 1;
                let inner = self.expression(0)?;
                self.expect(")")?;
                Ok(inner)
            }
            Some(Token::Symbol("{")) => {
                self.at += 1;
                self.expect("}")?;
                Ok(Expr::Empty)
            }
            Some(Token::String(s)) => {
                self.at += 1;
                Ok(Expr::Literal(Literal::String(s)))
            }
            Some(Token::Number(n)) => {
                self.at += 1;
                // A number followed by a unit is a quantity.
                let unit = match self.peek() {
                    Some(Token::String(u)) => Some(u.clone()),
                    Some(Token::Identifier(u)) if is_calendar_unit(u) => Some(u.clone()),
                    _ => None,
                };
                if let Some(unit) = unit {
                    self.at += 1;
                    let value = n
                        .parse()
                        .map_err(|_| ParseError(format!("bad number {n}")))?;
                    return Ok(Expr::Literal(Literal::Quantity(value, unit)));
                }
                if n.contains('.') {
                    Ok(Expr::Literal(Literal::Decimal(
                        n.parse()
                            .map_err(|_| ParseError(format!("bad number {n}")))?,
                    )))
                } else {
                    Ok(Expr::Literal(Literal::Integer(
                        n.parse()
                            .map_err(|_| ParseError(format!("bad number {n}")))?,
                    )))
                }
            }
            Some(Token::DateTime(d)) => {
                self.at += 1;
                Ok(Expr::Literal(Literal::DateTime(d)))
            }
            Some(Token::Time(t)) => {
                self.at += 1;
                Ok(Expr::Literal(Literal::Time(t)))
            }
            Some(Token::Variable(v)) => {
                self.at += 1;
                Ok(Expr::Variable(v))
            }
            Some(Token::Special(s)) => {
                self.at += 1;
                match s.as_str() {
                    "$this" => Ok(Expr::This),
                    "$index" => Ok(Expr::Index),
                    "$total" => Ok(Expr::Total),
                    other => Err(ParseError(format!("unknown {other}"))),
                }
            }
            Some(Token::Identifier(word)) if word == "true" || word == "false" => {
                self.at += 1;
                Ok(Expr::Literal(Literal::Bool(word == "true")))
            }
            Some(Token::Identifier(_) | Token::Delimited(_)) => self.invocation(None),
            other => Err(ParseError(format!("unexpected {other:?}"))),
        }
    }
}

fn is_calendar_unit(word: &str) -> bool {
    matches!(
        word,
        "year"
            | "years"
            | "month"
            | "months"
            | "week"
            | "weeks"
            | "day"
            | "days"
            | "hour"
            | "hours"
            | "minute"
            | "minutes"
            | "second"
            | "seconds"
            | "millisecond"
            | "milliseconds"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_the_specification() {
        let parsed = parse("a or b and c implies d").expect("parses");
        let Expr::Binary(Op::Implies, left, _) = parsed else {
            panic!("implies binds loosest: {parsed:?}");
        };
        let Expr::Binary(Op::Or, _, right) = *left else {
            panic!("or under implies");
        };
        assert!(matches!(*right, Expr::Binary(Op::And, _, _)));
        assert!(matches!(
            parse("x.count() + 1 > 2").expect("parses"),
            Expr::Binary(Op::Gt, _, _)
        ));
    }

    #[test]
    fn every_constraint_form_in_use_parses() {
        for text in [
            "hasValue() or (children().count() > id.count())",
            "start.hasValue().not() or end.hasValue().not() or (start <= end)",
            "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
            "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical))) or descendants().where(reference = '#').exists()).not()).trace('unmatched', id).empty()",
            "text.`div`.exists()",
            "(code.exists() or value.empty()) and (system.empty() or system = %ucum)",
            "offset.empty() or (when.exists() and when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse())",
            "iif(max != '*', min <= max.toInteger())",
            "x is Organization and y.as(canonical).exists() and -1 < 2 and @2020-01-01 < @2021",
        ] {
            parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn broken_text_is_an_error() {
        for text in ["a.", "(a", "a ==", "'open", "a.b(", "@", "a b"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
