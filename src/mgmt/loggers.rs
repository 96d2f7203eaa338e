//! `/mgmt/loggers/{id}`: the [`Logger`] resource (`file`, `http`,
//! `stdout`). An `http` logger's header values are secrets: GET shows
//! them as "", and a PUT that sends "" for a header keeps its stored
//! value. A logger a policy names cannot be deleted (the snapshot would
//! not compile: the DELETE is a 400 naming the policy).

use super::body::ensure_valid;
use super::resource::Resource;
use crate::error::{ApiError, Detail};
use crate::model::{Catalog, Change, Logger};
use std::collections::BTreeMap;

impl Resource for Logger {
    const NAME: &'static str = "logger";

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.loggers
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        old: Option<&Self>,
        _c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        for (name, value) in new.settings.headers.iter_mut() {
            if value.is_empty() {
                match old.and_then(|o| o.settings.headers.get(name)) {
                    Some(kept) => *value = kept.clone(),
                    None => details.push(Detail::new(
                        format!("settings.headers.{name}"),
                        "a value is required (\"\" keeps a stored value only)",
                    )),
                }
            }
        }
        new.normalize(&mut details);
        ensure_valid(details)?;
        Ok(vec![Change::Logger(id.into(), Some(new))])
    }

    fn plan_delete(id: &str, _c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        Ok(vec![Change::Logger(id.into(), None)])
    }

    /// Header values are credentials: shown as "".
    fn view(&self, id: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(h) = v
            .pointer_mut("/settings/headers")
            .and_then(|h| h.as_object_mut())
        {
            for value in h.values_mut() {
                *value = serde_json::Value::String(String::new());
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.insert("id".into(), serde_json::Value::String(id.to_string()));
        }
        v
    }
}
