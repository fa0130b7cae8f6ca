//! Reading one Rust file for the paths it names. Comments and string literals are blanked
//! first (a message that mentions `scorelab::run` imports nothing), then every path that
//! starts at `crate`, `$crate`, `scorelab`, `super` or `self` is read, grouped `use` forms
//! (`use crate::{a, b::{c, d}}`) expanded into one path each. Bare paths into a child
//! module the file declares (`mod steps;` … `steps::euler(…)`) are read too: they tie files
//! of one module together.

/// One path as written, with the line of its last segment (in a group spread over lines,
/// the line that names it) and the inline modules
/// (`mod tests { … }`) around it, which `super` and `self` are relative to.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenPath {
    pub line: usize,
    pub inline_modules: Vec<String>,
    /// As written, e.g. `["super", "noisy", "train"]`; a glob ends in `"*"`.
    pub segments: Vec<String>,
    /// Read from a `pub use` (any visibility): shown from here, not used here.
    pub reexport: bool,
}

/// What one file names: its paths and the macros it exports at the crate root
/// (`#[macro_export] macro_rules! params`), which other files reach as `crate::params!`.
#[derive(Debug, Default)]
pub struct FileScan {
    pub paths: Vec<WrittenPath>,
    pub exported_macros: Vec<String>,
}

pub fn scan(source: &str) -> FileScan {
    let tokens = tokenize(&blank_comments_and_strings(source));
    let children = declared_children(&tokens);
    let mut scan = FileScan::default();
    // Inline modules open around the current token, with the brace depth each closes at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].kind {
            Token::Open => {
                depth += 1;
                if let Some(name) = inline_module_opened_at(&tokens, i) {
                    inline.push((name, depth));
                }
            }
            Token::Close => {
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Ident(name) if name == "macro_export" => {
                if let Some(name) = next_macro_rules_name(&tokens, i) {
                    scan.exported_macros.push(name);
                }
            }
            _ => {}
        }
        if starts_path(&tokens, i, &children) {
            let mut found = Vec::new();
            let reexport = is_reexport(&tokens, i);
            i = read_tree(&tokens, i, (Vec::new(), 0), &mut found);
            let inline_modules: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
            scan.paths
                .extend(found.into_iter().map(|(segments, line)| WrittenPath {
                    line,
                    inline_modules: inline_modules.clone(),
                    segments,
                    reexport,
                }));
        } else {
            i += 1;
        }
    }
    scan
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other(char),
}

