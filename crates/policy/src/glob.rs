//! Shell-style globs (`*`, `?`, `[...]`) over interface names, with no path semantics.
//!
//! Supported: `*` (any run of characters, also empty), `?` (one character), `[...]` bracket
//! expressions with ranges (`a-z`), negation by `!` or `^` right after `[`, a `]` right after
//! `[` (or `[!`) taken literally, POSIX classes (`[[:digit:]]`), and `\` to take the next character
//! literally (also inside brackets). Characters are Unicode scalar values.
//!
//! Matching uses the classic two-pointer algorithm with one backtrack point (the last `*`), so
//! it takes at most O(pattern × name) steps, never exponential time.

use crate::error::{quote, quote_char};

/// Why a glob is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("unterminated \"[\"")]
    UnterminatedClass,
    #[error("trailing \"\\\"")]
    TrailingBackslash,
    #[error("reversed range {}-{}", quote_char(*.from), quote_char(*.to))]
    ReversedRange { from: char, to: char },
    #[error("unknown character class {}", quote(.name))]
    UnknownClass { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Alnum,
    Alpha,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Xdigit,
    /// An unknown class name in a lenient parse: matches nothing.
    Nothing,
}

impl Named {
    fn from_name(name: &str) -> Option<Named> {
        Some(match name {
            "alnum" => Named::Alnum,
            "alpha" => Named::Alpha,
            "blank" => Named::Blank,
            "cntrl" => Named::Cntrl,
            "digit" => Named::Digit,
            "graph" => Named::Graph,
            "lower" => Named::Lower,
            "print" => Named::Print,
            "punct" => Named::Punct,
            "space" => Named::Space,
            "upper" => Named::Upper,
            "xdigit" => Named::Xdigit,
            _ => return None,
        })
    }

    fn matches(self, c: char) -> bool {
        match self {
            Named::Alnum => c.is_alphanumeric(),
            Named::Alpha => c.is_alphabetic(),
            Named::Blank => c == ' ' || c == '\t',
            Named::Cntrl => c.is_control(),
            Named::Digit => c.is_ascii_digit(),
            Named::Graph => !c.is_control() && !c.is_whitespace(),
            Named::Lower => c.is_lowercase(),
            Named::Print => !c.is_control(),
            Named::Punct => c.is_ascii_punctuation(),
            Named::Space => c.is_whitespace(),
            Named::Upper => c.is_uppercase(),
            Named::Xdigit => c.is_ascii_hexdigit(),
            Named::Nothing => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Char(char),
    Range(char, char),
    Named(Named),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class { negated: bool, items: Vec<Item> },
}

impl Tok {
    /// Whether this single-character token matches `c` (`Star` never reaches here).
    fn matches_one(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::Any => true,
            Tok::Star => false,
            Tok::Class { negated, items } => {
                let hit = items.iter().any(|item| match *item {
                    Item::Char(x) => x == c,
                    Item::Range(lo, hi) => lo <= c && c <= hi,
                    Item::Named(n) => n.matches(c),
                });
                hit != *negated
            }
        }
    }
}

/// Parse a bracket expression starting just after the `[` at `start`. Returns the token and the
/// index just past the closing `]`, or None when there is no closing `]`.
fn parse_class(p: &[char], start: usize, strict: bool) -> Result<Option<(Tok, usize)>, GlobError> {
    let mut i = start;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = p.get(i) else {
            return Ok(None);
        };
        if c == ']' && !first {
            return Ok(Some((Tok::Class { negated, items }, i + 1)));
        }
        first = false;
        // POSIX class [:name:]
        if c == '[' && p.get(i + 1) == Some(&':') {
            if let Some(end) =
                (i + 2..p.len().saturating_sub(1)).find(|&k| p[k] == ':' && p[k + 1] == ']')
            {
                let name: String = p[i + 2..end].iter().collect();
                let named = match Named::from_name(&name) {
                    Some(n) => n,
                    None if strict => return Err(GlobError::UnknownClass { name }),
                    None => Named::Nothing,
                };
                items.push(Item::Named(named));
                i = end + 2;
                continue;
            }
        }
        let (lo, next) = literal_at(p, i);
        let Some(lo) = lo else {
            return Ok(None); // a '\' at the very end: no closing ']'
        };
        i = next;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            let (hi, next) = literal_at(p, i + 1);
            let Some(hi) = hi else {
                return Ok(None);
            };
            i = next;
            if hi < lo && strict {
                return Err(GlobError::ReversedRange { from: lo, to: hi });
            }
            items.push(Item::Range(lo, hi));
        } else {
            items.push(Item::Char(lo));
        }
    }
}

