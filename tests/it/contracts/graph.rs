//! Microsoft Graph v1.0 as its CSDL metadata describes it (the calendar part
//! kept in `tests/contracts/graph/v1.0-calendar.csdl.xml`), plus the few
//! facts of the endpoints callbook calls that live in Graph's documentation
//! rather than in the metadata (which path is which entity, `calendarView`'s
//! required `startDateTime`/`endDateTime`, the `Prefer` values, the error
//! body). Bodies are held to the entity and complex types: property names
//! declared on the type or its base types, values of the declared `Edm`
//! type or enum member, `Nullable="false"` honoured, keys present in
//! answers; answers to a `$select` carry only what was selected, and
//! navigation properties only when `$expand`ed.

use super::Exchange;
use chrono::{DateTime, NaiveDate, NaiveTime};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Default)]
pub struct Structured {
    pub base: Option<String>,
    pub is_entity: bool,
    /// Structural properties: name → (type, nullable).
    pub props: Vec<(String, String, bool)>,
    /// Navigation properties: name → type.
    pub nav: Vec<(String, String)>,
    pub keys: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub types: HashMap<String, Structured>,
    /// Enum type → (members, is flags).
    pub enums: HashMap<String, (Vec<String>, bool)>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// `graph.event` → `event`; `Edm.String` stays.
fn short(ty: &str) -> String {
    ty.strip_prefix("graph.")
        .or_else(|| ty.strip_prefix("microsoft.graph."))
        .unwrap_or(ty)
        .to_string()
}

pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| parse(include_str!("../../contracts/graph/v1.0-calendar.csdl.xml")))
}

