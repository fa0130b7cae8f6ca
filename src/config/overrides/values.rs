//! The value side of an override, as Hydra reads it: a YAML value (`10`, `auto`, `[1, 2]`,
//! `{kind: heun}`, `null`), a quoted string (`'a,b'`), an unquoted string with `\,`-style
//! escapes, a sweep list `a,b,c`, or one of the sweep functions `range(...)`, `choice(...)`
//! and `glob(...)`. Other Hydra functions are refused with what to write instead.

use figment::value::Value;

use super::{OverrideValue, MAX_TRIALS};
use crate::config::parse_scalar;

/// Why a value cannot be read, and what to write instead.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: String,
    pub fix: String,
}

impl Refusal {
    pub fn new(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Refusal {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Characters a backslash escapes outside quotes (Hydra's list).
const ESCAPABLE: &str = "\\,()[]{}:=' \"\t";

/// One comma-separated piece of a value, as typed (escapes kept) and trimmed.
struct Piece<'a> {
    raw: &'a str,
}

impl Piece<'_> {
    fn has_escape(&self) -> bool {
        let mut chars = self.raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek().is_some_and(|n| ESCAPABLE.contains(*n)) {
                return true;
            }
        }
        false
    }
}

/// Splits on commas outside brackets, braces, parentheses and quotes, and not escaped.
fn split_top_level(raw: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\\') if chars.peek().is_some_and(|(_, n)| ESCAPABLE.contains(*n)) => {
                chars.next();
            }
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                pieces.push(Piece {
                    raw: raw[start..i].trim(),
                });
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(Piece {
        raw: raw[start..].trim(),
    });
    pieces
}

/// Removes the escapes of an unquoted string.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&n) if c == '\\' && ESCAPABLE.contains(n) => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// `'text'` or `"text"` as a whole: the text, with `\'`, `\"` and `\\` unescaped.
fn quoted(raw: &str) -> Option<String> {
    let q = raw.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = raw.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) if n == q || n == '\\' => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else if c == q {
            return None; // `'a' + 'b'`: not one quoted string
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `name(args)` as a whole (the parenthesis after the name closes at the end): the name and
/// the text between the parentheses.
fn call(raw: &str) -> Option<(&str, &str)> {
    let open = raw.find('(')?;
    let name = &raw[..open];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        || !raw.ends_with(')')
    {
        return None;
    }
    let inner = &raw[open + 1..raw.len() - 1];
    // The parentheses balance inside, so the last one closes the first.
    let mut depth = 0i32;
    let mut quote = None;
    for c in inner.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some((name, inner))
}

/// Hydra writes dictionaries `{a:1}`; YAML needs a space after the colon (`{a: 1}`), or
/// reads `a:1` as one string. Adds that space after a plain key inside braces.
fn hydra_flow_keys(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    let mut quote: Option<char> = None;
    let mut braces = 0i32;
    let mut at_key = false;
    let mut key_len = 0usize;
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => {
                quote = Some(c);
                at_key = false;
            }
            (None, '{') => {
                braces += 1;
                at_key = true;
                key_len = 0;
            }
            (None, '}') => braces -= 1,
            (None, ',') if braces > 0 => {
                at_key = true;
                key_len = 0;
            }
            (None, ' ') if at_key && key_len == 0 => {}
            (None, ':') if at_key && key_len > 0 => {
                if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) {
                    out.push(' ');
                }
                at_key = false;
            }
            (None, c) if at_key && (c.is_alphanumeric() || c == '_' || c == '-' || c == '.') => {
                key_len += 1;
            }
            _ => at_key = false,
        }
    }
    out
}

/// One value (an element of a sweep list or of `choice`).
fn element(piece: &Piece) -> Result<Value, Refusal> {
    if let Some(text) = quoted(piece.raw) {
        return Ok(Value::from(text));
    }
    if piece.has_escape() {
        return Ok(Value::from(unescape(piece.raw)));
    }
    if piece.raw.contains("${") {
        return Err(Refusal::new(
            format!(
                "`{}` is an interpolation; the runner does not resolve `${{...}}`",
                piece.raw
            ),
            "write the value itself (or quote it, '${...}', to mean that text)",
        ));
    }
    if piece.raw.contains('{') {
        return Ok(parse_scalar(&hydra_flow_keys(piece.raw)));
    }
    Ok(parse_scalar(piece.raw))
}

