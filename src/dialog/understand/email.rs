//! Spoken email → a valid address, or nothing.
//!
//! The utterance becomes a list of pieces (letters, digits, words, symbols,
//! the "at"), spelled letters and their homophones become letters, and the
//! address is split at the last "at". Nothing is invented: a domain without a
//! dot is completed only for well-known providers.

use super::words;
pub use crate::domain::{valid, Email};

/// One spoken unit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A spelled letter or digit (one character).
    Char(char),
    /// A whole word, said as a word.
    Word(String),
    Symbol(char),
    At,
    /// A word that introduces the address ("is", "it's", "to"): what came
    /// before it is talk, not address.
    Cut,
    /// A word that is talk in the local part ("my", "thanks") but may be a
    /// label in the domain ("my dash company").
    Noise(String),
}

/// Words after which the address starts.
const CUTS: &[&str] = &[
    "is", "it's", "its", "it", "email's", "email", "e-mail", "address", "to", "down", "use",
];

/// The spelling alphabet, with the spellings speech-to-text produces.
const NATO: &[&str] = &[
    "alpha", "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "whisky", "x-ray", "xray", "yankee", "zulu",
];

fn is_nato(w: &str) -> bool {
    NATO.contains(&w)
}

/// Letters said as words by speech-to-text.
const HOMOPHONES: &[(&str, char)] = &[
    ("ay", 'a'),
    ("bee", 'b'),
    ("be", 'b'),
    ("see", 'c'),
    ("sea", 'c'),
    ("cee", 'c'),
    ("dee", 'd'),
    ("ee", 'e'),
    ("ef", 'f'),
    ("eff", 'f'),
    ("gee", 'g'),
    ("aitch", 'h'),
    ("eye", 'i'),
    ("jay", 'j'),
    ("kay", 'k'),
    ("el", 'l'),
    ("ell", 'l'),
    ("em", 'm'),
    ("en", 'n'),
    ("oh", 'o'),
    ("pee", 'p'),
    ("cue", 'q'),
    ("queue", 'q'),
    ("are", 'r'),
    ("ar", 'r'),
    ("ess", 's'),
    ("tee", 't'),
    ("tea", 't'),
    ("you", 'u'),
    ("vee", 'v'),
    ("ex", 'x'),
    ("why", 'y'),
    ("wye", 'y'),
    ("zee", 'z'),
    ("zed", 'z'),
];

const DIGITS: &[(&str, char)] = &[
    ("zero", '0'),
    ("one", '1'),
    ("two", '2'),
    ("three", '3'),
    ("four", '4'),
    ("five", '5'),
    ("six", '6'),
    ("seven", '7'),
    ("eight", '8'),
    ("nine", '9'),
];

const TENS: &[(&str, u32)] = &[
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];

/// Providers people name without a TLD.
const PROVIDERS: &[(&str, &str)] = &[
    ("gmail", "gmail.com"),
    ("googlemail", "googlemail.com"),
    ("yahoo", "yahoo.com"),
    ("hotmail", "hotmail.com"),
    ("outlook", "outlook.com"),
    ("icloud", "icloud.com"),
    ("aol", "aol.com"),
    ("protonmail", "protonmail.com"),
    ("msn", "msn.com"),
    ("live", "live.com"),
    ("comcast", "comcast.net"),
];

/// Words that mean nothing inside a dictated address.
const NOISE: &[&str] = &[
    "my",
    "email",
    "e-mail",
    "address",
    "is",
    "it's",
    "its",
    "it",
    "that's",
    "thats",
    "sure",
    "yeah",
    "yes",
    "ok",
    "okay",
    "so",
    "the",
    "thanks",
    "thank",
    "please",
    "all",
    "word",
    "lowercase",
    "lower",
    "case",
    "no",
    "spaces",
    "small",
    "letters",
    "that",
    "just",
    "and",
    "then",
];

/// Says mid-utterance that what came before was wrong ("sam at hotmail no
/// wait outlook dot com"): only what follows the last of them counts.
const SELF_CORRECTIONS: &[&str] = &[
    "no wait",
    "wait no",
    "sorry i mean",
    "sorry i meant",
    "i mean",
    "i meant",
    "actually make that",
    "make that",
    "no sorry",
    "sorry no",
    "or rather",
    "let me correct that",
    "scratch that",
    "strike that",
    "correction",
    "never mind",
    "no no",
    "actually",
    "oops",
    "sorry",
];

