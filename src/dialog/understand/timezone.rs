//! Timezone statements: "I'm on eastern time", "actually I'm in Salt Lake City".

use super::words;
use chrono_tz::Tz;

/// Zone names, abbreviations, regions and cities, each with its IANA zone.
/// Multi-word names are matched before single words.
const PLACES: &[(&str, &str)] = &[
    // Zone names and abbreviations.
    ("eastern", "America/New_York"),
    ("est", "America/New_York"),
    ("edt", "America/New_York"),
    ("central", "America/Chicago"),
    ("cst", "America/Chicago"),
    ("cdt", "America/Chicago"),
    ("mountain", "America/Denver"),
    ("mst", "America/Denver"),
    ("mdt", "America/Denver"),
    ("pacific", "America/Los_Angeles"),
    ("pst", "America/Los_Angeles"),
    ("pdt", "America/Los_Angeles"),
    ("alaska", "America/Anchorage"),
    ("hawaii", "Pacific/Honolulu"),
    ("atlantic", "America/Halifax"),
    ("newfoundland", "America/St_Johns"),
    ("arizona", "America/Phoenix"),
    ("saskatchewan", "America/Regina"),
    ("gmt", "Europe/London"),
    ("bst", "Europe/London"),
    ("uk", "Europe/London"),
    ("british", "Europe/London"),
    ("central european", "Europe/Paris"),
    ("cet", "Europe/Paris"),
    ("utc", "UTC"),
    // Regions, US states and Canadian provinces (the zone most of each
    // lives in; states split between zones take the larger part).
    ("east coast", "America/New_York"),
    ("west coast", "America/Los_Angeles"),
    ("midwest", "America/Chicago"),
    ("alabama", "America/Chicago"),
    ("alaska state", "America/Anchorage"),
    ("arkansas", "America/Chicago"),
    ("california", "America/Los_Angeles"),
    ("colorado", "America/Denver"),
    ("connecticut", "America/New_York"),
    ("delaware", "America/New_York"),
    ("florida", "America/New_York"),
    ("georgia", "America/New_York"),
    ("idaho", "America/Boise"),
    ("illinois", "America/Chicago"),
    ("indiana", "America/Indiana/Indianapolis"),
    ("iowa", "America/Chicago"),
    ("kansas", "America/Chicago"),
    ("kentucky", "America/New_York"),
    ("louisiana", "America/Chicago"),
    ("maine", "America/New_York"),
    ("maryland", "America/New_York"),
    ("massachusetts", "America/New_York"),
    ("michigan", "America/Detroit"),
    ("minnesota", "America/Chicago"),
    ("mississippi", "America/Chicago"),
    ("missouri", "America/Chicago"),
    ("montana", "America/Denver"),
    ("nebraska", "America/Chicago"),
    ("nevada", "America/Los_Angeles"),
    ("new hampshire", "America/New_York"),
    ("new jersey", "America/New_York"),
    ("new mexico", "America/Denver"),
    ("new york state", "America/New_York"),
    ("north carolina", "America/New_York"),
    ("north dakota", "America/Chicago"),
    ("ohio", "America/New_York"),
    ("oklahoma", "America/Chicago"),
    ("oregon", "America/Los_Angeles"),
    ("pennsylvania", "America/New_York"),
    ("rhode island", "America/New_York"),
    ("south carolina", "America/New_York"),
    ("south dakota", "America/Chicago"),
    ("tennessee", "America/Chicago"),
    ("texas", "America/Chicago"),
    ("utah", "America/Denver"),
    ("vermont", "America/New_York"),
    ("virginia", "America/New_York"),
    ("west virginia", "America/New_York"),
    ("washington state", "America/Los_Angeles"),
    ("wisconsin", "America/Chicago"),
    ("wyoming", "America/Denver"),
    ("ontario", "America/Toronto"),
    ("british columbia", "America/Vancouver"),
    ("alberta", "America/Edmonton"),
    ("manitoba", "America/Winnipeg"),
    ("nova scotia", "America/Halifax"),
    ("new brunswick", "America/Moncton"),
    // North America.
    ("new york", "America/New_York"),
    ("boston", "America/New_York"),
    ("philadelphia", "America/New_York"),
    ("washington dc", "America/New_York"),
    ("dc", "America/New_York"),
    ("atlanta", "America/New_York"),
    ("miami", "America/New_York"),
    ("orlando", "America/New_York"),
    ("tampa", "America/New_York"),
    ("charlotte", "America/New_York"),
    ("raleigh", "America/New_York"),
    ("pittsburgh", "America/New_York"),
    ("baltimore", "America/New_York"),
    ("detroit", "America/Detroit"),
    ("cleveland", "America/New_York"),
    ("columbus", "America/New_York"),
    ("cincinnati", "America/New_York"),
    ("indianapolis", "America/Indiana/Indianapolis"),
    ("toronto", "America/Toronto"),
    ("ottawa", "America/Toronto"),
    ("montreal", "America/Toronto"),
    ("quebec", "America/Toronto"),
    ("chicago", "America/Chicago"),
    ("dallas", "America/Chicago"),
    ("houston", "America/Chicago"),
    ("austin", "America/Chicago"),
    ("san antonio", "America/Chicago"),
    ("minneapolis", "America/Chicago"),
    ("st louis", "America/Chicago"),
    ("saint louis", "America/Chicago"),
    ("kansas city", "America/Chicago"),
    ("milwaukee", "America/Chicago"),
    ("nashville", "America/Chicago"),
    ("memphis", "America/Chicago"),
    ("new orleans", "America/Chicago"),
    ("oklahoma city", "America/Chicago"),
    ("omaha", "America/Chicago"),
    ("winnipeg", "America/Winnipeg"),
    ("denver", "America/Denver"),
    ("salt lake city", "America/Denver"),
    ("salt lake", "America/Denver"),
    ("boise", "America/Boise"),
    ("albuquerque", "America/Denver"),
    ("el paso", "America/Denver"),
    ("calgary", "America/Edmonton"),
    ("edmonton", "America/Edmonton"),
    ("phoenix", "America/Phoenix"),
    ("tucson", "America/Phoenix"),
    ("regina", "America/Regina"),
    ("saskatoon", "America/Regina"),
    ("los angeles", "America/Los_Angeles"),
    ("la", "America/Los_Angeles"),
    ("san francisco", "America/Los_Angeles"),
    ("san diego", "America/Los_Angeles"),
    ("san jose", "America/Los_Angeles"),
    ("sacramento", "America/Los_Angeles"),
    ("seattle", "America/Los_Angeles"),
    ("portland", "America/Los_Angeles"),
    ("las vegas", "America/Los_Angeles"),
    ("vegas", "America/Los_Angeles"),
    ("vancouver", "America/Vancouver"),
    ("anchorage", "America/Anchorage"),
    ("honolulu", "Pacific/Honolulu"),
    ("halifax", "America/Halifax"),
    ("st john's", "America/St_Johns"),
    ("mexico city", "America/Mexico_City"),
    ("puerto rico", "America/Puerto_Rico"),
    // UK and Europe.
    ("london", "Europe/London"),
    ("manchester", "Europe/London"),
    ("birmingham", "Europe/London"),
    ("edinburgh", "Europe/London"),
    ("glasgow", "Europe/London"),
    ("england", "Europe/London"),
    ("scotland", "Europe/London"),
    ("dublin", "Europe/Dublin"),
    ("ireland", "Europe/Dublin"),
    ("lisbon", "Europe/Lisbon"),
    ("portugal", "Europe/Lisbon"),
    ("paris", "Europe/Paris"),
    ("france", "Europe/Paris"),
    ("berlin", "Europe/Berlin"),
    ("munich", "Europe/Berlin"),
    ("frankfurt", "Europe/Berlin"),
    ("hamburg", "Europe/Berlin"),
    ("germany", "Europe/Berlin"),
    ("amsterdam", "Europe/Amsterdam"),
    ("brussels", "Europe/Brussels"),
    ("madrid", "Europe/Madrid"),
    ("barcelona", "Europe/Madrid"),
    ("spain", "Europe/Madrid"),
    ("rome", "Europe/Rome"),
    ("milan", "Europe/Rome"),
    ("italy", "Europe/Rome"),
    ("zurich", "Europe/Zurich"),
    ("geneva", "Europe/Zurich"),
    ("vienna", "Europe/Vienna"),
    ("prague", "Europe/Prague"),
    ("warsaw", "Europe/Warsaw"),
    ("copenhagen", "Europe/Copenhagen"),
    ("stockholm", "Europe/Stockholm"),
    ("oslo", "Europe/Oslo"),
    ("helsinki", "Europe/Helsinki"),
    ("athens", "Europe/Athens"),
    ("budapest", "Europe/Budapest"),
    ("bucharest", "Europe/Bucharest"),
    ("kyiv", "Europe/Kyiv"),
    ("istanbul", "Europe/Istanbul"),
];