/// Reads the types of a CSDL document.
pub fn parse(xml: &str) -> Model {
    let mut model = Model::default();
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut current: Option<String> = None;
    let mut current_enum: Option<String> = None;
    loop {
        let (e, empty) = match reader.read_event().expect("the kept CSDL is XML") {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.local_name().as_ref() {
                    b"EntityType" | b"ComplexType" => current = None,
                    b"EnumType" => current_enum = None,
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = attr(&e, "Name");
        match e.local_name().as_ref() {
            kind @ (b"EntityType" | b"ComplexType") => {
                let name = name.unwrap_or_default();
                model.types.insert(
                    name.clone(),
                    Structured {
                        base: attr(&e, "BaseType").map(|b| short(&b)),
                        is_entity: kind == b"EntityType",
                        ..Default::default()
                    },
                );
                if !empty {
                    current = Some(name);
                }
            }
            b"EnumType" => {
                let name = name.unwrap_or_default();
                let flags = attr(&e, "IsFlags").as_deref() == Some("true");
                model.enums.insert(name.clone(), (Vec::new(), flags));
                if !empty {
                    current_enum = Some(name);
                }
            }
            b"Member" => {
                if let (Some(en), Some(m)) = (&current_enum, name) {
                    if let Some((members, _)) = model.enums.get_mut(en) {
                        members.push(m);
                    }
                }
            }
            b"Property" | b"NavigationProperty" | b"PropertyRef" => {
                let Some(t) = current.as_ref().and_then(|c| model.types.get_mut(c)) else {
                    continue;
                };
                let name = name.unwrap_or_default();
                match e.local_name().as_ref() {
                    b"Property" => {
                        let ty = short(&attr(&e, "Type").unwrap_or_default());
                        let nullable = attr(&e, "Nullable").as_deref() != Some("false");
                        t.props.push((name, ty, nullable));
                    }
                    b"NavigationProperty" => {
                        t.nav
                            .push((name, short(&attr(&e, "Type").unwrap_or_default())));
                    }
                    _ => t.keys.push(name),
                }
            }
            _ => {}
        }
    }
    model
}

impl Model {
    /// The type and its base types, most derived first.
    fn chain(&self, name: &str) -> Vec<&Structured> {
        let mut out = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(n) = next {
            match self.types.get(&n) {
                Some(t) => {
                    next = t.base.clone();
                    out.push(t);
                }
                None => break,
            }
        }
        out
    }

    pub fn property(&self, ty: &str, name: &str) -> Option<(&str, bool)> {
        self.chain(ty)
            .into_iter()
            .flat_map(|t| &t.props)
            .find(|(n, _, _)| n == name)
            .map(|(_, t, nullable)| (t.as_str(), *nullable))
    }

    pub fn navigation(&self, ty: &str, name: &str) -> Option<&str> {
        self.chain(ty)
            .into_iter()
            .flat_map(|t| &t.nav)
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }
}

/// How a JSON value is being checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// What the request asked of the answer's shape.
#[derive(Default)]
pub struct Shape {
    /// `$select`: only these properties (and the key) come back.
    pub select: Option<Vec<String>>,
    /// `$expand`: these navigation properties may come back.
    pub expand: Vec<String>,
}

/// A JSON object against an entity or complex type.
pub fn check_object(
    v: &Value,
    ty: &str,
    side: Side,
    shape: &Shape,
    at: &str,
    push: &mut dyn FnMut(String),
) {
    let m = model();
    let Some(obj) = v.as_object() else {
        push(format!("{at}: expected a {ty} object, got {v}"));
        return;
    };
    if !m.types.contains_key(ty) {
        push(format!("{at}: type {ty} is not in the kept metadata"));
        return;
    }
    for (k, val) in obj {
        // OData control information (`@odata.etag`, `prop@odata.type`).
        if k.starts_with('@') || k.contains("@odata.") {
            continue;
        }
        let here = format!("{at}.{k}");
        if let Some((pty, nullable)) = m.property(ty, k) {
            if let (Side::Response, Some(sel)) = (side, &shape.select) {
                let key = m.chain(ty).iter().any(|t| t.keys.contains(k));
                if !key && !sel.contains(k) {
                    push(format!("{here}: answered though not in $select"));
                }
            }
            check_typed(val, pty, nullable, side, &here, push);
        } else if let Some(nty) = m.navigation(ty, k) {
            if side == Side::Response && !shape.expand.contains(k) {
                push(format!(
                    "{here}: navigation property answered without $expand"
                ));
            }
            check_typed(val, nty, true, side, &here, push);
        } else {
            push(format!("{here}: {ty} has no property {k}"));
        }
    }
    for t in m.chain(ty) {
        for (name, _, nullable) in &t.props {
            // A complex value carries its non-nullable members; an entity
            // in an answer carries its key.
            let needed =
                (!t.is_entity && !nullable) || (side == Side::Response && t.keys.contains(name));
            if needed && !obj.contains_key(name) {
                push(format!("{at}: {ty} without {name}"));
            }
        }
    }
}

/// A value against `Edm.*`, an enum, a structured type or a collection.
fn check_typed(
    v: &Value,
    ty: &str,
    nullable: bool,
    side: Side,
    at: &str,
    push: &mut dyn FnMut(String),
) {
    if v.is_null() {
        if !nullable {
            push(format!("{at}: null, but {ty} is not nullable"));
        }
        return;
    }
    if let Some(inner) = ty
        .strip_prefix("Collection(")
        .and_then(|t| t.strip_suffix(')'))
    {
        let inner = short(inner);
        let inner = inner.as_str();
        match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_typed(item, inner, false, side, &format!("{at}[{i}]"), push);
                }
            }
            None => push(format!("{at}: expected a collection of {inner}, got {v}")),
        }
        return;
    }
    let m = model();
    if let Some((members, flags)) = m.enums.get(ty) {
        let ok = v.as_str().is_some_and(|s| {
            let mut names = s.split(',').map(str::trim);
            if *flags {
                names.all(|n| members.iter().any(|m| m == n))
            } else {
                members.iter().any(|m| m == s)
            }
        });
        if !ok {
            push(format!(
                "{at}: {v} is not a member of {ty} ({})",
                members.join(", ")
            ));
        }
        return;
    }
    if m.types.contains_key(ty) {
        check_object(v, ty, side, &Shape::default(), at, push);
        return;
    }
    let s = v.as_str();
    let ok = match ty {
        "Edm.String" => s.is_some(),
        "Edm.Boolean" => v.is_boolean(),
        "Edm.Int32" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "Edm.Int64" => v.as_i64().is_some(),
        "Edm.Double" => v.is_number(),
        "Edm.DateTimeOffset" => s.is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
        "Edm.Date" => s.is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        "Edm.TimeOfDay" => s.is_some_and(|s| NaiveTime::parse_from_str(s, "%H:%M:%S%.f").is_ok()),
        "Edm.Guid" => s.is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        other => {
            push(format!("{at}: type {other} is not in the kept metadata"));
            true
        }
    };
    if !ok {
        push(format!("{at}: {v} is not an {ty}"));
    }
}