/// Words standing in for an address rather than being one.
const PLACEHOLDERS: &[&str] = &[
    "first name",
    "last name",
    "firstname",
    "lastname",
    "your name",
    "my name dot",
    "name at company",
];

/// Parses a dictated email address. Doubt gives nothing: asking again
/// costs less than reading a wrong address back with confidence.
pub fn parse(text: &str) -> Option<Email> {
    let text = respoken(text)?;
    let plain = words(&text);
    if PLACEHOLDERS.iter().any(|p| super::has_phrase(&plain, p)) {
        return None;
    }
    let Some((before, after)) = split_at_self_correction(&text) else {
        return parse_said(&text);
    };
    let after_has_at = pieces(&after).contains(&Piece::At);
    if after_has_at {
        if let Some(found) = parse_said(&after) {
            return Some(found);
        }
    }
    // The correction names only one half ("no sorry, at yahoo dot com"):
    // keep the other.
    let first = parse_said(&before)?;
    if let Some(domain) = parse_domain(&after) {
        return Email::parse(&format!("{}@{domain}", first.local()));
    }
    let local = parse_local_any(&after)?;
    Email::parse(&format!("{local}@{}", first.domain()))
}

/// Splits at the last self-correction, when one follows something said.
fn split_at_self_correction(text: &str) -> Option<(String, String)> {
    let raw: Vec<&str> = text.split_whitespace().collect();
    let norm: Vec<String> = raw
        .iter()
        .map(|t| {
            t.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect()
        })
        .collect();
    let mut found: Option<(usize, usize)> = None;
    for marker in SELF_CORRECTIONS {
        let parts: Vec<&str> = marker.split(' ').collect();
        if parts.len() > norm.len() {
            continue;
        }
        for i in (1..=norm.len() - parts.len()).rev() {
            if parts.iter().enumerate().all(|(j, p)| norm[i + j] == *p) {
                if found.is_none_or(|(at, _)| i > at) {
                    found = Some((i, parts.len()));
                }
                break;
            }
        }
    }
    let (at, len) = found?;
    Some((raw[..at].join(" "), raw[at + len..].join(" ")))
}

