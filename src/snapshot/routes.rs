//! URL templates and the operation table of one API.
//!
//! A template such as `/users/{uid}/orders/{oid}?date={d}` is parsed once,
//! when the snapshot is compiled, into segments; the operations of an API
//! are merged into a segment trie so that matching costs one walk down the
//! request path, whatever the number of operations.
//!
//! Precedence (APIM's observed rules): a literal segment beats a segment
//! with a parameter inside it (`{id}.json`), which beats a whole-segment
//! parameter, which beats a trailing wildcard (`/*`); at the same place an
//! operation of the request's method beats one with method `*`. Literal
//! segments compare ASCII case-insensitively, as APIM does.

use std::collections::HashMap;

/// One segment of a template's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matched case-insensitively; stored lowercase.
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param(String),
    /// `prefix{name}suffix` inside one segment (prefix/suffix lowercase).
    Pattern {
        prefix: String,
        name: String,
        suffix: String,
    },
}

/// A parsed URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    /// `/*` or `{*name}` at the end: matches any remainder (also none).
    rest: Option<Option<String>>,
    /// Query constraints: (query parameter, template parameter or literal).
    query: Vec<(String, QueryValue)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryValue {
    Param(String),
    Literal(String),
}

fn param_name(s: &str) -> Result<&str, String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Ok(s)
    } else {
        Err(format!("invalid parameter name {s:?}"))
    }
}

impl Template {
    /// Parses a URL template; the error names the problem.
    pub fn parse(template: &str) -> Result<Template, String> {
        let (path, query) = match template.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (template, None),
        };
        if !path.starts_with('/') {
            return Err("must start with '/'".into());
        }
        let raw: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::new();
        let mut rest = None;
        let mut names: Vec<String> = Vec::new();
        for (i, seg) in raw.iter().enumerate() {
            let last = i + 1 == raw.len();
            if *seg == "*" || (seg.starts_with("{*") && seg.ends_with('}')) {
                if !last {
                    return Err("a wildcard ('*' or '{*name}') may only end the template".into());
                }
                rest = Some(if *seg == "*" {
                    None
                } else {
                    Some(param_name(&seg[2..seg.len() - 1])?.to_string())
                });
                continue;
            }
            let opens = seg.matches('{').count();
            let closes = seg.matches('}').count();
            let parsed = match (opens, closes) {
                (0, 0) => {
                    if seg.contains('*') {
                        return Err(format!("segment {seg:?}: '*' must stand alone at the end"));
                    }
                    Segment::Literal(seg.to_ascii_lowercase())
                }
                (1, 1) => {
                    let open = seg.find('{').unwrap_or(0);
                    let close = seg.find('}').unwrap_or(0);
                    if close < open {
                        return Err(format!("segment {seg:?}: unbalanced braces"));
                    }
                    let name = param_name(&seg[open + 1..close])?.to_string();
                    if names.contains(&name) {
                        return Err(format!("parameter {name:?} appears twice"));
                    }
                    names.push(name.clone());
                    if open == 0 && close + 1 == seg.len() {
                        Segment::Param(name)
                    } else {
                        Segment::Pattern {
                            prefix: seg[..open].to_ascii_lowercase(),
                            name,
                            suffix: seg[close + 1..].to_ascii_lowercase(),
                        }
                    }
                }
                _ => {
                    return Err(format!(
                    "segment {seg:?}: at most one {{parameter}} per segment, with balanced braces"
                ))
                }
            };
            segments.push(parsed);
        }
        let mut constraints = Vec::new();
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("query part {pair:?}: expected name={{param}}"))?;
                if k.is_empty() || k.contains(['{', '}']) {
                    return Err(format!("query part {pair:?}: bad parameter name"));
                }
                let value = if v.starts_with('{') && v.ends_with('}') && v.len() > 2 {
                    let name = param_name(&v[1..v.len() - 1])?.to_string();
                    if names.contains(&name) {
                        return Err(format!("parameter {name:?} appears twice"));
                    }
                    names.push(name.clone());
                    QueryValue::Param(name)
                } else if v.contains(['{', '}']) {
                    return Err(format!("query part {pair:?}: unbalanced braces"));
                } else {
                    QueryValue::Literal(v.to_string())
                };
                constraints.push((k.to_string(), value));
            }
        }
        Ok(Template {
            segments,
            rest,
            query: constraints,
        })
    }

    /// The template with parameter names erased: two templates with the
    /// same shape match exactly the same requests.
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            out.push('/');
            match seg {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) => out.push_str("{}"),
                Segment::Pattern { prefix, suffix, .. } => {
                    out.push_str(prefix);
                    out.push_str("{}");
                    out.push_str(suffix);
                }
            }
        }
        if self.rest.is_some() {
            out.push_str("/*");
        }
        let mut query: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| match v {
                QueryValue::Param(_) => format!("{k}={{}}"),
                QueryValue::Literal(l) => format!("{k}={l}"),
            })
            .collect();
        query.sort();
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query.join("&"));
        }
        out
    }

    /// Whether the template's query constraints hold for `query`.
    fn query_matches(&self, query: Option<&str>) -> bool {
        self.query.iter().all(|(name, value)| {
            query_value(query, name).is_some_and(|v| match value {
                QueryValue::Param(_) => true,
                QueryValue::Literal(l) => v == l,
            })
        })
    }

    /// The parameters this template captures from `segments` (and `query`),
    /// as (name, raw value). Call only for a matched template.
    pub fn captures<'a>(
        &self,
        segments: &[&'a str],
        query: Option<&'a str>,
    ) -> Vec<(String, &'a str)> {
        let mut out = Vec::new();
        for (seg, value) in self.segments.iter().zip(segments) {
            match seg {
                Segment::Literal(_) => {}
                Segment::Param(name) => out.push((name.clone(), *value)),
                Segment::Pattern {
                    prefix,
                    name,
                    suffix,
                } => {
                    let inner = &value[prefix.len()..value.len() - suffix.len()];
                    out.push((name.clone(), inner));
                }
            }
        }
        if let Some(Some(name)) = &self.rest {
            if segments.len() > self.segments.len() {
                let start = segments[self.segments.len()];
                out.push((name.clone(), start));
            }
        }
        for (qname, value) in &self.query {
            if let (QueryValue::Param(name), Some(v)) = (value, query_value(query, qname)) {
                out.push((name.clone(), v));
            }
        }
        out
    }
}