struct Located {
    line: usize,
    kind: Token,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The source with every comment and string or char literal replaced by spaces, newlines
/// kept, so tokens keep their line numbers.
fn blank_comments_and_strings(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, from: usize, to: usize| {
        for &c in &chars[from..to.min(chars.len())] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut i = 0;
    while i < chars.len() {
        let end = match (at(i), at(i + 1)) {
            ('/', '/') => (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len()),
            ('/', '*') => block_comment_end(&chars, i),
            ('"', _) => quoted_end(&chars, i + 1, '"'),
            ('\'', '\\') => quoted_end(&chars, i + 3, '\''),
            // A char literal of one character; otherwise a lifetime, kept as it is.
            ('\'', _) if at(i + 2) == '\'' => i + 3,
            ('r', _) if starts_raw_string(&chars, i) => raw_string_end(&chars, i),
            _ => {
                out.push(chars[i]);
                i += 1;
                continue;
            }
        };
        blank(&mut out, i, end);
        i = end;
    }
    out
}

/// Block comments nest in Rust.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') if depth == 1 => return i + 2,
            ('*', '/') => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index after the closing `quote`, searching from `from` and skipping escapes.
fn quoted_end(chars: &[char], from: usize, quote: char) -> usize {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// `r"…"`, `r#"…"#`, `br"…"`: an `r` that does not end a longer identifier (`bar"` is not
/// one), then hashes and a quote (`r#type` is a raw identifier, not a string).
fn starts_raw_string(chars: &[char], i: usize) -> bool {
    let before = |k: usize| i >= k && is_ident_char(chars[i - k]);
    let prefix_ok = !before(1) || (chars[i - 1] == 'b' && !before(2));
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    prefix_ok && chars.get(j) == Some(&'"')
}

fn raw_string_end(chars: &[char], start: usize) -> usize {
    let hashes = chars[start + 1..].iter().take_while(|&&c| c == '#').count();
    let mut i = start + 1 + hashes + 1;
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    chars.len()
}

fn tokenize(text: &str) -> Vec<Located> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let kind = match c {
            '\n' => {
                line += 1;
                i += 1;
                continue;
            }
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            c if is_ident_char(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                tokens.push(Located {
                    line,
                    kind: Token::Ident(chars[start..i].iter().collect()),
                });
                continue;
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                i += 1;
                Token::PathSep
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            '*' => Token::Star,
            other => Token::Other(other),
        };
        tokens.push(Located { line, kind });
        i += 1;
    }
    tokens
}

fn ident_at(tokens: &[Located], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.kind) {
        Some(Token::Ident(name)) => Some(name),
        _ => None,
    }
}

fn kind_at(tokens: &[Located], i: usize) -> Option<&Token> {
    tokens.get(i).map(|t| &t.kind)
}

/// `mod name;` at any depth: a child module in a file of its own.
fn declared_children(tokens: &[Located]) -> Vec<String> {
    (0..tokens.len())
        .filter(|&i| ident_at(tokens, i) == Some("mod"))
        .filter(|&i| kind_at(tokens, i + 2) == Some(&Token::Other(';')))
        .filter_map(|i| ident_at(tokens, i + 1).map(str::to_string))
        .collect()
}

/// The name of the inline module whose body the `{` at `i` opens (`mod tests {`).
fn inline_module_opened_at(tokens: &[Located], i: usize) -> Option<String> {
    let name = ident_at(tokens, i.checked_sub(1)?)?;
    (ident_at(tokens, i.checked_sub(2)?) == Some("mod")).then(|| name.to_string())
}

/// After `#[macro_export]`, the name in the next `macro_rules! name`.
fn next_macro_rules_name(tokens: &[Located], from: usize) -> Option<String> {
    let at = (from..tokens.len()).find(|&i| ident_at(tokens, i) == Some("macro_rules"))?;
    (kind_at(tokens, at + 1) == Some(&Token::Other('!')))
        .then(|| ident_at(tokens, at + 2).map(str::to_string))
        .flatten()
}

/// A path begins here: a root keyword (or a declared child module) followed by `::`, and
/// not itself the middle of a longer path.
fn starts_path(tokens: &[Located], i: usize, children: &[String]) -> bool {
    let Some(name) = ident_at(tokens, i) else {
        return false;
    };
    let root = matches!(name, "crate" | "scorelab" | "super" | "self")
        || children.iter().any(|c| c == name);
    let mid_path = i > 0 && kind_at(tokens, i - 1) == Some(&Token::PathSep);
    root && !mid_path && kind_at(tokens, i + 1) == Some(&Token::PathSep)
}

/// The path at `i` follows `pub use`, `pub(crate) use` or the like.
fn is_reexport(tokens: &[Located], i: usize) -> bool {
    if i < 2 || ident_at(tokens, i - 1) != Some("use") {
        return false;
    }
    let mut before_use = i - 2;
    if kind_at(tokens, before_use) == Some(&Token::Other(')')) {
        let open = (0..before_use)
            .rev()
            .find(|&j| kind_at(tokens, j) == Some(&Token::Other('(')));
        match open.and_then(|j| j.checked_sub(1)) {
            Some(j) => before_use = j,
            None => return false,
        }
    }
    ident_at(tokens, before_use) == Some("pub")
}

/// Reads one path or use tree from `i` onward, pushing each complete path onto `found`
/// (`a::{b, c::*}` gives `a::b` and `a::c::*`), each with the line of its last segment.
/// Returns the index after it.
fn read_tree(
    tokens: &[Located],
    mut i: usize,
    read: (Vec<String>, usize),
    found: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let (mut prefix, mut line) = read;
    while let Some(Token::Ident(name)) = kind_at(tokens, i) {
        prefix.push(name.clone());
        line = tokens[i].line;
        i += 1;
        if kind_at(tokens, i) != Some(&Token::PathSep) {
            found.push((prefix, line));
            return i;
        }
        i += 1;
    }
    match kind_at(tokens, i) {
        Some(Token::Star) => {
            prefix.push("*".to_string());
            found.push((prefix, tokens[i].line));
            i + 1
        }
        Some(Token::Open) => {
            i += 1;
            while let Some(kind) = kind_at(tokens, i) {
                match kind {
                    Token::Close => return i + 1,
                    Token::Ident(_) | Token::Star | Token::Open => {
                        i = read_tree(tokens, i, (prefix.clone(), line), found)
                    }
                    _ => i += 1,
                }
            }
            i
        }
        // A path cut short (`Vec::<T>` reads as `Vec`): keep what was read.
        _ => {
            found.push((prefix, line));
            i
        }
    }
}

/// Lifetimes, escaped quotes, raw strings and nested comments do not hide the code after
/// them, and code inside them is not read.
#[test]
fn the_lexer_keeps_code_and_only_code() {
    let source = "fn f<'a>(x: &'a str) -> char {\n    let _ = ('\\'', '\"', br#\"crate::x\"#, \"\\\"crate::y\");\n    \
                  /* crate::z /* crate::w */ */ crate::a::b(x); r#type::c::d\n}\nuse super::{self, e::*};\n";
    let written: Vec<(usize, String)> = scan(source)
        .paths
        .iter()
        .map(|p| (p.line, p.segments.join("::")))
        .collect();
    let expected = [(3, "crate::a::b"), (5, "super::self"), (5, "super::e::*")];
    assert_eq!(
        written,
        expected.map(|(line, path)| (line, path.to_string()))
    );
}
