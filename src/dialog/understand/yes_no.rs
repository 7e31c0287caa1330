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
    "no changes",
    "no mistakes",
    "no typos",
    "nothing to fix",
    "nothing to change",
    "no need to change",
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
    "bad",
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

/// Words that turn what follows into a condition, a correction or a
/// counter-proposal ("yeah but can we do Friday", "sure, except it's
/// spelled with a y"). What follows one of them is never consent.
const CONTRAST: &[&str] = &[
    "but", "except", "although", "though", "however", "unless", "instead", "rather",
];

/// Backchannels: a listener's "go on", which answers a yes/no question with
/// yes. Matched on the words as spoken, fillers included ("uh huh").
const BACKCHANNELS: &[&str] = &[
    "mhm", "mmhm", "mmhmm", "mm-hmm", "mm-hm", "mm hmm", "mm hm", "uh-huh", "uh huh", "uh-hu",
];

/// Saying one cannot: no, whatever else is said.
const UNAVAILABLE: &[&str] = &[
    "busy",
    "i'll pass",
    "ill pass",
    "i will pass",
    "not available",
    "unavailable",
    "tied up",
    "booked then",
    "booked up",
    "out of town",
    "out of the office",
    "out of office",
    "on vacation",
    "day off",
    "have a meeting",
    "have an appointment",
    "have something",
    "got something",
    "got a meeting",
    "prior commitment",
    "conflict",
    "that's when i",
    "thats when i",
    "pick up the kids",
    "won't be around",
    "not around",
    "can't make",
    "cannot make",
    "can't do",
    "cannot do",
];

/// Asking for another time or thing: a no to what was offered.
const PREFERS_OTHER: &[&str] = &[
    "prefer",
    "rather",
    "another time",
    "another day",
    "different time",
    "different day",
    "some other time",
    "other time",
];

/// Saying what to fix ("just change the c to a k", "right apart from the
/// domain", "you missed a letter"): a correction, so never a yes, whatever
/// word opens it. The dialog reads the fix itself from the same words.
const CORRECTS: &[&str] = &[
    "apart from",
    "other than",
    "aside from",
    "except for",
    "change",
    "switch",
    "swap",
    "replace",
    "fix",
    "drop",
    "remove",
    "missed",
    "missing",
    "forgot",
    "left out",
    "should be",
    "supposed to be",
    "needs to be",
    "has to be",
    "instead of",
    "not quite",
    "almost",
    "close but",
    "the domain is",
    "domain's",
    "it's spelled",
    "spelled with",
    "without the",
    "without an",
    "with no",
    "typo",
    "mistake",
];

/// Openings of a request ("how about Friday", "can we do Wednesday
/// instead", "is there anything Monday"): with a time after them, a
/// counter-proposal, so a no to what was offered.
const REQUESTS: &[&str] = &[
    "how about",
    "what about",
    "can we",
    "could we",
    "can it be",
    "could it be",
    "can you do",
    "could you do",
    "is there anything",
    "is there something",
    "do you have anything",
    "do you have something",
    "anything on",
    "push it",
    "move it",
    "what if",
];

/// Words that make a request name a time ("how about Friday"), unlike "can
/// we do it" or "how about that".
const TIME_WORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "tonight",
    "morning",
    "afternoon",
    "evening",
    "week",
    "weekend",
    "day",
    "hour",
    "minutes",
    "noon",
    "am",
    "pm",
    "o'clock",
    "next",
    "instead",
    "else",
    "other",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
];

/// Comparisons that point elsewhere ("works better", "anything earlier"):
/// not a yes to what was offered.
const COMPARES: &[&str] = &["better", "earlier", "later", "sooner"];

/// Phrases that answer with yes wherever they stand in the clause.
const YES_ANYWHERE: &[&str] = &[
    "that works",
    "works for me",
    "that's fine",
    "thats fine",
    "that's right",
    "thats right",
    "that's correct",
    "thats correct",
    "sounds good",
    "sounds great",
    "sounds perfect",
    "that's perfect",
    "that is correct",
    "that is right",
];