/// Rewrites how people and speech-to-text say addresses into the words the
/// parser reads: letters written with hyphens ("M-A-R-Y") or as capitals
/// with dots ("J.O.H.N.") apart; "anne spelled a n n e" keeps the spelling;
/// "oh" among digits is zero ("five five oh one"); "capital j" is j.
///
/// A hint about a spelling ("kris with a k", "jon without an h") keeps the
/// spelling said after it and drops the name it was about; with no
/// spelling after it, the address is not known and nothing comes out.
fn respoken(text: &str) -> Option<String> {
    let mut tokens: Vec<String> = Vec::new();
    for raw in text.split_whitespace() {
        let bare = raw.trim_end_matches([',', '?', '!']);
        let hyphened = bare.trim_end_matches('.');
        let letters_by = |sep: char, s: &str| {
            let parts: Vec<&str> = s.split(sep).collect();
            parts.len() >= 2
                && parts
                    .iter()
                    .all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphabetic))
        };
        if letters_by('-', hyphened) {
            tokens.extend(hyphened.split('-').map(str::to_string));
        } else if hyphened.chars().all(|c| c.is_ascii_uppercase() || c == '.')
            && letters_by('.', hyphened)
        {
            tokens.extend(hyphened.split('.').map(str::to_string));
        } else {
            tokens.push(raw.to_string());
        }
    }
    let lower: Vec<String> = tokens
        .iter()
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    let is_letter = |k: usize| {
        lower
            .get(k)
            .is_some_and(|w| w.chars().count() == 1 && w.chars().all(char::is_alphabetic))
    };
    let is_digit = |k: Option<usize>| {
        k.and_then(|k| lower.get(k)).is_some_and(|w| {
            (!w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
                || DIGITS.iter().any(|(name, _)| name == w)
        })
    };
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let w = lower[i].as_str();
        // "john with a capital j": case says nothing about the address.
        if w == "with"
            && matches!(lower.get(i + 1).map(String::as_str), Some("a" | "an"))
            && matches!(
                lower.get(i + 2).map(String::as_str),
                Some("capital" | "uppercase" | "big" | "small" | "lowercase")
            )
            && is_letter(i + 3)
        {
            i += 4;
            continue;
        }
        // "steph with a p h", "matt with two t's", "jon without an h":
        // a hint the name already agrees with leaves the name; "chris with
        // a k k r i s" gives way to the spelling after it; anything else
        // is a doubt, and asking again beats guessing.
        if matches!(w, "with" | "without") {
            if let Some(count @ ("a" | "an" | "the" | "one" | "two" | "double")) =
                lower.get(i + 1).map(String::as_str)
            {
                let letter = |k: usize| {
                    lower.get(k).and_then(|x| {
                        let x = x.trim_end_matches("'s");
                        let mut cs = x.chars();
                        match (cs.next(), cs.next()) {
                            (Some(c), None) if c.is_alphabetic() => Some(c),
                            _ => None,
                        }
                    })
                };
                if letter(i + 2).is_some() {
                    let run: String = (i + 2..).map_while(letter).collect();
                    let name = out.last().map(|x| x.to_lowercase()).unwrap_or_default();
                    let needle = match count {
                        "two" | "double" => run.repeat(2),
                        _ => run.clone(),
                    };
                    let agrees = !name.is_empty() && name.contains(&needle) == (w == "with");
                    if agrees {
                        i += 2 + run.chars().count();
                        continue;
                    }
                    if w == "with" && run.chars().count() >= 3 {
                        // The hint's letter, then the whole spelling.
                        out.pop();
                        i += 3;
                        continue;
                    }
                    return None;
                }
            }
        }
        // "anne spelled a n n e": the spelling replaces the word.
        if matches!(w, "spelled" | "spelt" | "spelling") && i > 0 && is_letter(i + 1) {
            out.pop();
            i += 1;
            continue;
        }
        if matches!(w, "capital" | "uppercase" | "upper") && is_letter(i + 1) {
            i += 1;
            continue;
        }
        if w == "oh" && (is_digit(i.checked_sub(1)) || is_digit(Some(i + 1))) {
            out.push("zero".into());
            i += 1;
            continue;
        }
        // "two thousand (and) five", "three hundred": the number, written.
        if matches!(w, "thousand" | "hundred") {
            let scale = if w == "thousand" { 1000 } else { 100 };
            if let Some(n) = out.last().and_then(|t| small_number(t)) {
                out.pop();
                let mut value = n * scale;
                let mut k = i + 1;
                if lower.get(k).map(String::as_str) == Some("and") {
                    k += 1;
                }
                let (rest, used) = number_at(&lower, k);
                if used > 0 && rest < scale {
                    value += rest;
                    k += used;
                } else {
                    k = i + 1;
                }
                out.push(value.to_string());
                i = k;
                continue;
            }
        }
        if w == "double"
            && matches!(lower.get(i + 1).map(String::as_str), Some("oh" | "o"))
            && (is_digit(i.checked_sub(1)) || is_digit(Some(i + 2)))
        {
            out.push("zero".into());
            out.push("zero".into());
            i += 2;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    Some(out.join(" "))
}

/// A spoken or written number from 1 to 99 in one token ("five", "12").
fn small_number(token: &str) -> Option<u32> {
    let t = token.to_lowercase();
    if let Ok(n) = t.parse::<u32>() {
        return (1..100).contains(&n).then_some(n);
    }
    DIGITS
        .iter()
        .find(|(name, _)| *name == t)
        .and_then(|(_, c)| c.to_digit(10))
        .filter(|n| *n > 0)
        .or_else(|| TENS.iter().find(|(name, _)| *name == t).map(|(_, v)| *v))
}

/// A number from 1 to 99 said as one or two words at `k` ("twenty three",
/// "five", "fourteen"): its value and how many words it took.
fn number_at(words: &[String], k: usize) -> (u32, usize) {
    let Some(first) = words.get(k).and_then(|w| small_number(w)) else {
        return (0, 0);
    };
    let second = words.get(k + 1).and_then(|w| small_number(w));
    match second {
        Some(units) if first % 10 == 0 && first >= 20 && units < 10 => (first + units, 2),
        _ => (first, 1),
    }
}

/// Parses an address as said, once respoken and without corrections.
fn parse_said(text: &str) -> Option<Email> {
    let pieces = pieces(text);
    let at = pieces.iter().rposition(|p| *p == Piece::At)?;
    // The local part starts after any talk that introduced it, or after an
    // earlier "at" ("you can reach me at bob at acme dot io").
    let start = pieces[..at]
        .iter()
        .rposition(|p| matches!(p, Piece::At | Piece::Cut))
        .map_or(0, |i| i + 1);
    // Two addresses in one breath: ask again rather than pick one.
    if start > 0
        && pieces[start - 1] == Piece::At
        && pieces[start..at].contains(&Piece::Symbol('.'))
    {
        return None;
    }
    let local = spell(&pieces[start..at], false);
    let mut domain = spell(domain_extent(&pieces[at + 1..]), true);
    if !domain.contains('.') {
        domain = PROVIDERS
            .iter()
            .find(|(name, _)| *name == domain)?
            .1
            .to_string();
    }
    Email::parse(&format!("{local}@{domain}"))
}

/// A correction to an address just read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correction {
    /// The corrected address.
    Replace(Email),
    /// "Scratch that": start the address over.
    Reset,
}

