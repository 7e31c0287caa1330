//! Invite title and description templates: `{recipient.firstName}` and
//! friends. Unknown tokens are left as written so a typo shows in the invite
//! preview instead of silently vanishing; [`unknown_tokens`] lets config
//! loading reject them up front.

/// The tokens a template may use.
pub const TOKENS: &[&str] = &[
    "recipient.firstName",
    "recipient.lastName",
    "recipient.fullName",
    "recipient.email",
    "owner.name",
    "campaign.name",
    "meeting.minutes",
];

/// Values for one booking.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub owner_name: String,
    pub campaign_name: String,
    pub minutes: u32,
}

impl Values {
    fn get(&self, token: &str) -> Option<String> {
        Some(match token {
            "recipient.firstName" => self.first_name.clone(),
            "recipient.lastName" => self.last_name.clone(),
            "recipient.fullName" => format!("{} {}", self.first_name, self.last_name)
                .trim()
                .to_string(),
            "recipient.email" => self.email.clone(),
            "owner.name" => self.owner_name.clone(),
            "campaign.name" => self.campaign_name.clone(),
            "meeting.minutes" => self.minutes.to_string(),
            _ => return None,
        })
    }
}

/// Replaces every known `{token}`.
pub fn render(template: &str, values: &Values) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => match values.get(&after[..close]) {
                Some(v) => {
                    out.push_str(&v);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            },
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Tokens in `template` that [`render`] does not know.
pub fn unknown_tokens(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let token = &after[..close];
        if !TOKENS.contains(&token) {
            found.push(token.to_string());
        }
        rest = &after[close + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_tokens_and_keeps_unknown_ones() {
        let v = Values {
            first_name: "Jane".into(),
            owner_name: "Alex".into(),
            minutes: 30,
            ..Default::default()
        };
        assert_eq!(
            render(
                "{owner.name} <> {recipient.firstName} ({meeting.minutes} min) {oops} {",
                &v
            ),
            "Alex <> Jane (30 min) {oops} {"
        );
        assert_eq!(unknown_tokens("{recipient.firstName} {oops}"), vec!["oops"]);
    }
}
