//! Users, teams and campaigns made or changed through the admin API, over
//! what the provisioning file seeds: a record here wins over the file's
//! (`None` marks one deleted, so a deleted seed stays deleted).
//!
//! The [`super::Store`] trait reads and writes them typed; at rest each is
//! the JSON of its struct (in the state file's `accounts`, or a Redis hash
//! per kind), as it always was, so state files and Redis keys written
//! before still load.

use super::StoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Which kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Team,
    Campaign,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Team => "team",
            Kind::Campaign => "campaign",
        }
    }
}

/// A team: the users a campaign's owner is chosen among.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// The records set through the admin API, by kind and id; `None` for a
/// deleted one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, Option<Value>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub teams: BTreeMap<String, Option<Value>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub campaigns: BTreeMap<String, Option<Value>>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty() && self.campaigns.is_empty()
    }

    pub fn of(&self, kind: Kind) -> &BTreeMap<String, Option<Value>> {
        match kind {
            Kind::User => &self.users,
            Kind::Team => &self.teams,
            Kind::Campaign => &self.campaigns,
        }
    }

    pub fn of_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, Option<Value>> {
        match kind {
            Kind::User => &mut self.users,
            Kind::Team => &mut self.teams,
            Kind::Campaign => &mut self.campaigns,
        }
    }
}

/// `seed` with `over` applied: every live record, by id.
pub fn merge(
    mut seed: BTreeMap<String, Value>,
    over: impl IntoIterator<Item = (String, Option<Value>)>,
) -> Vec<Value> {
    for (id, v) in over {
        match v {
            Some(v) => seed.insert(id, v),
            None => seed.remove(&id),
        };
    }
    seed.into_values().collect()
}

/// A stored record as its type; one that does not fit is corrupt, never
/// missing.
pub(super) fn decode<T: DeserializeOwned>(v: Option<Value>) -> Result<Option<T>, StoreError> {
    v.map(|v| serde_json::from_value(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Every stored record as its type.
pub(super) fn decode_all<T: DeserializeOwned>(list: Vec<Value>) -> Result<Vec<T>, StoreError> {
    list.into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

/// A record as stored.
pub(super) fn encode(v: &impl Serialize) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Adds (`present`) or removes `user` among the team's members; `true`
/// when that changed them.
pub(super) fn set_member(team: &mut Team, user: &str, present: bool) -> bool {
    let has = team.members.iter().any(|m| m == user);
    match (has, present) {
        (false, true) => {
            team.members.push(user.to_string());
            true
        }
        (true, false) => {
            team.members.retain(|m| m != user);
            true
        }
        _ => false,
    }
}