/// Reads a correction to `current`: a whole new address, "j o n not j o h n",
/// "the last part is dot org", "the domain is acme dot io", "the first part
/// is jon", a bare spelling of the part before the "at", or "scratch that".
pub fn correct(current: &Email, text: &str) -> Option<Correction> {
    let w = words(text);
    let said = |p: &str| super::has_phrase(&w, p);
    let found = parse(text);
    if found.is_none()
        && [
            "scratch that",
            "start over",
            "start again",
            "let me start again",
            "never mind that",
        ]
        .iter()
        .any(|p| said(p))
    {
        return Some(Correction::Reset);
    }
    let replace = |local: &str, domain: &str| {
        Email::parse(&format!("{local}@{domain}")).map(Correction::Replace)
    };
    if let Some(found) = found {
        return (found != *current).then_some(Correction::Replace(found));
    }
    // "change the c to a k", "swap the i for a y": one letter for another,
    // when the letter is in the address exactly once.
    match letter_swap(current, &w) {
        Some(Some((local, domain))) => return replace(&local, &domain),
        // Which of several is meant is a guess: ask again.
        Some(None) => return None,
        None => {}
    }
    // "j o n not j o h n": swap what was misheard wherever it is.
    if let Some(i) = w.iter().position(|x| x == "not").filter(|i| *i > 0) {
        let right = spell(&pieces(&w[i + 1..].join(" ")), true);
        let left_all = pieces(&w[..i].join(" "));
        let from = left_all
            .iter()
            .rposition(|p| *p == Piece::Cut)
            .map_or(0, |k| k + 1);
        let left = spell(&left_all[from..], false);
        if !left.is_empty() && !right.is_empty() {
            let (l, d) = (current.local(), current.domain());
            if l.contains(&right) {
                return replace(&l.replacen(&right, &left, 1), d);
            }
            if d.contains(&right) {
                return replace(l, &d.replacen(&right, &left, 1));
            }
        }
    }
    let after_cut = |ps: Vec<Piece>| -> Vec<Piece> {
        let from = ps
            .iter()
            .rposition(|p| matches!(p, Piece::Cut | Piece::At))
            .map_or(0, |k| k + 1);
        ps[from..].to_vec()
    };
    let ps = pieces(text);
    // "the last part is dot org", "it ends in dot co dot uk"
    let suffix_words = said("last part")
        || said("ending")
        || said("ends in")
        || said("ends with")
        || said("extension");
    let tail = after_cut(ps.clone());
    let starts_with_dot =
        tail.iter().find(|p| !matches!(p, Piece::Noise(_))) == Some(&Piece::Symbol('.'));
    if suffix_words || starts_with_dot {
        let dot = tail
            .iter()
            .position(|p| *p == Piece::Symbol('.'))
            .unwrap_or(tail.len());
        let suffix = spell(domain_extent(&tail[dot..]), true);
        if let Some(rest) = suffix.strip_prefix('.') {
            let d = current.domain();
            let base = d.rsplit_once('.').map_or(d, |(b, _)| b);
            return replace(current.local(), &format!("{base}.{rest}"));
        }
    }
    // "the domain is acme dot io", "at acme dot io"
    if said("domain")
        || said("after the at")
        || ps
            .iter()
            .find(|p| !matches!(p, Piece::Noise(_) | Piece::Cut))
            == Some(&Piece::At)
    {
        if let Some(d) = parse_domain(text) {
            return replace(current.local(), &d);
        }
    }
    // "the first part is jon", "the username is j o n"
    if said("first part") || said("before the at") || said("username") || said("user name") {
        if let Some(l) = parse_local_any(text) {
            return replace(&l, current.domain());
        }
    }
    parse_local_part(text).and_then(|l| replace(&l, current.domain()))
}

