//! Text → meaning. Pure functions over one final transcript.
//!
//! Every module here takes what speech-to-text produced (any case, with or
//! without punctuation, with fillers) and returns a typed meaning or nothing.
//! They never guess silently where the caller can be asked instead.

pub mod choice;
pub mod cli;
pub mod email;
pub mod intent;
pub mod timezone;
pub mod when;
pub mod yes_no;

/// Longest utterance looked at; a transcript longer than this is cut. Real
/// turns are far shorter, and the bound keeps every parser linear and small.
pub const MAX_UTTERANCE_BYTES: usize = 2048;

/// Words that carry no meaning in any of the parsers.
const FILLERS: &[&str] = &["um", "umm", "uh", "uhh", "er", "erm", "hmm", "mm", "ah"];

/// Lowercases, keeps letters, digits and the symbols `@ . _ - + : /'`, and
/// splits on everything else. Fillers are dropped. A trailing `.` (end of a
/// sentence) is dropped from a word; a lone `.` stays (it may be "dot").
pub fn words(text: &str) -> Vec<String> {
    let text = clip(text);
    let mut out = Vec::new();
    for raw in text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '!' | '?' | ';' | '"' | '(' | ')'))
    {
        let mut lower = String::with_capacity(raw.len());
        for c in raw.chars() {
            if c.is_ascii() {
                if c.is_ascii_alphanumeric()
                    || matches!(c, '@' | '.' | '_' | '-' | '+' | ':' | '/' | '\'')
                {
                    lower.push(c.to_ascii_lowercase());
                }
            } else if c.is_alphanumeric() {
                lower.extend(c.to_lowercase());
            }
        }
        let trimmed = if lower.len() > 1 {
            lower.trim_end_matches('.')
        } else {
            &lower
        };
        let trimmed = trimmed.trim_matches('\'');
        if trimmed.is_empty() || FILLERS.contains(&trimmed) {
            continue;
        }
        if trimmed.len() == lower.len() {
            out.push(lower);
        } else {
            out.push(trimmed.to_string());
        }
    }
    out
}

/// Splits a transcript into clauses at punctuation, so the last clause of
/// "yeah... actually no" can decide.
pub fn clauses(text: &str) -> Vec<Vec<String>> {
    clip(text)
        .split([',', '.', '!', '?', ';', '…'])
        .map(words)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Cuts to `MAX_UTTERANCE_BYTES` on a character boundary.
fn clip(text: &str) -> &str {
    if text.len() <= MAX_UTTERANCE_BYTES {
        return text;
    }
    let mut end = MAX_UTTERANCE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether `needle` (space-separated words) appears as consecutive words.
pub fn has_phrase(words: &[String], needle: &str) -> bool {
    find_phrase(words, needle).is_some()
}

/// Index of the first word of `needle` in `words`.
pub fn find_phrase(words: &[String], needle: &str) -> Option<usize> {
    let len = needle.split(' ').count();
    if len > words.len() {
        return None;
    }
    let first = needle.split(' ').next()?;
    (0..=words.len() - len)
        .find(|&i| words[i] == first && needle.split(' ').zip(&words[i..]).all(|(p, w)| w == p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_fillers_and_sentence_dots() {
        assert_eq!(
            words("Um, yes. That's FINE!"),
            vec!["yes", "that's", "fine"]
        );
        assert_eq!(words("john . doe"), vec!["john", ".", "doe"]);
    }

    #[test]
    fn long_input_is_clipped_on_a_char_boundary() {
        let s = "é".repeat(5000);
        assert!(words(&s).concat().len() <= MAX_UTTERANCE_BYTES);
    }
}

#[cfg(test)]
mod props;
