//! `.mseignore`: which entries of the code directory are not shipped.
//!
//! The semantics are those of the original client (mse-cli 1.3), not gitignore's:
//!
//! * The file is `<code dir>/.mseignore`, read as UTF-8 text and split into lines the way
//!   Python's `str.splitlines` does. A line that is blank or whose stripped form starts with `#`
//!   is skipped; every other line is used **unstripped** (trailing spaces are part of the
//!   pattern). Duplicates collapse.
//! * Each pattern is matched with Python `fnmatch` (case-sensitive, as on POSIX) against the
//!   **basename** of every file and directory, in every directory of the tree. A matching
//!   directory is skipped with everything under it. There is no anchoring, no negation, no `**`.
//! * Because a basename never contains `/`, a pattern with a trailing `/` (`.vscode/`) never
//!   matches anything. The original behaves the same way; we keep it so that the same
//!   `.mseignore` ships the same files (and so the same measurement) with both clients.
//!
//! Hidden entries (a name starting with `.`) are never shipped at all, see
//! [`crate::code::encrypt_tree`].

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use crate::{Error, Result};

/// Name of the ignore file inside the code directory.
pub const FILE_NAME: &str = ".mseignore";

/// Read `<code_dir>/.mseignore`. A missing file means no patterns.
pub fn read_mseignore(code_dir: &Path) -> Result<Vec<String>> {
    let path = code_dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::IgnoreFile {
        path,
        reason: "not valid UTF-8 text",
    })?;
    Ok(parse_mseignore(&text))
}

/// The patterns of an `.mseignore` text, sorted and without duplicates.
pub fn parse_mseignore(text: &str) -> Vec<String> {
    let mut patterns: Vec<String> = split_lines(text)
        .filter(|line| {
            let stripped = line.trim_matches(is_python_space);
            !stripped.is_empty() && !stripped.starts_with('#')
        })
        .map(str::to_owned)
        .collect();
    patterns.sort();
    patterns.dedup();
    patterns
}

/// Python `str.splitlines()` without keepends.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.char_indices().find(|&(_, c)| is_line_break(c)) {
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
            Some((at, c)) => {
                let line = &rest[..at];
                let mut next = at + c.len_utf8();
                if c == '\r' && rest[next..].starts_with('\n') {
                    next += 1;
                }
                rest = &rest[next..];
                Some(line)
            }
        }
    })
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\x0b'
            | '\x0c'
            | '\x1c'
            | '\x1d'
            | '\x1e'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Python `str.isspace()`: Unicode White_Space plus the four ASCII separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// A compiled set of `.mseignore` patterns.
#[derive(Clone, Debug, Default)]
pub struct IgnoreSet {
    patterns: Vec<Pattern>,
}

impl IgnoreSet {
    /// Compile patterns (never fails: every string is a valid fnmatch pattern).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        IgnoreSet {
            patterns: patterns.iter().map(|p| Pattern::new(p.as_ref())).collect(),
        }
    }

    /// Whether an entry with this basename is skipped.
    pub fn is_ignored(&self, basename: &OsStr) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let name = code_points(basename);
        self.patterns.iter().any(|p| p.matches_code_points(&name))
    }
}

/// Python `fnmatch.fnmatchcase(name, pattern)`.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

/// One compiled fnmatch pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug)]
enum Token {
    Literal(u32),
    AnyChar,
    AnyString,
    Class {
        negated: bool,
        items: Vec<(u32, u32)>,
    },
    Nothing,
}

impl Pattern {
    /// Compile with the rules of Python 3.11 `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`;
    /// an unclosed `[` is a literal; reversed ranges are dropped; there is no escape character.
    pub fn new(pattern: &str) -> Self {
        let pat: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&c) = pat.get(i) {
            i += 1;
            match c {
                '*' => {
                    if !matches!(tokens.last(), Some(Token::AnyString)) {
                        tokens.push(Token::AnyString);
                    }
                }
                '?' => tokens.push(Token::AnyChar),
                '[' => match parse_class(&pat, i) {
                    Some((token, next)) => {
                        tokens.push(token);
                        i = next;
                    }
                    None => tokens.push(Token::Literal(u32::from('['))),
                },
                c => tokens.push(Token::Literal(u32::from(c))),
            }
        }
        Pattern { tokens }
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<u32> = name.chars().map(u32::from).collect();
        self.matches_code_points(&name)
    }

    /// Iterative wildcard matching: each non-`*` token consumes exactly one code point, so
    /// backtracking to the last `*` is enough and the cost stays O(len(name) × len(pattern)).
    fn matches_code_points(&self, name: &[u32]) -> bool {
        let (mut t, mut n) = (0, 0);
        let mut resume: Option<(usize, usize)> = None;
        loop {
            match (self.tokens.get(t), name.get(n)) {
                (Some(Token::AnyString), _) => {
                    resume = Some((t, n));
                    t += 1;
                    continue;
                }
                (Some(token), Some(&c)) if token.matches_one(c) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last `*` swallow one more code point, if there is one.
            match resume {
                Some((star, from)) if from < name.len() => {
                    resume = Some((star, from + 1));
                    t = star + 1;
                    n = from + 1;
                }
                _ => return false,
            }
        }
    }
}

impl Token {
    fn matches_one(&self, c: u32) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => true,
            Token::Class { negated, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Token::Nothing | Token::AnyString => false,
        }
    }
}