/// "change|switch|swap|replace (the) X to|with|for (a|an) Y" for single
/// letters X and Y. `None` when the words are not such a request;
/// `Some(None)` when they are but which X is meant is a guess; otherwise
/// the address with X replaced: in the part before the "at" when it is
/// there exactly once, else in the domain when it is there exactly once.
fn letter_swap(current: &Email, w: &[String]) -> Option<Option<(String, String)>> {
    let verb = w
        .iter()
        .position(|x| matches!(x.as_str(), "change" | "switch" | "swap" | "replace"))?;
    let mut k = verb + 1;
    let skip = |k: &mut usize, words: &[&str]| {
        if w.get(*k).is_some_and(|x| words.contains(&x.as_str())) {
            *k += 1;
        }
    };
    skip(&mut k, &["the", "that", "an", "a"]);
    let from = letter_of(w.get(k)?)?;
    k += 1;
    if !w
        .get(k)
        .is_some_and(|x| matches!(x.as_str(), "to" | "with" | "for" | "into"))
    {
        return None;
    }
    k += 1;
    skip(&mut k, &["a", "an", "the"]);
    let to = letter_of(w.get(k)?)?.to_string();
    let (local, domain) = (current.local(), current.domain());
    Some(
        match (local.matches(from).count(), domain.matches(from).count()) {
            (1, _) => Some((local.replacen(from, &to, 1), domain.to_string())),
            (0, 1) => Some((local.to_string(), domain.replacen(from, &to, 1))),
            _ => None,
        },
    )
}

/// The part before the "at", said or spelled ("john smith", "j o n"), for
/// when it is asked for on its own.
pub fn parse_local_any(text: &str) -> Option<String> {
    let ps = pieces(text);
    if ps.contains(&Piece::At) {
        return None;
    }
    let from = ps
        .iter()
        .rposition(|p| *p == Piece::Cut)
        .map_or(0, |k| k + 1);
    let local = spell(&ps[from..], false);
    valid(&format!("{local}@example.com")).then_some(local)
}

/// The part after the "at", asked for on its own ("gmail dot com", "acme
/// dot io", "gmail").
pub fn parse_domain(text: &str) -> Option<String> {
    let ps = pieces(text);
    let from = ps
        .iter()
        .rposition(|p| matches!(p, Piece::Cut | Piece::At))
        .map_or(0, |k| k + 1);
    let mut domain = spell(domain_extent(&ps[from..]), true);
    if !domain.contains('.') {
        domain = PROVIDERS
            .iter()
            .find(|(name, _)| *name == domain)?
            .1
            .to_string();
    }
    valid(&format!("x@{domain}")).then_some(domain)
}

/// Parses a spelled local part alone ("no, it's j o n"), for corrections.
pub fn parse_local_part(text: &str) -> Option<String> {
    let all = pieces(text);
    let start = all
        .iter()
        .rposition(|p| *p == Piece::Cut)
        .map_or(0, |i| i + 1);
    // Only a spelling counts: "no, that's still wrong" is not an address.
    // Talk around it ("no", "thanks") is fine.
    let pieces: Vec<Piece> = all[start..]
        .iter()
        .filter(|p| !matches!(p, Piece::Noise(_)))
        .cloned()
        .collect();
    if pieces.is_empty()
        || !pieces
            .iter()
            .all(|p| matches!(p, Piece::Char(_) | Piece::Symbol(_)))
    {
        return None;
    }
    let local = spell(&pieces, false);
    valid(&format!("{local}@example.com")).then_some(local)
}

