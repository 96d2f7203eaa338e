//! `<emit-metric name namespace? value? default-dimensions?>` with up to 10
//! `<dimension name value?/>`: adds `value` (a double, default 1) to the
//! custom-metric series (namespace, name, dimensions) of the gateway's
//! registry (`telemetry::registry`), where APIM sends it to Application
//! Insights. A dimension without a value must be one of APIM's default
//! dimensions — `API ID`, `Operation ID`, `Product ID`, `User ID`,
//! `Subscription ID`, `Location`, `Gateway ID` — and takes the request's
//! value ("" when the request has none). Namespace default: "API
//! Management". Sections: all.
//!
//! Also the dimension helpers the token-metric policies share.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::Value;
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

/// The namespace when none is given.
pub const DEFAULT_NAMESPACE: &str = "API Management";

/// APIM's default dimensions (usable without a value).
pub const DEFAULT_DIMENSIONS: [&str; 7] = [
    "API ID",
    "Operation ID",
    "Product ID",
    "User ID",
    "Subscription ID",
    "Location",
    "Gateway ID",
];

/// One `<dimension>`: a value, or `None` for a default dimension.
#[derive(Debug)]
pub struct Dimension {
    pub name: String,
    pub value: Option<Val>,
}

/// Parses the `<dimension>` children (at most `max`).
pub fn dimensions(cx: &mut Compiler, e: &Element, max: usize) -> Vec<Dimension> {
    let mut out = Vec::new();
    for d in e.elements().filter(|c| c.name == "dimension") {
        let Some(name) = cx.literal(d, "name") else {
            cx.error(d.span.start, "<dimension> needs name".into());
            continue;
        };
        let value = cx.attr(d, "value");
        if value.is_none() && default_index(&name).is_none() {
            cx.error(
                d.span.start,
                format!(
                    "dimension '{name}' needs a value; only the default dimensions ({}) may omit it",
                    DEFAULT_DIMENSIONS.join(", ")
                ),
            );
            continue;
        }
        out.push(Dimension { name, value });
    }
    if out.len() > max {
        cx.error(
            e.span.start,
            format!("<{}> takes at most {max} dimensions", e.name),
        );
    }
    out
}

fn default_index(name: &str) -> Option<usize> {
    DEFAULT_DIMENSIONS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name.trim()))
}

/// The request's value of a default dimension.
fn default_value(st: &State, index: usize) -> String {
    let c = &st.ctx;
    match index {
        0 => c.api.as_ref().map(|a| a.id.clone()),
        1 => c.operation.as_ref().map(|o| o.id.clone()),
        2 => c.product.as_ref().map(|p| p.id.clone()),
        3 => c.user.as_ref().map(|u| u.id.clone()),
        4 => c.subscription.as_ref().map(|s| s.id.clone()),
        5 => Some(c.deployment.region.clone()),
        _ => Some(c.deployment.gateway_id.clone()),
    }
    .unwrap_or_default()
}

/// Evaluates the dimensions for this request.
pub fn evaluate(dims: &[Dimension], st: &State) -> Result<Vec<(String, String)>, PolicyError> {
    let mut out = Vec::with_capacity(dims.len());
    for d in dims {
        let v = match (&d.value, default_index(&d.name)) {
            (Some(v), _) => v.text(st)?,
            (None, Some(i)) => default_value(st, i),
            (None, None) => String::new(),
        };
        out.push((d.name.clone(), v));
    }
    Ok(out)
}

#[derive(Debug)]
pub struct EmitMetric {
    name: String,
    namespace: String,
    value: Option<Val>,
    dimensions: Vec<Dimension>,
}

impl EmitMetric {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<EmitMetric> {
        let Some(name) = cx.literal(e, "name") else {
            cx.error(e.span.start, "<emit-metric> needs name".into());
            return None;
        };
        let namespace = cx
            .literal(e, "namespace")
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let value = cx.attr(e, "value");
        if let Some(Val::Lit(v)) = &value {
            if v.trim().parse::<f64>().is_err() {
                let at = e.attr("value").map_or(e.span.start, |a| a.value_span.start);
                cx.error(at, format!("'value' must be a number, not '{v}'"));
            }
        }
        let dimensions = dimensions(cx, e, 10);
        Some(EmitMetric {
            name,
            namespace,
            value,
            dimensions,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let value = match &self.value {
            None => 1.0,
            Some(v) => number(&v.eval(st)?)?,
        };
        let dims = evaluate(&self.dimensions, st)?;
        st.telemetry
            .metrics
            .record(&self.namespace, &self.name, dims, value);
        Ok(Outcome::Continue)
    }
}

fn number(v: &Value) -> Result<f64, PolicyError> {
    let n = match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        other => other.to_display().trim().parse::<f64>().ok(),
    };
    n.filter(|n| n.is_finite()).ok_or_else(|| {
        PolicyError::new(
            500,
            "ExpressionValueEvaluationFailure",
            format!(
                "emit-metric value must be a number, not '{}'.",
                v.to_display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn records_into_the_registry() {
        let doc = test_doc(r#"<policies><inbound><emit-metric name="calls" value="@(2.5)" namespace="ns"><dimension name="API ID" /><dimension name="k" value="@("v")" /></emit-metric><emit-metric name="calls" namespace="ns" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        let m = &st.telemetry.metrics;
        assert_eq!(
            m.total("ns", "calls", &[("k", "v"), ("API ID", "")]),
            (1, 2.5)
        );
        assert_eq!(m.total("ns", "calls", &[]), (2, 3.5));
        let bad = test_doc(
            r#"<policies><inbound><emit-metric name="m"><dimension name="custom" /></emit-metric></inbound></policies>"#,
        );
        assert!(bad.unwrap_err()[0].message.contains("needs a value"));
    }
}
