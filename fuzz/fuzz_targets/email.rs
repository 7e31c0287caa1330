//! Spoken email: never panics; what comes out is valid, bounded, and parses
//! back to itself.
#![no_main]

use callbook::dialog::understand::email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(e) = email::parse(text) {
        assert!(email::valid(e.as_str()));
        assert!(e.as_str().len() <= 254);
        assert_eq!(email::parse(e.as_str()).as_ref(), Some(&e));
    }
    let current = email::Email::parse("john@gmail.com").unwrap();
    if let Some(email::Correction::Replace(e)) = email::correct(&current, text) {
        assert!(email::valid(e.as_str()));
    }
});