/// Words that make a place a statement about the caller ("I'm in Dallas").
const FIRST_PERSON: &[&str] = &[
    "i'm", "im", "i", "we're", "were", "we", "me", "my", "our", "us",
];

/// Words after a zone name that make it one ("central time").
const ZONE_WORDS: &[&str] = &["time", "timezone", "zone", "standard", "daylight"];

/// The zone a caller states, if the utterance states one.
pub fn parse(text: &str) -> Option<Tz> {
    let w = words(text);
    // A dictated email ("central at gmail dot com") is not a statement.
    if let Some(at) = w.iter().position(|x| x == "at") {
        if w[at..].iter().any(|x| x == "dot") {
            return None;
        }
    }
    let mut best: Option<(usize, usize, &str)> = None;
    for (name, zone) in PLACES {
        let len = name.split(' ').count();
        if let Some(at) = super::find_phrase(&w, name) {
            if best.is_none_or(|(l, _, _)| len > l) {
                best = Some((len, at, zone));
            }
        }
    }
    let (len, at, zone) = best?;
    let short = w.len() <= 3;
    let zone_word = w
        .get(at + len)
        .is_some_and(|x| ZONE_WORDS.contains(&x.as_str()));
    let about_caller = w[..at].iter().any(|x| FIRST_PERSON.contains(&x.as_str()));
    (short || zone_word || about_caller).then(|| zone.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America;

    #[test]
    fn statements() {
        assert_eq!(parse("I'm on eastern time"), Some(America::New_York));
        assert_eq!(parse("central"), Some(America::Chicago));
        assert_eq!(parse("I'm in Dallas"), Some(America::Chicago));
        assert_eq!(
            parse("actually I'm out in Salt Lake City"),
            Some(America::Denver)
        );
        assert_eq!(parse("we're based in Portland"), Some(America::Los_Angeles));
        assert_eq!(parse("I'm in Paris"), Some(chrono_tz::Europe::Paris));
        assert_eq!(parse("yes that works"), None);
    }
}
