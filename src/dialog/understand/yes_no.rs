//! Yes / no / unclear, for the question pending.
//!
//! The last clause that says something decides ("yeah... actually no" is no).
//! Hedges ("maybe", "give me a sec") are unclear and get the question again.
//! A no that carries a time ("no, Friday would be better") is still a no; the
//! dialog reads the time separately.

use super::{clauses, has_phrase};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    Yes,
    No,
    Unclear,
}

const HEDGES: &[&str] = &[
    "maybe",
    "perhaps",
    "possibly",
    "probably",
    "not sure",
    "don't know",
    "dont know",
    "dunno",
    "no idea",
    "i guess",
    "let me check",
    "let me think",
    "give me a sec",
    "give me a second",
    "give me a minute",
    "hold on",
    "hang on",
    "one sec",
    "one second",
    "who knows",
    "might",
];

/// Phrases that contain a negative word but mean yes.
const POSITIVE_WITH_NEGATION: &[&str] = &[
    "no problem",
    "no worries",
    "not a problem",
    "why not",
    "no doubt",
    "not bad",
    "can't complain",
];

const POSITIVE: &[&str] = &[
    "yes",
    "yeah",
    "yea",
    "yep",
    "yup",
    "ya",
    "sure",
    "correct",
    "right",
    "perfect",
    "great",
    "good",
    "fine",
    "ok",
    "okay",
    "alright",
    "absolutely",
    "definitely",
    "certainly",
    "exactly",
    "affirmative",
    "works",
    "work",
    "sounds",
    "lovely",
    "excellent",
    "awesome",
    "please",
    "indeed",
    "totally",
];

const POSITIVE_PHRASES: &[&str] = &[
    "go ahead",
    "book it",
    "of course",
    "all right",
    "that's it",
    "you got it",
    "let's do it",
    "love to",
    "you bet",
];

/// "I'm good" answers an offer with a polite no.
const POLITE_NO: &[&str] = &[
    "i'm good",
    "i'm fine",
    "i'm okay",
    "i'm ok",
    "i'm all set",
    "we're good",
    "we're fine",
];

const NEGATIVE: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "never",
    "negative",
    "wrong",
    "incorrect",
    "don't",
    "dont",
    "doesn't",
    "doesnt",
    "won't",
    "wont",
    "can't",
    "cant",
    "cannot",
    "isn't",
    "isnt",
    "wasn't",
    "aren't",
    "shouldn't",
    "wouldn't",
    "couldn't",
    "nothing",
];

const NEGATIVE_PHRASES: &[&str] = &[
    "forget it",
    "no way",
    "no thanks",
    "rather not",
    "pass on",
    "stop",
    "stop",
];

/// Classifies an answer to a yes/no question.
pub fn classify(text: &str) -> Answer {
    let mut verdict = None;
    for clause in clauses(text) {
        if let Some(v) = clause_verdict(&clause) {
            verdict = Some(v);
        }
    }
    verdict.unwrap_or(Answer::Unclear)
}

fn clause_verdict(words: &[String]) -> Option<Answer> {
    // Inside one clause, "but", "actually", "wait" and "I mean" start a new
    // thought that overrides what came before.
    let cut = words
        .iter()
        .rposition(|w| matches!(w.as_str(), "but" | "actually" | "wait" | "instead"))
        .map(|i| i + 1)
        .unwrap_or(0);
    let tail = &words[cut..];
    let head = &words[..cut];
    let judge = |ws: &[String]| -> Option<Answer> {
        if ws.is_empty() {
            return None;
        }
        if HEDGES.iter().any(|h| has_phrase(ws, h)) {
            return Some(Answer::Unclear);
        }
        if POSITIVE_WITH_NEGATION.iter().any(|p| has_phrase(ws, p)) {
            return Some(Answer::Yes);
        }
        if POLITE_NO.iter().any(|p| has_phrase(ws, p)) {
            return Some(Answer::No);
        }
        let neg = ws.iter().any(|w| NEGATIVE.contains(&w.as_str()))
            || NEGATIVE_PHRASES.iter().any(|p| has_phrase(ws, p));
        let pos = ws.iter().any(|w| POSITIVE.contains(&w.as_str()))
            || POSITIVE_PHRASES.iter().any(|p| has_phrase(ws, p));
        let bare_no = ws
            .iter()
            .any(|w| matches!(w.as_str(), "no" | "nope" | "nah"));
        let bare_yes = ws
            .iter()
            .any(|w| matches!(w.as_str(), "yes" | "yeah" | "yep" | "yup"));
        match (pos, neg) {
            // "yeah no" in one breath: ask again.
            _ if bare_no && bare_yes => Some(Answer::Unclear),
            (_, true) => Some(Answer::No),
            (true, false) => Some(Answer::Yes),
            (false, false) => None,
        }
    };
    judge(tail).or_else(|| judge(head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Answer::*;

    #[test]
    fn plain_answers() {
        for (t, a) in [
            ("yes", Yes),
            ("Yeah that works.", Yes),
            ("sure, sounds good", Yes),
            ("that's right", Yes),
            ("no", No),
            ("nope", No),
            ("not right now, thanks", No),
            ("that won't work", No),
            ("not at all", No),
            ("no problem", Yes),
        ] {
            assert_eq!(classify(t), a, "{t}");
        }
    }

    #[test]
    fn last_clause_wins() {
        assert_eq!(classify("yeah... actually no"), No);
        assert_eq!(classify("no wait, yes, that's fine"), Yes);
        assert_eq!(classify("yes but actually no"), No);
    }

    #[test]
    fn hedges_are_unclear() {
        assert_eq!(classify("possibly"), Unclear);
        assert_eq!(classify("I don't know yet"), Unclear);
        assert_eq!(classify("give me a sec"), Unclear);
        assert_eq!(classify("hmm"), Unclear);
    }

    #[test]
    fn a_no_with_a_counter_proposal_is_no() {
        assert_eq!(classify("no, Friday would be better"), No);
    }
}