/// Reads the text after `=`.
pub fn parse_value(raw: &str) -> Result<OverrideValue, Refusal> {
    let pieces = split_top_level(raw);
    if pieces.len() == 1 {
        let piece = &pieces[0];
        if quoted(piece.raw).is_none() && !piece.has_escape() {
            if let Some((name, inner)) = call(piece.raw) {
                return function(piece.raw, name, inner);
            }
        }
        return Ok(OverrideValue::One(element(piece)?));
    }
    if pieces.iter().any(|p| p.raw.is_empty()) {
        return Err(Refusal::new(
            "the sweep list has an empty value",
            "write key=a,b,c with no empty entries ('' for an empty string)",
        ));
    }
    let mut values = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        if quoted(piece.raw).is_none() && !piece.has_escape() && call(piece.raw).is_some() {
            return Err(Refusal::new(
                format!("`{}` is a function inside a sweep list", piece.raw),
                "give the function alone (key=range(0,3)), or list the values (key=0,1,2,5)",
            ));
        }
        values.push(element(piece)?);
    }
    Ok(OverrideValue::Sweep(values))
}

/// `name(args)`: the sweep functions, and Hydra's others refused with advice.
fn function(raw: &str, name: &str, inner: &str) -> Result<OverrideValue, Refusal> {
    let args: Vec<Piece> = if inner.trim().is_empty() {
        Vec::new()
    } else {
        split_top_level(inner)
    };
    match name {
        "range" => {
            let args: Vec<&str> = args.iter().map(|a| a.raw).collect();
            super::range::range(raw, &args).map(OverrideValue::Sweep)
        }
        "choice" => choice(raw, &args).map(OverrideValue::Sweep),
        "glob" => glob(raw, &args),
        "interval" => Err(Refusal::new(
            format!("`{raw}` asks a sampling sweeper (Optuna, Nevergrad, Ax) for any value in an interval; the runner sweeps grids"),
            "sweep points of the interval: key=range(0.1,1,0.1) or key=0.1,0.5,0.9",
        )),
        "sort" | "shuffle" => Err(Refusal::new(
            format!("`{name}(...)` is not supported: a sweep runs in the order its values are written"),
            "write the values in the order you want, e.g. key=1,2,3 or key=range(1,4)",
        )),
        "tag" => Err(Refusal::new(
            "`tag(...)` labels a sweep for sweepers that read tags; the runner does not",
            "write the sweep without it, e.g. key=choice(a,b) or key=a,b",
        )),
        "int" | "float" | "str" | "bool" | "json_str" => Err(Refusal::new(
            format!("`{name}(...)` casts are not needed: values are read as YAML"),
            "write the value itself: 10 is a number, '10' (quoted) a string, true a boolean",
        )),
        _ => Err(Refusal::new(
            format!("`{name}(...)` is not a function the runner knows (range, choice, glob)"),
            format!("quote the value to mean that text ('{raw}'), or use range(...), choice(...) or glob(...)"),
        )),
    }
}

/// An argument `name=value` (at the top level of the argument).
fn named<'a>(piece: &Piece<'a>) -> Option<(&'a str, &'a str)> {
    let (name, value) = piece.raw.split_once('=')?;
    let name = name.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some((name, value.trim()))
}

/// `choice(a,b,c)`: a sweep over its arguments, as `a,b,c` is.
fn choice(raw: &str, args: &[Piece]) -> Result<Vec<Value>, Refusal> {
    let fix = "write choice(a,b,c) with one or more values, e.g. seed=choice(1,2)";
    if args.is_empty() || args.iter().any(|a| a.raw.is_empty()) {
        return Err(Refusal::new(format!("`{raw}` has an empty value"), fix));
    }
    args.iter()
        .map(|a| {
            if quoted(a.raw).is_none() && !a.has_escape() && call(a.raw).is_some() {
                return Err(Refusal::new(
                    format!("`{}` is a function inside choice(...)", a.raw),
                    "give the function alone (key=range(0,3)), or list the values",
                ));
            }
            element(a)
        })
        .collect()
}