/// The raw value of query parameter `name`, if present.
pub fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// One node of the operation trie.
#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    patterns: Vec<(String, String, Node)>,
    param: Option<Box<Node>>,
    /// Operations whose template ends here.
    ends: Vec<usize>,
    /// Operations whose template ends here with a wildcard.
    wildcards: Vec<usize>,
}

/// The operations of one API, arranged for matching.
#[derive(Debug, Default)]
pub struct OperationTable {
    root: Node,
    /// (method or "*", template) per operation index.
    ops: Vec<(String, Template)>,
}

impl OperationTable {
    /// Builds the table; `ops[i]` is (method, template) of operation `i`.
    pub fn build(ops: Vec<(String, Template)>) -> OperationTable {
        let mut root = Node::default();
        for (i, (_, t)) in ops.iter().enumerate() {
            let mut node = &mut root;
            for seg in &t.segments {
                node = match seg {
                    Segment::Literal(l) => node.literals.entry(l.clone()).or_default(),
                    Segment::Param(_) => node.param.get_or_insert_with(Default::default),
                    Segment::Pattern { prefix, suffix, .. } => {
                        let pos = node
                            .patterns
                            .iter()
                            .position(|(p, s, _)| p == prefix && s == suffix);
                        let pos = match pos {
                            Some(p) => p,
                            None => {
                                node.patterns.push((
                                    prefix.clone(),
                                    suffix.clone(),
                                    Node::default(),
                                ));
                                node.patterns.len() - 1
                            }
                        };
                        &mut node.patterns[pos].2
                    }
                };
            }
            if t.rest.is_some() {
                node.wildcards.push(i);
            } else {
                node.ends.push(i);
            }
        }
        OperationTable { root, ops }
    }

    /// Finds the operation for `method` and the path `segments` (already
    /// split, empty segments dropped) with `query`.
    pub fn find(&self, method: &str, segments: &[&str], query: Option<&str>) -> Option<usize> {
        self.walk(&self.root, method, segments, 0, query)
    }

    /// The template of operation `i`.
    pub fn template(&self, i: usize) -> &Template {
        &self.ops[i].1
    }