/// The pieces that belong to the domain: labels joined by dots (and
/// dashes). After the last dot, one label (a word or a run of spelled
/// characters) ends the address, and anything said after it is talk.
fn domain_extent(p: &[Piece]) -> &[Piece] {
    let joins = |x: Option<&Piece>| matches!(x, Some(Piece::Symbol('.' | '-')));
    let mut seen_dot = false;
    let mut i = 0;
    while i < p.len() {
        match &p[i] {
            Piece::Symbol('.') => {
                seen_dot = true;
                i += 1;
            }
            Piece::Word(_) | Piece::Char(_) => {
                if matches!(p[i], Piece::Char(_)) {
                    while matches!(p.get(i), Some(Piece::Char(_))) {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
                if seen_dot && !joins(p.get(i)) {
                    return &p[..i];
                }
            }
            Piece::Cut | Piece::Noise(_) if seen_dot => return &p[..i],
            Piece::Noise(_) => {
                i += 1;
                if seen_dot && !joins(p.get(i)) {
                    return &p[..i];
                }
            }
            _ => i += 1,
        }
    }
    p
}

/// Turns pieces into text: words, letters and digits run together, symbols
/// become themselves, and a word immediately followed by its own spelling
/// gives way to the spelling.
fn spell(pieces: &[Piece], in_domain: bool) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < pieces.len() {
        match &pieces[i] {
            Piece::Word(w) => {
                // Talk may sit between a name and its spelling ("zoe,
                // that's z o e").
                let run: String = pieces[i + 1..]
                    .iter()
                    .skip_while(|p| matches!(p, Piece::Noise(_)) && !in_domain)
                    .map_while(|p| match p {
                        Piece::Char(c) if c.is_ascii_alphabetic() => Some(*c),
                        _ => None,
                    })
                    .collect();
                let spelled_again =
                    run.len() >= 2 && run.starts_with(w.chars().next().unwrap_or(' '));
                if !spelled_again {
                    out.push_str(w);
                }
            }
            Piece::Char(c) | Piece::Symbol(c) => out.push(*c),
            Piece::At => out.push('@'),
            Piece::Cut => {}
            Piece::Noise(w) if in_domain => out.push_str(w),
            Piece::Noise(_) => {}
        }
        i += 1;
    }
    out
}

fn pieces(text: &str) -> Vec<Piece> {
    let words = words(text);
    let mut out = Vec::new();
    let mut i = 0;
    let word = |k: usize| words.get(k).map(String::as_str);
    let mut nato_run = false;
    while i < words.len() {
        let w = words[i].as_str();
        // Two or more spelling-alphabet words in a row are a spelling
        // ("alpha lima echo x-ray"); one alone may be a name ("mike").
        if is_nato(w) && (nato_run || word(i + 1).is_some_and(is_nato)) {
            out.push(Piece::Char(w.chars().next().unwrap_or('?')));
            nato_run = true;
            i += 1;
            continue;
        }
        nato_run = false;
        // "j as in juliet", "j for john", "j like juliet"
        let spelled_by_word = |skip: usize| -> Option<(char, usize)> {
            let letter = letter_of(w)?;
            let example = word(i + skip)?;
            example.starts_with(letter).then_some((letter, skip + 1))
        };
        if word(i + 1) == Some("as") && word(i + 2) == Some("in") {
            if let Some((c, used)) = spelled_by_word(3) {
                out.push(Piece::Char(c));
                i += used;
                continue;
            }
        }
        if matches!(word(i + 1), Some("for") | Some("like")) {
            if let Some((c, used)) = spelled_by_word(2) {
                out.push(Piece::Char(c));
                i += used;
                continue;
            }
        }
        // "double l", "triple x", "double you"
        if matches!(w, "double" | "triple") && !matches!(word(i + 1), Some("you" | "u")) {
            if let Some(c) = word(i + 1).and_then(|n| letter_of(n).or_else(|| digit_of(n))) {
                let times = if w == "double" { 2 } else { 3 };
                out.extend(std::iter::repeat_n(Piece::Char(c), times));
                i += 2;
                continue;
            }
        }
        if w == "double" && matches!(word(i + 1), Some("you" | "u")) {
            out.push(Piece::Char('w'));
            i += 2;
            continue;
        }
        if w == "all" && word(i + 1) == Some("one") && word(i + 2) == Some("word") {
            i += 3;
            continue;
        }
        // "pat dot at at acme": the first of two is the word itself.
        if w == "at" && word(i + 1) == Some("at") {
            out.push(Piece::Word("at".into()));
            i += 1;
            continue;
        }
        // "that'd be …", "it would be …": "be" introduces the address here,
        // it is not the letter b.
        let introduces = matches!(
            i.checked_sub(1).and_then(word),
            Some(
                "that'd"
                    | "that'll"
                    | "it'd"
                    | "it'll"
                    | "would"
                    | "should"
                    | "will"
                    | "that's"
                    | "gonna"
            )
        );
        if CUTS.contains(&w) || (w == "be" && introduces) {
            out.push(Piece::Cut);
            i += 1;
            continue;
        }
        if matches!(w, "at" | "@") {
            out.push(Piece::At);
            i += if word(i + 1) == Some("sign") || word(i + 1) == Some("symbol") {
                2
            } else {
                1
            };
            continue;
        }
        if w == "under" && word(i + 1) == Some("score") {
            out.push(Piece::Symbol('_'));
            i += 2;
            continue;
        }
        if let Some(sym) = symbol_of(w) {
            out.push(Piece::Symbol(sym));
            i += 1;
            continue;
        }
        if let Some(n) = TENS.iter().find(|(t, _)| *t == w).map(|(_, n)| *n) {
            let mut value = n;
            let mut used = 1;
            if n >= 20 {
                if let Some(d) = word(i + 1).and_then(|u| DIGITS.iter().find(|(t, _)| *t == u)) {
                    value += d.1.to_digit(10).unwrap_or(0);
                    used = 2;
                }
            }
            out.extend(value.to_string().chars().map(Piece::Char));
            i += used;
            continue;
        }
        if let Some(d) = digit_of(w) {
            out.push(Piece::Char(d));
            i += 1;
            continue;
        }
        if w.len() == 1 && w.chars().all(|c| c.is_ascii_alphanumeric()) {
            out.push(Piece::Char(w.chars().next().unwrap_or('?')));
            i += 1;
            continue;
        }
        if let Some(c) = HOMOPHONES.iter().find(|(h, _)| *h == w).map(|(_, c)| *c) {
            // "oh" is a letter inside a spelling, noise otherwise.
            let spelling_context = out.last().is_some_and(|p| matches!(p, Piece::Char(_)))
                || word(i + 1).is_some_and(|n| n.len() == 1);
            if w != "oh" || spelling_context {
                out.push(Piece::Char(c));
            }
            i += 1;
            continue;
        }
        if NOISE.contains(&w) {
            out.push(Piece::Noise(w.to_string()));
            i += 1;
            continue;
        }
        if w.contains('@') {
            // Already written form, e.g. "john@gmail.com" from a smart STT.
            let (l, d) = w.split_once('@').unwrap_or((w, ""));
            push_written(&mut out, l);
            out.push(Piece::At);
            push_written(&mut out, d);
            i += 1;
            continue;
        }
        push_written(&mut out, w);
        i += 1;
    }
    out
}

/// Adds a written word, keeping `.`, `-`, `_` and `+` inside it as symbols.
fn push_written(out: &mut Vec<Piece>, w: &str) {
    let mut buf = String::new();
    for c in w.chars() {
        if c.is_ascii_alphanumeric() {
            buf.push(c);
        } else if "._-+".contains(c) {
            if !buf.is_empty() {
                out.push(Piece::Word(std::mem::take(&mut buf)));
            }
            out.push(Piece::Symbol(c));
        }
    }
    if !buf.is_empty() {
        out.push(Piece::Word(buf));
    }
}

fn letter_of(w: &str) -> Option<char> {
    let mut chars = w.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
        _ => HOMOPHONES.iter().find(|(h, _)| *h == w).map(|(_, c)| *c),
    }
}

