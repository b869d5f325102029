//! The IAM-style wildcard matcher used for resources, actions and `...Like` conditions.
//!
//! `*` matches any run of characters (including `/`, so `topic/a/*` covers `a/b/c`), `?` matches
//! exactly one character; everything else, including the MQTT wildcards `+` and `#`, is literal
//! (iot-policy-variables, pub-sub-policy).

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A character matched literally.
    Lit(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Compiles a plain pattern where `*` and `?` are wildcards and nothing else is special.
pub(crate) fn compile(pattern: &str) -> Vec<Tok> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            other => Tok::Lit(other),
        })
        .collect()
}

/// Renders tokens back to text (`Star` → `*`, `One` → `?`): what `StringEquals` compares.
pub(crate) fn to_text(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

fn char_eq(a: char, b: char, ignore_case: bool) -> bool {
    a == b || (ignore_case && a.to_lowercase().eq(b.to_lowercase()))
}

/// Matches `text` against `pat`. Iterative with single-star backtracking: O(|pat|·|text|) worst
/// case, no recursion, so adversarial input cannot blow the stack.
pub(crate) fn matches(pat: &[Tok], text: &str, ignore_case: bool) -> bool {
    let t: Vec<char> = text.chars().collect();
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < t.len() {
        match pat.get(p) {
            Some(Tok::Star) => {
                star = Some((p, i));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                i += 1;
            }
            Some(Tok::Lit(c)) if char_eq(*c, t[i], ignore_case) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat[p.min(pat.len())..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        matches(&compile(p), t, false)
    }

    #[test]
    fn star_crosses_levels_and_mqtt_wildcards_are_literal() {
        assert!(m("a/*", "a/b/c"));
        assert!(m("a/*", "a/"));
        assert!(!m("a/*", "a"));
        assert!(!m("a/#", "a/b"));
        assert!(m("a/#", "a/#"));
        assert!(!m("a/+/c", "a/b/c"));
        assert!(m("*", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(matches(&compile("IOT:*"), "iot:Publish", true));
        assert!(!matches(&compile("IOT:*"), "iot:Publish", false));
    }

    #[test]
    fn pathological_pattern_terminates() {
        let p = "*a".repeat(500) + "b";
        let t = "a".repeat(2000);
        assert!(!m(&p, &t));
    }
}