/// The (possibly `\`-escaped) character at `i` and the index after it; None for a lone final `\`.
fn literal_at(p: &[char], i: usize) -> (Option<char>, usize) {
    match p.get(i) {
        Some('\\') => (p.get(i + 1).copied(), i + 2),
        c => (c.copied(), i + 1),
    }
}

/// Compile a pattern. Strict: invalid constructs are errors. Lenient (as the shell does): an
/// unterminated `[` and a trailing `\` stand for themselves, a reversed range or an unknown
/// class matches nothing.
fn compile(pattern: &str, strict: bool) -> Result<Vec<Tok>, GlobError> {
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::with_capacity(p.len());
    let mut i = 0;
    while let Some(&c) = p.get(i) {
        match c {
            '*' => {
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            '[' => match parse_class(&p, i + 1, strict)? {
                Some((tok, next)) => {
                    toks.push(tok);
                    i = next;
                }
                None if strict => return Err(GlobError::UnterminatedClass),
                None => {
                    toks.push(Tok::Lit('['));
                    i += 1;
                }
            },
            '\\' => match p.get(i + 1) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 2;
                }
                None if strict => return Err(GlobError::TrailingBackslash),
                None => {
                    toks.push(Tok::Lit('\\'));
                    i += 1;
                }
            },
            _ => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(toks)
}

fn match_toks(toks: &[Tok], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    // After a '*': the token after it, and the name position it currently stands for.
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match toks.get(t) {
            Some(Tok::Star) => {
                backtrack = Some((t + 1, n));
                t += 1;
                continue;
            }
            Some(tok) if tok.matches_one(name[n]) => {
                t += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bt, bn)) => {
                // Let the last '*' swallow one more character and retry.
                t = bt;
                n = bn + 1;
                backtrack = Some((bt, bn + 1));
            }
            None => return false,
        }
    }
    toks[t.min(toks.len())..]
        .iter()
        .all(|tok| *tok == Tok::Star)
}

/// Check a glob for errors (unterminated `[`, trailing `\`, reversed range, unknown class).
pub fn validate_glob(pattern: &str) -> Result<(), GlobError> {
    compile(pattern, true).map(|_| ())
}