/// Parse a bracket expression whose `[` is just before `pat[start]`. Returns the token and the
/// index after the closing `]`, or `None` when the bracket is not closed (then `[` is a literal).
fn parse_class(pat: &[char], start: usize) -> Option<(Token, usize)> {
    let mut j = start;
    if pat.get(j) == Some(&'!') {
        j += 1;
    }
    if pat.get(j) == Some(&']') {
        j += 1;
    }
    while pat.get(j).is_some_and(|&c| c != ']') {
        j += 1;
    }
    if j >= pat.len() {
        return None;
    }
    let stuff = pat.get(start..j)?;

    // Split into chunks at the hyphens that make ranges, as CPython does: the character right
    // after `[` (or `[!`) and the one right after a range's end never start a range.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    if !stuff.contains(&'-') {
        chunks.push(stuff.to_vec());
    } else {
        let mut from = start;
        let mut k = if stuff.first() == Some(&'!') {
            start + 2
        } else {
            start + 1
        };
        while let Some(h) = (k..j).find(|&x| pat.get(x) == Some(&'-')) {
            chunks.push(pat.get(from..h)?.to_vec());
            from = h + 1;
            k = h + 3;
        }
        let tail = pat.get(from..j)?;
        if tail.is_empty() {
            chunks.last_mut()?.push('-');
        } else {
            chunks.push(tail.to_vec());
        }
        // Drop reversed ranges (`z-a`) together with both their ends.
        for k in (1..chunks.len()).rev() {
            let (Some(&end), Some(&first)) = (chunks[k - 1].last(), chunks[k].first()) else {
                continue;
            };
            if end > first {
                let next = chunks.remove(k);
                chunks[k - 1].pop();
                chunks[k - 1].extend_from_slice(next.get(1..).unwrap_or_default());
            }
        }
    }

    let flat_len: usize =
        chunks.iter().map(Vec::len).sum::<usize>() + chunks.len().saturating_sub(1);
    let token = if flat_len == 0 {
        Token::Nothing
    } else if flat_len == 1 && chunks.first().is_some_and(|c| c.as_slice() == ['!']) {
        Token::AnyChar
    } else {
        let negated = chunks.first().and_then(|c| c.first()) == Some(&'!');
        if negated && let Some(first) = chunks.first_mut() {
            first.remove(0);
        }
        let mut items = Vec::new();
        for (idx, chunk) in chunks.iter().enumerate() {
            let mut chars = chunk.as_slice();
            if idx > 0 {
                // A range joins the previous chunk's last character and this chunk's first.
                match (chunks[idx - 1].last(), chars.split_first()) {
                    (Some(&lo), Some((&hi, rest))) => {
                        items.push((u32::from(lo), u32::from(hi)));
                        // `lo` was already added as a literal: harmless, it is inside the range.
                        chars = rest;
                    }
                    _ => items.push((u32::from('-'), u32::from('-'))),
                }
            }
            items.extend(chars.iter().map(|&c| (u32::from(c), u32::from(c))));
        }
        Token::Class { negated, items }
    };
    Some((token, j + 1))
}

/// The code points Python would see for this file name: valid UTF-8 decodes normally, and each
/// undecodable byte becomes a lone surrogate U+DC80..U+DCFF (`surrogateescape`), which only
/// wildcards and negated classes can match.
fn code_points(name: &OsStr) -> Vec<u32> {
    let bytes = name.as_encoded_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(u32::from));
        out.extend(chunk.invalid().iter().map(|&b| 0xDC00 + u32::from(b)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_wildcards() {
        assert!(fnmatch("app.pyc", "*.py[cod]"));
        assert!(!fnmatch("app.py", "*.py[cod]"));
        assert!(fnmatch("__pycache__", "__pycache__"));
        assert!(fnmatch(".git", ".git*"));
        assert!(fnmatch(".gitignore", ".git*"));
        assert!(fnmatch("a", "?"));
        assert!(!fnmatch("", "?"));
        assert!(fnmatch("", "*"));
        assert!(fnmatch("abc", "a**c"));
        assert!(!fnmatch("App.py", "app.py"), "case-sensitive");
    }

    #[test]
    fn trailing_slash_never_matches() {
        for name in ["__pycache__", ".vscode", "x"] {
            assert!(!fnmatch(name, &format!("{name}/")));
        }
        assert!(!fnmatch("anything", "*/"));
    }

    #[test]
    fn brackets() {
        assert!(fnmatch("[", "["), "unclosed bracket is a literal");
        assert!(fnmatch("[ab", "[ab"));
        assert!(fnmatch("]", "[]]"));
        assert!(fnmatch("a", "[!]]"));
        assert!(!fnmatch("]", "[!]]"));
        assert!(fnmatch("-", "[a-]"));
        assert!(fnmatch("-", "[-a]"));
        assert!(fnmatch("m", "[a-z]"));
        assert!(!fnmatch("m", "[z-a]"), "reversed range matches nothing");
        assert!(fnmatch("\\", "[\\]"), "backslash is literal");
        assert!(fnmatch("[!]", "[!]"), "`[!]` is not closed: all literals");
        assert!(fnmatch("x", "[!b-a]"), "negation of nothing: any char");
    }

    #[test]
    fn mseignore_parsing() {
        let text =
            "# comment\n\n  # indented comment\n*.pyc\r\nsecrets.json \n__pycache__/\x0cx\r*.pyc\n";
        assert_eq!(
            parse_mseignore(text),
            vec!["*.pyc", "__pycache__/", "secrets.json ", "x"]
        );
    }

    #[test]
    fn undecodable_names_match_only_wildcards() {
        use std::os::unix::ffi::OsStrExt;
        let set = IgnoreSet::new(&["a?"]);
        assert!(set.is_ignored(OsStr::from_bytes(b"a\xff")));
        assert!(!IgnoreSet::new(&["a\u{ff}"]).is_ignored(OsStr::from_bytes(b"a\xff")));
    }
}