/// A glob pattern argument: `pat`, `'pat'` or a list `[pat1, pat2]`.
fn patterns(text: &str) -> Vec<String> {
    let text = text.trim();
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    let items: Vec<&str> = match inner {
        Some(inner) => split_top_level(inner).into_iter().map(|p| p.raw).collect(),
        None => vec![text],
    };
    items
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| quoted(p).unwrap_or_else(|| unescape(p)))
        .collect()
}

/// `glob(include, exclude=...)`: patterns over a slot's registered plugin names (expanded
/// where the registry is known, in `crate::sweep`).
fn glob(raw: &str, args: &[Piece]) -> Result<OverrideValue, Refusal> {
    let fix = "write glob(PATTERN) or glob(PATTERN, exclude=PATTERN), patterns with * and ?, or lists [a*, b*]";
    let mut include = None;
    let mut exclude = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        match (named(arg), i) {
            (Some(("include", v)), _) => include = Some(patterns(v)),
            (Some(("exclude", v)), _) => exclude = patterns(v),
            (Some((other, _)), _) => {
                return Err(Refusal::new(
                    format!(
                        "`{raw}`: glob has no argument `{other}` (it takes include and exclude)"
                    ),
                    fix,
                ))
            }
            (None, 0) => include = Some(patterns(arg.raw)),
            (None, _) => {
                return Err(Refusal::new(
                    format!("`{raw}`: glob takes one pattern (or list) and exclude=..."),
                    fix,
                ))
            }
        }
    }
    match include {
        Some(include) if !include.is_empty() => Ok(OverrideValue::Glob { include, exclude }),
        _ => Err(Refusal::new(format!("`{raw}` has no pattern"), fix)),
    }
}

/// Whether `name` matches a shell-style pattern: `*` any run, `?` one character, `[abc]`
/// (or `[!abc]`, ranges `a-z`) one of a set, as Python's fnmatch (which Hydra uses). Linear
/// backtracking over the last `*`, so no pattern takes long.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    enum Token {
        Star,
        Any,
        Set(bool, Vec<(char, char)>),
        Char(char),
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Any),
            '[' => {
                let negate = matches!(p.get(i + 1), Some('!'));
                let first = i + 1 + negate as usize;
                // A `]` right after `[` (or `[!`) belongs to the set.
                match p.iter().skip(first + 1).position(|c| *c == ']') {
                    Some(offset) => {
                        let close = first + 1 + offset;
                        let set = &p[first..close];
                        let mut ranges = Vec::new();
                        let mut k = 0;
                        while k < set.len() {
                            if k + 2 < set.len() && set[k + 1] == '-' {
                                ranges.push((set[k], set[k + 2]));
                                k += 3;
                            } else {
                                ranges.push((set[k], set[k]));
                                k += 1;
                            }
                        }
                        tokens.push(Token::Set(negate, ranges));
                        i = close;
                    }
                    None => tokens.push(Token::Char('[')),
                }
            }
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    let n: Vec<char> = name.chars().collect();
    let one = |t: &Token, c: char| match t {
        Token::Any => true,
        Token::Char(x) => *x == c,
        Token::Set(negate, ranges) => ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *negate,
        Token::Star => false,
    };
    let (mut t, mut k) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while k < n.len() {
        if t < tokens.len() && matches!(tokens[t], Token::Star) {
            star = Some((t, k));
            t += 1;
        } else if t < tokens.len() && one(&tokens[t], n[k]) {
            t += 1;
            k += 1;
        } else if let Some((st, sk)) = star {
            t = st + 1;
            k = sk + 1;
            star = Some((st, sk + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|t| matches!(t, Token::Star))
}

/// Hydra's ranges also cap the count: checked before any value is made.
pub(super) fn too_many(raw: &str, count: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        format!("`{raw}` has {count} values, more than the {MAX_TRIALS} trials a sweep may have"),
        "sweep a shorter range (a larger step), or split the sweep into several runs",
    )
}