/// The endpoints callbook calls, as Graph's documentation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `GET /me/calendars` (calendar-list-calendars / user-list-calendars)
    ListCalendars,
    /// `GET /me/mailboxSettings/timeZone` (user-get-mailboxsettings)
    MailboxTimeZone,
    /// `GET /me/calendars/{id}/calendarView` (calendar-list-calendarview)
    CalendarView,
    /// `POST /me/calendars/{id}/events` (calendar-post-events)
    CreateEvent,
    /// `GET /me/calendars/{id}/events` (calendar-list-events)
    ListEvents,
    /// `GET /me/events/{id}` (event-get)
    GetEvent,
    /// `PATCH /me/events/{id}` (event-update)
    UpdateEvent,
    /// `DELETE /me/events/{id}` (event-delete)
    DeleteEvent,
}

pub fn op_for(method: &str, path: &str) -> Option<Op> {
    let rest = path.strip_prefix("/v1.0/me/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    Some(match (method, segs.as_slice()) {
        ("GET", ["calendars"]) => Op::ListCalendars,
        ("GET", ["mailboxSettings", "timeZone"]) => Op::MailboxTimeZone,
        ("GET", ["calendars", _, "calendarView"]) => Op::CalendarView,
        ("POST", ["calendars", _, "events"]) => Op::CreateEvent,
        ("GET", ["calendars", _, "events"]) => Op::ListEvents,
        ("GET", ["events", _]) => Op::GetEvent,
        ("PATCH", ["events", _]) => Op::UpdateEvent,
        ("DELETE", ["events", _]) => Op::DeleteEvent,
        _ => return None,
    })
}

/// OData system query options Graph takes on collections and entities.
const SYSTEM_OPTIONS: [&str; 8] = [
    "$select", "$expand", "$filter", "$top", "$skip", "$orderby", "$count", "$search",
];