/// How many words a clause may have for a lone positive word anywhere in it
/// to count ("yes", "sure thing", "okay great"); in a longer clause the word
/// must open it ("yeah that's the one"), since "I'm in the car right now"
/// answers nothing.
const SHORT_CLAUSE: usize = 3;

/// Classifies an answer to a yes/no question. The rules, in order:
///
/// 0. Asking for another time or thing ("I'd prefer", "rather", "another
///    day", "how about Friday", "can we do 3") is no, and so is saying
///    what to fix ("change the c to a k", "right apart from the domain");
///    a comparison ("better", "earlier", "later") is unclear
///    unless it says no.
/// 1. A contrast ("but", "except", "instead"…) after something said makes
///    the answer a correction or counter-proposal: never yes. It is no when
///    something follows it, unclear when only a hedge or nothing does.
/// 2. Saying one cannot ("I'm busy then", "I'll pass") is no.
/// 3. A backchannel ("mm-hmm", "uh huh") is yes.
/// 4. Otherwise the last clause that answers decides: hedges are unclear,
///    negatives no, positives yes ("yeah… actually no" is no).
pub fn classify(text: &str) -> Answer {
    let clauses = clauses(text);
    let all: Vec<String> = clauses.concat();
    // Asking for something else is not consent, whatever word it starts
    // with ("sure, I'd prefer the morning"); a comparison alone ("Friday
    // works better") is asked about again.
    if asks_for_another_in(&all) || says_what_to_fix(&all) {
        return Answer::No;
    }
    if let Some(answer) = contrasted(&all) {
        return answer;
    }
    if UNAVAILABLE.iter().any(|p| has_phrase(&all, p)) {
        return Answer::No;
    }
    if COMPARES.iter().any(|w| all.iter().any(|x| x == w)) {
        return match verdict_of(&clauses) {
            Some(Answer::No) => Answer::No,
            _ => Answer::Unclear,
        };
    }
    if is_backchannel(text) {
        return Answer::Yes;
    }
    verdict_of(&clauses).unwrap_or(Answer::Unclear)
}

/// Rule 4: the last clause that answers.
fn verdict_of(clauses: &[Vec<String>]) -> Option<Answer> {
    clauses.iter().rev().find_map(|c| clause_verdict(c))
}

/// Rule 1: the first contrast that follows something said.
fn contrasted(words: &[String]) -> Option<Answer> {
    let at = words
        .iter()
        .enumerate()
        .position(|(i, w)| i > 0 && CONTRAST.contains(&w.as_str()))?;
    let after: Vec<String> = words[at + 1..]
        .iter()
        .filter(|w| !CONTRAST.contains(&w.as_str()))
        .cloned()
        .collect();
    if after.is_empty() {
        // "yes but…" trailing off, or "Friday instead": nothing to consent to.
        return Some(if words[..at].iter().any(|w| w == "no") {
            Answer::No
        } else {
            Answer::Unclear
        });
    }
    if HEDGES.iter().any(|h| has_phrase(&after, h)) {
        return Some(Answer::Unclear);
    }
    Some(Answer::No)
}

/// Rule 0: the caller asks for another time or thing ("I'd prefer the
/// morning", "how about Friday"). A no to what was offered, though to an
/// offer of a meeting it is a yes with a time.
pub fn asks_for_another(text: &str) -> bool {
    asks_for_another_in(&clauses(text).concat())
}

fn asks_for_another_in(words: &[String]) -> bool {
    PREFERS_OTHER.iter().any(|p| has_phrase(words, p)) || counter_proposes(words)
}

/// A request naming a time: "how about Friday", "could we do 3",
/// "can we push it to next week".
fn counter_proposes(words: &[String]) -> bool {
    REQUESTS.iter().any(|r| {
        let parts: Vec<&str> = r.split(' ').collect();
        words.windows(parts.len()).enumerate().any(|(i, w)| {
            w.iter().zip(&parts).all(|(a, b)| a == b)
                && words[i + parts.len()..].iter().any(|x| {
                    TIME_WORDS.contains(&x.as_str()) || x.chars().any(|c| c.is_ascii_digit())
                })
        })
    })
}