    fn pick(&self, candidates: &[usize], method: &str, query: Option<&str>) -> Option<usize> {
        let fits = |i: &&usize| self.ops[**i].1.query_matches(query);
        // Exact method first, then `*`; among those, templates with query
        // constraints (more specific) first.
        let by = |want_exact: bool| {
            let mut best: Option<usize> = None;
            for i in candidates.iter().filter(fits) {
                let m = &self.ops[*i].0;
                let ok = if want_exact { m == method } else { m == "*" };
                if ok {
                    let better = match best {
                        None => true,
                        Some(b) => self.ops[*i].1.query.len() > self.ops[b].1.query.len(),
                    };
                    if better {
                        best = Some(*i);
                    }
                }
            }
            best
        };
        by(true).or_else(|| by(false))
    }

    fn walk(
        &self,
        node: &Node,
        method: &str,
        segs: &[&str],
        at: usize,
        query: Option<&str>,
    ) -> Option<usize> {
        if at == segs.len() {
            if let Some(i) = self.pick(&node.ends, method, query) {
                return Some(i);
            }
        } else {
            let seg = segs[at];
            let lower;
            let key = if seg.bytes().any(|b| b.is_ascii_uppercase()) {
                lower = seg.to_ascii_lowercase();
                lower.as_str()
            } else {
                seg
            };
            if let Some(child) = node.literals.get(key) {
                if let Some(i) = self.walk(child, method, segs, at + 1, query) {
                    return Some(i);
                }
            }
            for (prefix, suffix, child) in &node.patterns {
                if key.len() > prefix.len() + suffix.len()
                    && key.starts_with(prefix.as_str())
                    && key.ends_with(suffix.as_str())
                {
                    if let Some(i) = self.walk(child, method, segs, at + 1, query) {
                        return Some(i);
                    }
                }
            }
            if let Some(child) = &node.param {
                if let Some(i) = self.walk(child, method, segs, at + 1, query) {
                    return Some(i);
                }
            }
        }
        self.pick(&node.wildcards, method, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ops: &[(&str, &str)]) -> OperationTable {
        OperationTable::build(
            ops.iter()
                .map(|(m, t)| (m.to_string(), Template::parse(t).unwrap()))
                .collect(),
        )
    }

    fn segs(p: &str) -> Vec<&str> {
        p.split('/').filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn literal_beats_param_beats_wildcard() {
        let t = table(&[
            ("GET", "/*"),
            ("GET", "/users/{id}"),
            ("GET", "/users/me"),
            ("GET", "/users/{id}.json"),
        ]);
        assert_eq!(t.find("GET", &segs("/users/me"), None), Some(2));
        assert_eq!(t.find("GET", &segs("/USERS/Me"), None), Some(2));
        assert_eq!(t.find("GET", &segs("/users/42"), None), Some(1));
        assert_eq!(t.find("GET", &segs("/users/42.json"), None), Some(3));
        assert_eq!(t.find("GET", &segs("/users/42/x"), None), Some(0));
        assert_eq!(t.find("GET", &segs("/"), None), Some(0));
        assert_eq!(t.find("POST", &segs("/users/42"), None), None);
    }

    #[test]
    fn exact_method_beats_star_and_backtracks() {
        let t = table(&[("*", "/a/{x}"), ("POST", "/a/{y}"), ("GET", "/a/b/c")]);
        assert_eq!(t.find("POST", &segs("/a/1"), None), Some(1));
        assert_eq!(t.find("GET", &segs("/a/1"), None), Some(0));
        // literal branch a/b leads nowhere for /a/b with GET: back off to {x}
        assert_eq!(t.find("GET", &segs("/a/b"), None), Some(0));
    }

    #[test]
    fn captures_and_query_constraints() {
        let t = table(&[
            ("GET", "/u/{uid}/o/{oid}?date={d}"),
            ("GET", "/u/{uid}/o/{oid}"),
        ]);
        let s = segs("/u/7/o/9");
        assert_eq!(t.find("GET", &s, Some("date=today&x=1")), Some(0));
        assert_eq!(t.find("GET", &s, Some("x=1")), Some(1));
        let caps = t.template(0).captures(&s, Some("date=today"));
        assert_eq!(
            caps,
            vec![
                ("uid".into(), "7"),
                ("oid".into(), "9"),
                ("d".into(), "today")
            ]
        );
    }

    #[test]
    fn bad_templates_are_rejected() {
        for bad in [
            "users",
            "/a/*/b",
            "/{a",
            "/{a}{b}",
            "/{a}/{a}",
            "/{bad name}",
            "/a?x",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::parse("/").is_ok());
        assert!(Template::parse("/files/{*path}").is_ok());
    }
}
