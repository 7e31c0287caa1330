//! Intents that move the dialog on their own, whatever question is pending.

use super::{has_phrase, words};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// "Can we set up a call?"
    WantsMeeting,
    /// "Can we make it Wednesday instead?" (of the meeting booked on this call)
    Reschedule,
    /// "Actually, cancel that meeting."
    CancelMeeting,
    /// "Sorry, can you say that again?"
    Repeat,
    /// "Hold on a second."
    HoldOn,
}

const MEETING_NOUNS: &[&str] = &[
    "meeting",
    "call",
    "appointment",
    "demo",
    "chat",
    "consultation",
    "session",
];
const BOOK_VERBS: &[&str] = &[
    "book", "schedule", "set", "setup", "arrange", "organize", "get", "have", "like", "want",
    "need",
];
const MOVE_WORDS: &[&str] = &[
    "move",
    "reschedule",
    "change",
    "push",
    "shift",
    "switch",
    "bump",
];

/// The intent an utterance expresses, if it is one of the few that matter.
pub fn detect(text: &str) -> Option<Intent> {
    let w = words(text);
    let has = |x: &str| w.iter().any(|t| t == x);
    let any = |xs: &[&str]| xs.iter().any(|x| has(x));
    if [
        "say that again",
        "repeat that",
        "come again",
        "what was that",
        "repeat the",
        "say again",
        "didn't catch",
    ]
    .iter()
    .any(|p| has_phrase(&w, p))
        || (w.len() <= 2 && any(&["pardon", "sorry", "what"]))
    {
        return Some(Intent::Repeat);
    }
    if [
        "hold on",
        "hang on",
        "one sec",
        "one second",
        "give me a sec",
        "give me a second",
        "give me a minute",
        "just a sec",
        "just a moment",
        "one moment",
    ]
    .iter()
    .any(|p| has_phrase(&w, p))
    {
        return Some(Intent::HoldOn);
    }
    if has("cancel") && !has("don't") && !has("dont") && !has("not") {
        return Some(Intent::CancelMeeting);
    }
    if any(MOVE_WORDS) || has_phrase(&w, "make it") || (has("instead") && !any(MEETING_NOUNS)) {
        return Some(Intent::Reschedule);
    }
    if any(MEETING_NOUNS)
        && (any(BOOK_VERBS)
            || has_phrase(&w, "can we")
            || has_phrase(&w, "could we")
            || has_phrase(&w, "let's"))
    {
        return Some(Intent::WantsMeeting);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_intents() {
        assert_eq!(
            detect("Could we set up a call next week?"),
            Some(Intent::WantsMeeting)
        );
        assert_eq!(
            detect("I'd like to book a meeting"),
            Some(Intent::WantsMeeting)
        );
        assert_eq!(
            detect("can we make it Wednesday instead?"),
            Some(Intent::Reschedule)
        );
        assert_eq!(
            detect("actually can we move it to Friday"),
            Some(Intent::Reschedule)
        );
        assert_eq!(
            detect("please cancel the meeting"),
            Some(Intent::CancelMeeting)
        );
        assert_eq!(
            detect("sorry, can you say that again?"),
            Some(Intent::Repeat)
        );
        assert_eq!(detect("hold on a second"), Some(Intent::HoldOn));
        assert_eq!(detect("yes that works"), None);
    }
}
