//! Parameter objects shared by both versions: reading a `parameters`
//! array (with `$ref`s), laying an operation's parameters over its path
//! item's, and the template parameters of a URL template.

use super::schema::Param;
use super::{ptr, template, Cx};
use crate::error::Detail;
use serde_json::Value;

/// A parameter object, resolved.
#[derive(Clone)]
pub(super) struct P<'a> {
    pub v: &'a Value,
    pub at: String,
    pub name: String,
    pub location: String,
}

/// The parameters of `list` (at pointer `at`); `in` must be one of
/// `locations`.
pub(super) fn parameters<'a>(
    cx: &Cx<'a>,
    list: Option<&'a Value>,
    at: &str,
    locations: &[&str],
) -> Result<Vec<P<'a>>, Detail> {
    let items = match list {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Detail::new(at, "must be an array of parameters")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, p) in items.iter().enumerate() {
        let (v, p_at) = cx.deref(p, &format!("{at}/{i}"))?;
        if !v.is_object() {
            return Err(Detail::new(p_at, "a parameter must be an object"));
        }
        let Some(name) = v.get("name").and_then(Value::as_str) else {
            return Err(Detail::new(
                ptr(&p_at, "name"),
                "required: the parameter's name",
            ));
        };
        let Some(location) = v
            .get("in")
            .and_then(Value::as_str)
            .filter(|l| locations.contains(l))
        else {
            let names: Vec<String> = locations.iter().map(|l| format!("\"{l}\"")).collect();
            return Err(Detail::new(
                ptr(&p_at, "in"),
                format!("must be one of {}", names.join(", ")),
            ));
        };
        out.push(P {
            v,
            at: p_at.clone(),
            name: name.to_string(),
            location: location.to_string(),
        });
    }
    Ok(out)
}

/// Path-level parameters with the operation's laid over them: a parameter
/// the operation redefines (`same`) replaces the path item's.
pub(super) fn merge<'a>(
    shared: &[P<'a>],
    own: Vec<P<'a>>,
    same: impl Fn(&P<'a>, &P<'a>) -> bool,
) -> Vec<P<'a>> {
    let mut out = shared.to_vec();
    for p in own {
        match out.iter_mut().find(|q| same(q, &p)) {
            Some(q) => *q = p,
            None => out.push(p),
        }
    }
    out
}

/// One contract per `{name}` of the template (path first, then the query
/// part of the path key), documented from `params` where they say.
pub(super) fn template_parameters<'a>(
    cx: &mut Cx<'a>,
    t: &template::Template,
    params: &[P<'a>],
    contract: impl Fn(&mut Cx<'a>, &P<'a>) -> Result<Value, Detail>,
) -> Result<Vec<Value>, Detail> {
    let mut out = Vec::new();
    for name in &t.path_params {
        out.push(
            match params
                .iter()
                .find(|p| p.location == "path" && p.name == *name)
            {
                Some(p) => contract(cx, p)?,
                None => Param::undocumented(name),
            },
        );
    }
    for (query_name, name) in &t.query_params {
        out.push(
            match params
                .iter()
                .find(|p| p.location == "query" && p.name == *query_name)
            {
                Some(p) => {
                    let mut c = contract(cx, p)?;
                    c["name"] = Value::String(name.clone());
                    c
                }
                None => Param::undocumented(name),
            },
        );
    }
    Ok(out)
}