/// The violations of one exchange (empty when it holds to the contract).
pub fn check(x: &Exchange) -> Vec<String> {
    let mut out = Vec::new();
    let at = format!("{} {}", x.method, x.path);
    let Some(op) = op_for(&x.method, &x.path) else {
        out.push(format!("{at}: not an endpoint callbook is known to call"));
        return out;
    };
    let mut push = |v: String| out.push(format!("{at} ({op:?}): {v}"));
    let shape = check_query(op, &x.query, &mut push);
    check_prefer(x.prefer.as_deref(), &mut push);
    match (op, &x.request) {
        (Op::CreateEvent | Op::UpdateEvent, Some(body)) => check_object(
            body,
            "event",
            Side::Request,
            &Shape::default(),
            "request",
            &mut push,
        ),
        (Op::CreateEvent | Op::UpdateEvent, None) => {
            push("request: an event body is needed".into())
        }
        (_, Some(b)) => push(format!("request: this endpoint takes no body, got {b}")),
        (_, None) => {}
    }
    if !(200..300).contains(&x.status) {
        match &x.response {
            Some(body) => check_error(body, x.status, &mut push),
            None => push(format!("response: {} without Graph's error body", x.status)),
        }
        return out;
    }
    let expected_status = match op {
        Op::CreateEvent => 201,
        Op::DeleteEvent => 204,
        _ => 200,
    };
    if x.status != expected_status {
        push(format!(
            "response: status {} where Graph answers {expected_status}",
            x.status
        ));
    }
    let body = x.response.as_ref();
    match op {
        Op::DeleteEvent => {
            if let Some(b) = body {
                push(format!("response: a delete answers no body, got {b}"));
            }
        }
        Op::MailboxTimeZone => match body.and_then(|b| b.as_object()) {
            Some(obj) => {
                let (ty, nullable) = model()
                    .property("mailboxSettings", "timeZone")
                    .unwrap_or(("?", true));
                for (k, v) in obj {
                    match k.as_str() {
                        "value" => check_typed(
                            v,
                            ty,
                            nullable,
                            Side::Response,
                            "response.value",
                            &mut push,
                        ),
                        k if k.starts_with('@') => {}
                        k => push(format!("response: unknown field {k}")),
                    }
                }
                if !obj.contains_key("value") {
                    push("response: no value".into());
                }
            }
            None => push("response: expected an object with value".into()),
        },
        Op::ListCalendars | Op::CalendarView | Op::ListEvents => {
            let ty = if op == Op::ListCalendars {
                "calendar"
            } else {
                "event"
            };
            match body.and_then(|b| b.as_object()) {
                Some(obj) => {
                    for (k, v) in obj {
                        match k.as_str() {
                            "value" => match v.as_array() {
                                Some(items) => {
                                    for (i, item) in items.iter().enumerate() {
                                        check_object(
                                            item,
                                            ty,
                                            Side::Response,
                                            &shape,
                                            &format!("response.value[{i}]"),
                                            &mut push,
                                        );
                                    }
                                }
                                None => push("response: value is not a collection".into()),
                            },
                            "@odata.nextLink" | "@odata.context" | "@odata.count"
                            | "@odata.deltaLink" => {}
                            k => push(format!("response: unknown field {k}")),
                        }
                    }
                }
                None => push("response: expected a collection".into()),
            }
        }
        Op::CreateEvent | Op::GetEvent | Op::UpdateEvent => match body {
            Some(b) => check_object(b, "event", Side::Response, &shape, "response", &mut push),
            None => push("response: no event".into()),
        },
    }
    out
}