/// Rule 0: a fix named ("change the c"), not one denied ("no changes",
/// "nothing to fix", "no need to change it").
fn says_what_to_fix(words: &[String]) -> bool {
    CORRECTS.iter().any(|cue| {
        let parts: Vec<&str> = cue.split(' ').collect();
        words.windows(parts.len()).enumerate().any(|(i, w)| {
            let stem = |a: &str, b: &str| a == b || a.strip_suffix('s') == Some(b);
            let denied = matches!(
                i.checked_sub(1).map(|k| words[k].as_str()),
                Some("no" | "any" | "don't" | "dont")
            ) || (i >= 2 && words[i - 2..i].join(" ") == "nothing to")
                || (i >= 3 && words[i - 3..i].join(" ") == "no need to");
            w.iter().zip(&parts).all(|(a, b)| stem(a, b)) && !denied
        })
    })
}

/// Rule 3, on the words as spoken (the fillers `words` drops matter here).
fn is_backchannel(text: &str) -> bool {
    let spoken: Vec<String> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | ';'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    BACKCHANNELS.iter().any(|b| has_phrase(&spoken, b))
}

fn clause_verdict(words: &[String]) -> Option<Answer> {
    // Inside one clause, "actually" and "wait" start a new thought that
    // overrides what came before.
    let cut = words
        .iter()
        .rposition(|w| matches!(w.as_str(), "actually" | "wait"))
        .map(|i| i + 1)
        .unwrap_or(0);
    let tail = &words[cut..];
    let head = &words[..cut];
    judge(tail).or_else(|| judge(head))
}

fn judge(ws: &[String]) -> Option<Answer> {
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
    let positive_word = |w: &String| POSITIVE.contains(&w.as_str());
    // "that would be great", "that's perfect", "sounds fine".
    let called_good = ws.windows(2).any(|pair| {
        matches!(
            pair[0].as_str(),
            "be" | "that's" | "thats" | "that'd" | "thatd" | "sounds" | "seems" | "looks"
        ) && positive_word(&pair[1])
    });
    let pos = called_good
        || YES_ANYWHERE.iter().any(|p| has_phrase(ws, p))
        || POSITIVE_PHRASES.iter().any(|p| has_phrase(ws, p))
        || ws.first().is_some_and(positive_word)
        || (ws.len() <= SHORT_CLAUSE && ws.iter().any(positive_word));
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

    #[test]
    fn a_correction_or_counter_proposal_is_never_yes() {
        for t in [
            "yeah but can we do friday instead",
            "the first part is right but the domain is outlook",
            "sure, except it's spelled with a y",
            "right but it's dot org not dot com",
            "okay though I'd rather do the morning",
            "yes, but make it three thirty",
            "that works, although Thursday would be better",
            "Wednesday instead",
        ] {
            assert_ne!(classify(t), Yes, "{t}");
        }
        assert_eq!(classify("yeah but can we do friday instead"), No);
        assert_eq!(classify("sure, but maybe"), Unclear);
    }

    #[test]
    fn asking_for_something_else_is_not_consent() {
        for (t, a) in [
            ("sure, I'd prefer the morning though", No),
            ("okay but I'd rather do another day", No),
            ("yeah some other time maybe", No),
            ("yes friday works better", Unclear),
            ("anything later?", Unclear),
            ("no, later in the week", No),
        ] {
            assert_eq!(classify(t), a, "{t}");
        }
    }

    #[test]
    fn saying_one_cannot_is_no() {
        for t in [
            "I'm busy then",
            "I'll pass",
            "that's when I pick up the kids",
            "oh I have a meeting at that time",
            "yeah I'm tied up all afternoon",
        ] {
            assert_eq!(classify(t), No, "{t}");
        }
    }

    #[test]
    fn backchannels_are_yes() {
        for t in ["mm-hmm", "uh huh", "Mhm.", "uh-huh yeah", "mm hmm"] {
            assert_eq!(classify(t), Yes, "{t}");
        }
    }

    #[test]
    fn talk_about_something_else_is_unclear() {
        for t in [
            "I'm in the car right now",
            "can you hear me okay on your end, there's a lot of noise here",
            "what company did you say you were with",
        ] {
            assert_eq!(classify(t), Unclear, "{t}");
        }
    }
}
