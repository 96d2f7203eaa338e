//! Path keys as URL templates: the checks the gateway's router makes
//! (`snapshot::routes::Template`), done here so that a problem is reported
//! with the pointer of the path, and the template's shape, to find two
//! operations the router could not tell apart.

/// What a path key holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    /// `{name}`s of the path part, in order.
    pub path_params: Vec<String>,
    /// `name={param}` pairs of a query part (`/search?q={q}`), as
    /// (query name, parameter name).
    pub query_params: Vec<(String, String)>,
    /// The template with parameter names erased and literals lowercased.
    pub shape: String,
}

fn param_name(s: &str) -> Result<&str, String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Ok(s)
    } else {
        Err(format!(
            "parameter name {s:?} is not supported: 1-64 letters, digits, '_', '-' or '.'"
        ))
    }
}

fn add(names: &mut Vec<String>, n: &str) -> Result<(), String> {
    let n = param_name(n)?;
    if names.iter().any(|m| m == n) {
        return Err(format!("parameter {n:?} appears twice"));
    }
    names.push(n.to_string());
    Ok(())
}

/// Checks a path key (already starting with `/`) and describes it.
pub fn parse(key: &str) -> Result<Template, String> {
    let (path, query) = match key.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (key, None),
    };
    let mut names: Vec<String> = Vec::new();
    let mut shape = String::new();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segments.iter().enumerate() {
        shape.push('/');
        let last = i + 1 == segments.len();
        if *seg == "*" && last {
            shape.push('*');
            continue;
        }
        if seg.contains('*') {
            return Err(format!(
                "segment {seg:?}: '*' is only allowed as the whole last segment"
            ));
        }
        let opens = seg.matches('{').count();
        let closes = seg.matches('}').count();
        match (opens, closes) {
            (0, 0) => shape.push_str(&seg.to_ascii_lowercase()),
            (1, 1) => {
                let open = seg.find('{').unwrap_or(0);
                let close = seg.find('}').unwrap_or(0);
                if close < open {
                    return Err(format!("segment {seg:?}: unbalanced braces"));
                }
                add(&mut names, &seg[open + 1..close])?;
                shape.push_str(&seg[..open].to_ascii_lowercase());
                shape.push_str("{}");
                shape.push_str(&seg[close + 1..].to_ascii_lowercase());
            }
            _ => {
                return Err(format!(
                "segment {seg:?}: the gateway supports at most one {{parameter}} per path segment"
            ))
            }
        }
    }
    let path_params = names.clone();
    let mut query_params = Vec::new();
    let mut query_shape = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("query part {pair:?}: expected name={{parameter}}"));
        };
        if k.is_empty() || k.contains(['{', '}']) {
            return Err(format!("query part {pair:?}: bad parameter name"));
        }
        if v.len() > 2 && v.starts_with('{') && v.ends_with('}') {
            let name = &v[1..v.len() - 1];
            add(&mut names, name)?;
            query_params.push((k.to_string(), name.to_string()));
            query_shape.push(format!("{k}={{}}"));
        } else if v.contains(['{', '}']) {
            return Err(format!("query part {pair:?}: unbalanced braces"));
        } else {
            query_shape.push(format!("{k}={v}"));
        }
    }
    if !query_shape.is_empty() {
        query_shape.sort();
        shape.push('?');
        shape.push_str(&query_shape.join("&"));
    }
    Ok(Template {
        path_params,
        query_params,
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = parse("/Pets/{petId}/photos/img-{n}.png").unwrap();
        assert_eq!(t.path_params, ["petId", "n"]);
        assert_eq!(t.shape, "/pets/{}/photos/img-{}.png");
        let t = parse("/search?q={term}&lang=en").unwrap();
        assert_eq!(t.path_params, Vec::<String>::new());
        assert_eq!(t.query_params, [("q".to_string(), "term".to_string())]);
        assert_eq!(t.shape, "/search?lang=en&q={}");
        assert_eq!(parse("/").unwrap().shape, "");
        assert_eq!(
            parse("/a/{x}").unwrap().shape,
            parse("/A/{y}").unwrap().shape
        );
    }

    #[test]
    fn refused() {
        assert!(parse("/files/{name}.{ext}")
            .unwrap_err()
            .contains("at most one"));
        assert!(parse("/a/{x}/b/{x}").unwrap_err().contains("twice"));
        assert!(parse("/a/{pet id}").unwrap_err().contains("not supported"));
        assert!(parse("/a/}x{").is_err());
        assert!(parse("/a*/b").is_err());
        assert!(parse("/a?b").is_err());
    }
}