/// Query options against what each endpoint takes; returns what they ask
/// of the answer.
fn check_query(op: Op, query: &[(String, String)], push: &mut dyn FnMut(String)) -> Shape {
    let mut shape = Shape::default();
    let ty = if op == Op::ListCalendars {
        "calendar"
    } else {
        "event"
    };
    let m = model();
    for (i, (name, value)) in query.iter().enumerate() {
        if query[..i].iter().any(|(n, _)| n == name) {
            push(format!("query: {name} given twice"));
        }
        match name.as_str() {
            "startDateTime" | "endDateTime" if op == Op::CalendarView => {
                if DateTime::parse_from_rfc3339(value).is_err() {
                    push(format!(
                        "query: {name}={value:?} is not a date and time with an offset"
                    ));
                }
            }
            "$select" => {
                let names: Vec<String> = value.split(',').map(|s| s.trim().to_string()).collect();
                for n in &names {
                    if m.property(ty, n).is_none() {
                        push(format!(
                            "query: $select names {n:?}, which {ty} does not have"
                        ));
                    }
                }
                shape.select = Some(names);
            }
            "$expand" => {
                // OData items, each a navigation property with optional
                // nested options: `singleValueExtendedProperties($filter=…)`.
                let mut names = Vec::new();
                for item in top_level_items(value) {
                    let (n, nested) = match item.split_once('(') {
                        Some((n, rest)) => (n.trim(), rest.strip_suffix(')')),
                        None => (item.trim(), Some("")),
                    };
                    if m.navigation(ty, n).is_none() {
                        push(format!(
                            "query: $expand names {n:?}, not a navigation property of {ty}"
                        ));
                    }
                    match nested {
                        None => push(format!("query: $expand item {item:?} is not closed")),
                        Some(opts) => {
                            for opt in top_level_items_by(opts, ';').filter(|o| !o.is_empty()) {
                                let key = opt.split('=').next().unwrap_or_default().trim();
                                if !matches!(key, "$filter" | "$select" | "$top" | "$orderby") {
                                    push(format!(
                                        "query: $expand {n:?} has the option {key:?}, which OData does not nest"
                                    ));
                                }
                            }
                        }
                    }
                    names.push(n.to_string());
                }
                shape.expand = names;
            }
            "$top" | "$skip" => {
                if value.parse::<u32>().is_err() {
                    push(format!(
                        "query: {name}={value:?} is not a non-negative integer"
                    ));
                }
            }
            "$filter" => {
                // The filter callbook sends: an extended property by id and value.
                let known = value.starts_with("singleValueExtendedProperties/Any(ep: ep/id eq '")
                    && value.contains("' and ep/value eq '")
                    && value.ends_with("')");
                if !known {
                    push(format!("query: $filter {value:?} is not the extended-property filter Graph documents"));
                }
            }
            n if SYSTEM_OPTIONS.contains(&n) && op != Op::MailboxTimeZone => {}
            n => push(format!("query: {op:?} takes no parameter {n}")),
        }
    }
    if op == Op::CalendarView {
        for required in ["startDateTime", "endDateTime"] {
            if !query.iter().any(|(n, _)| n == required) {
                push(format!("query: calendarView needs {required}"));
            }
        }
    }
    shape
}

/// `Prefer: outlook.timezone="…"` and `outlook.body-content-type="text"|"html"`.
fn check_prefer(prefer: Option<&str>, push: &mut dyn FnMut(String)) {
    for pref in prefer.into_iter().flat_map(|p| p.split(',')).map(str::trim) {
        let Some((name, value)) = pref.split_once('=') else {
            push(format!("Prefer: {pref:?} has no value"));
            continue;
        };
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let inner = value.trim_matches('"');
        match name.trim() {
            "outlook.timezone" if quoted && !inner.is_empty() => {}
            "outlook.body-content-type" if quoted && matches!(inner, "text" | "html") => {}
            _ => push(format!(
                "Prefer: {pref:?} is not a preference Graph documents"
            )),
        }
    }
}

/// Graph's error body: `{"error": {"code", "message", "innerError"?,
/// "details"?, "target"?}}`.
pub fn check_error(body: &Value, status: u16, push: &mut dyn FnMut(String)) {
    let Some(err) = body.get("error").and_then(Value::as_object) else {
        push(format!("error {status}: no error object in {body}"));
        return;
    };
    if body.as_object().map_or(0, Map::len) != 1 {
        push(format!("error {status}: fields beside error in {body}"));
    }
    for k in ["code", "message"] {
        if !err.get(k).is_some_and(Value::is_string) {
            push(format!("error {status}: no {k}"));
        }
    }
    for (k, _) in err {
        if !matches!(
            k.as_str(),
            "code" | "message" | "innerError" | "details" | "target"
        ) {
            push(format!("error {status}: unknown field error.{k}"));
        }
    }
}

/// The comma-separated items of an OData query option, not splitting
/// inside parentheses or quotes.
fn top_level_items(value: &str) -> impl Iterator<Item = &str> {
    top_level_items_by(value, ',')
}

fn top_level_items_by(value: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut items = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && depth == 0 && !quoted => {
                items.push(value[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    items.push(value[start..].trim());
    items.into_iter()
}