fn digit_of(w: &str) -> Option<char> {
    if w.len() == 1 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.chars().next();
    }
    DIGITS.iter().find(|(d, _)| *d == w).map(|(_, c)| *c)
}

fn symbol_of(w: &str) -> Option<char> {
    Some(match w {
        "dot" | "period" | "point" | "." => '.',
        "underscore" | "underbar" | "_" => '_',
        "dash" | "hyphen" | "minus" | "-" => '-',
        "plus" | "+" => '+',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Option<String> {
        parse(t).map(|e| e.as_str().to_string())
    }

    #[test]
    fn plain_dictation() {
        assert_eq!(
            p("john dot doe at gmail dot com").as_deref(),
            Some("john.doe@gmail.com")
        );
        assert_eq!(
            p("My email is jane at example dot org, thanks").as_deref(),
            Some("jane@example.org")
        );
    }

    #[test]
    fn spelled_letters_and_homophones() {
        assert_eq!(
            p("j o h n at gmail dot com").as_deref(),
            Some("john@gmail.com")
        );
        assert_eq!(
            p("jay oh bee at g mail dot com").as_deref(),
            Some("job@gmail.com")
        );
    }

    #[test]
    fn nato_and_as_in() {
        assert_eq!(
            p("j as in juliet o as in oscar n as in november at gmail dot com").as_deref(),
            Some("jon@gmail.com")
        );
        assert_eq!(
            p("b for boy e d at yahoo").as_deref(),
            Some("bed@yahoo.com")
        );
    }

    #[test]
    fn word_then_spelling_lets_spelling_win() {
        assert_eq!(
            p("theo t h e o at livekit dot io").as_deref(),
            Some("theo@livekit.io")
        );
        assert_eq!(
            p("john j o n at gmail dot com").as_deref(),
            Some("jon@gmail.com")
        );
    }

    #[test]
    fn symbols_digits_and_doubles() {
        assert_eq!(
            p("susan underscore smith at yahoo dot co dot uk").as_deref(),
            Some("susan_smith@yahoo.co.uk")
        );
        assert_eq!(
            p("mike b two two at gmail dot com").as_deref(),
            Some("mikeb22@gmail.com")
        );
        assert_eq!(
            p("double l c at outlook dot com").as_deref(),
            Some("llc@outlook.com")
        );
        assert_eq!(
            p("dave dash b at protonmail dot com").as_deref(),
            Some("dave-b@protonmail.com")
        );
    }

    #[test]
    fn unknown_domain_without_tld_is_nothing() {
        assert_eq!(p("jane at example"), None);
        assert_eq!(p("I don't have one"), None);
    }

    #[test]
    fn local_part_correction() {
        assert_eq!(parse_local_part("no, it's j o n").as_deref(), Some("jon"));
        assert_eq!(parse_local_part("no, that's still wrong"), None);
        assert_eq!(parse_local_part("no"), None);
    }

    #[test]
    fn next_turn_corrections() {
        let cur = Email::parse("john@gmail.com").unwrap();
        let fixed = |t: &str| match correct(&cur, t) {
            Some(Correction::Replace(e)) => e.as_str().to_string(),
            Some(Correction::Reset) => "reset".into(),
            None => "-".into(),
        };
        assert_eq!(fixed("no, it's j o n not j o h n"), "jon@gmail.com");
        assert_eq!(fixed("the last part is dot org"), "john@gmail.org");
        assert_eq!(fixed("it ends in dot co dot uk"), "john@gmail.co.uk");
        assert_eq!(fixed("no the domain is acme dot io"), "john@acme.io");
        assert_eq!(fixed("it's at outlook dot com"), "john@outlook.com");
        assert_eq!(fixed("the first part is jon"), "jon@gmail.com");
        assert_eq!(fixed("scratch that"), "reset");
        assert_eq!(fixed("no it's mary at yahoo dot com"), "mary@yahoo.com");
        assert_eq!(fixed("no"), "-");
        assert_eq!(fixed("that's wrong"), "-");
    }

    #[test]
    fn halves_asked_on_their_own() {
        assert_eq!(
            parse_local_any("it's john smith").as_deref(),
            Some("johnsmith")
        );
        assert_eq!(
            parse_local_any("j o n dot d o e").as_deref(),
            Some("jon.doe")
        );
        assert_eq!(parse_domain("gmail dot com").as_deref(), Some("gmail.com"));
        assert_eq!(
            parse_domain("it's at acme dot io thanks").as_deref(),
            Some("acme.io")
        );
        assert_eq!(parse_domain("gmail").as_deref(), Some("gmail.com"));
        assert_eq!(parse_domain("acme"), None);
    }

    #[test]
    fn validator_rejects_bad_forms() {
        for bad in [
            ".a@b.co",
            "a.@b.co",
            "a..b@b.co",
            "a@b",
            "a@-b.co",
            "a@b.c",
            "a@b.c0m",
            "@b.co",
        ] {
            assert!(!valid(bad), "{bad}");
        }
        assert!(valid("o'brien+tag@mail.example.co.uk"));
    }

    #[test]
    fn redaction_hides_the_address() {
        let e = Email::parse("john.doe@gmail.com").unwrap();
        assert_eq!(e.redacted(), "j***@g***.com");
    }

    #[test]
    fn said_as_people_say_them() {
        for (said, want) in [
            (
                "sam at hotmail no wait outlook dot com",
                Some("sam@outlook.com"),
            ),
            (
                "ella at gmail dot com sorry I mean ella at icloud dot com",
                Some("ella@icloud.com"),
            ),
            (
                "it's Anne spelled a n n e at yahoo dot com",
                Some("anne@yahoo.com"),
            ),
            ("M-A-R-Y at gmail.com", Some("mary@gmail.com")),
            ("double u smith at aol dot com", Some("wsmith@aol.com")),
            (
                "tom five five oh one at gmail dot com",
                Some("tom5501@gmail.com"),
            ),
            (
                "just put down rita at gmail dot com please",
                Some("rita@gmail.com"),
            ),
            (
                "go ahead and use rita at gmail dot com",
                Some("rita@gmail.com"),
            ),
            ("capital J o e at gmail dot com", Some("joe@gmail.com")),
            (
                "bob at acme dot com actually make that bob at acme dot io",
                Some("bob@acme.io"),
            ),
            ("first name dot last name at company dot com", None),
        ] {
            assert_eq!(parse(said).as_ref().map(Email::as_str), want, "{said}");
        }
    }
}