/// Whether `name` matches the shell-style `pattern`. Invalid constructs are taken as the shell
/// takes them (an unterminated `[` matches a literal `[`); [`validate_glob`] rejects them.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let Ok(toks) = compile(pattern, false) else {
        return false;
    };
    let name: Vec<char> = name.chars().collect();
    match_toks(&toks, &name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[track_caller]
    fn yes(p: &str, n: &str) {
        assert!(validate_glob(p).is_ok(), "{p:?} should be valid");
        assert!(glob_match(p, n), "{p:?} should match {n:?}");
    }

    #[track_caller]
    fn no(p: &str, n: &str) {
        assert!(!glob_match(p, n), "{p:?} should not match {n:?}");
    }

    #[test]
    fn literals() {
        yes("tap0", "tap0");
        no("tap0", "tap1");
        no("tap0", "tap01");
        no("tap01", "tap0");
        yes("", "");
        no("", "a");
    }

    #[test]
    fn star() {
        yes("*", "");
        yes("*", "anything");
        yes("vm-*", "vm-");
        yes("vm-*", "vm-lab1");
        no("vm-*", "vm");
        no("vm-*", "xvm-a");
        yes("*-lab", "vm-lab");
        no("*-lab", "vm-lab2");
        yes("vm-*-*", "vm-a-b");
        yes("vm-*-*", "vm---");
        no("vm-*-*", "vm-ab");
        yes("a*b*c", "abc");
        yes("a*b*c", "aXbYc");
        yes("a*b*c", "abcbc");
        no("a*b*c", "acb");
        yes("**a**", "a");
        yes("*a", "aaaa");
        no("*ab", "aaaa");
        // No path semantics: '*' crosses '/' and leading dots.
        yes("*", ".hidden");
        yes("a*c", "a/c");
    }

    #[test]
    fn question() {
        yes("tap?", "tap0");
        no("tap?", "tap");
        no("tap?", "tap10");
        yes("t??", "tab");
        yes("?", "é");
        yes("??", "€x");
        no("?", "");
    }

    #[test]
    fn classes() {
        yes("tap[0-9]", "tap7");
        no("tap[0-9]", "tapa");
        yes("tap[abc]", "tapb");
        no("tap[abc]", "tapd");
        yes("tap[!0-9]", "tapx");
        no("tap[!0-9]", "tap5");
        yes("tap[^0-9]", "tapx");
        no("tap[^0-9]", "tap5");
        yes("[a-cx-z]", "y");
        no("[a-cx-z]", "d");
        // ']' first is literal; '-' first or last is literal.
        yes("[]]", "]");
        yes("[]a]", "a");
        yes("[!]]", "a");
        no("[!]]", "]");
        yes("[-a]", "-");
        yes("[a-]", "-");
        no("[a-]", "b");
        // '!' not first is literal.
        yes("[a!]", "!");
        // Escapes inside and outside.
        yes(r"[\]]", "]");
        yes(r"[a\-z]", "-");
        no(r"[a\-z]", "b");
        yes(r"tap\*", "tap*");
        no(r"tap\*", "tapx");
        yes(r"\[x]", "[x]");
        // '*' and '?' inside brackets are literal.
        yes("[*?]", "*");
        no("[*?]", "a");
        // Multi-byte characters in ranges.
        yes("[à-ÿ]", "é");
        no("[à-ÿ]", "e");
    }

    #[test]
    fn posix_classes() {
        yes("tap[[:digit:]]", "tap3");
        no("tap[[:digit:]]", "tapx");
        yes("[[:alpha:][:digit:]_]", "_");
        yes("[![:alnum:]]", "-");
        no("[![:alnum:]]", "a");
        yes("[[:upper:]]", "Q");
        yes("[[:xdigit:]]", "f");
        no("[[:xdigit:]]", "g");
        assert_eq!(
            validate_glob("[[:bogus:]]"),
            Err(GlobError::UnknownClass {
                name: "bogus".into()
            })
        );
        no("[[:bogus:]]", "b");
    }

    #[test]
    fn invalid() {
        assert_eq!(validate_glob("vm-["), Err(GlobError::UnterminatedClass));
        assert_eq!(validate_glob("vm-[abc"), Err(GlobError::UnterminatedClass));
        assert_eq!(validate_glob("[]"), Err(GlobError::UnterminatedClass));
        assert_eq!(validate_glob("[!]"), Err(GlobError::UnterminatedClass));
        assert_eq!(validate_glob(r"[a\]"), Err(GlobError::UnterminatedClass));
        assert_eq!(validate_glob("tap\\"), Err(GlobError::TrailingBackslash));
        assert_eq!(
            validate_glob("[z-a]"),
            Err(GlobError::ReversedRange { from: 'z', to: 'a' })
        );
        // Leniently, as the shell: an unterminated '[' is literal, a trailing '\' is literal.
        assert!(glob_match("vm-[", "vm-["));
        assert!(glob_match("vm-[a", "vm-[a"));
        assert!(glob_match("tap\\", "tap\\"));
        assert!(!glob_match("[z-a]", "m"));
    }

    #[test]
    fn no_exponential_backtracking() {
        let pattern = "a*".repeat(50) + "b";
        let name = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!glob_match(&pattern, &name));
        assert!(glob_match(&pattern, &(name.clone() + "b")));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn agrees_with_a_naive_matcher() {
        // Exhaustive cross-check against a simple recursive matcher over a small alphabet.
        fn naive(p: &[char], n: &[char]) -> bool {
            match p.first() {
                None => n.is_empty(),
                Some('*') => (0..=n.len()).any(|k| naive(&p[1..], &n[k..])),
                Some('?') => !n.is_empty() && naive(&p[1..], &n[1..]),
                Some(&c) => n.first() == Some(&c) && naive(&p[1..], &n[1..]),
            }
        }
        let alphabet = ['a', 'b', '*', '?'];
        let names = ["", "a", "b", "ab", "ba", "aab", "abab", "bbba", "aaaa"];
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for p in &patterns {
                for c in alphabet {
                    next.push(format!("{p}{c}"));
                }
            }
            patterns.extend(next);
        }
        for p in &patterns {
            let pc: Vec<char> = p.chars().collect();
            for n in names {
                let nc: Vec<char> = n.chars().collect();
                assert_eq!(glob_match(p, n), naive(&pc, &nc), "{p:?} vs {n:?}");
            }
        }
    }
}
