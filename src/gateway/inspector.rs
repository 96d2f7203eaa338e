//! The API inspector on the gateway: per-request traces for requests that
//! carry a valid debug token (`Apim-Debug-Authorization`).
//!
//! Owns: checking the token against the snapshot's debug key ([`begin`]),
//! the [`Recorder`] a traced request carries in `RequestCtx::inspector`
//! (the request on arrival, one entry per policy step with its scope,
//! section, timings and what it changed, the backend call, `trace`
//! messages, the error), and finishing the trace into the gateway's
//! [`TraceRing`] with the `Apim-Trace-Id` response header ([`end`]).
//!
//! An untraced request pays one header lookup in [`begin`] and one
//! `Option` check per policy step; nothing is allocated for it. A token
//! that is missing, expired, tampered with or for another API simply does
//! not trace: the request runs as usual. The header is removed before the
//! request goes further, whether or not it traces.
//!
//! Secrets never reach the trace in clear: credential headers and query
//! parameters are masked by name ([`mask`]), and the request's
//! subscription key, its `Authorization` values, the debug token and every
//! secret named value are replaced by `***` wherever they appear
//! (`Redactor`). Bodies are never recorded, only their sizes.

use super::error::GatewayError;
use super::pipeline::RequestCtx;
use super::Body;
use crate::expr::context::{Headers, Url};
use crate::policy::builtin::{Outcome, Policy, PolicyError, Section, State, Step};
use crate::telemetry::inspector::{mask, secret_header, secret_param, Redactor, TraceRing};
use http::{HeaderMap, HeaderValue, Response};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant, SystemTime};

/// The response header naming the trace.
pub const TRACE_ID_HEADER: &str = "apim-trace-id";

/// The scope levels, broadest first (as the pipeline numbers them).
const SCOPES: [&str; 4] = ["global", "product", "api", "operation"];

/// Most entries one trace keeps (later ones are counted, not kept).
const MAX_ENTRIES: usize = 500;

/// Longest header value or variable preview kept (characters).
const MAX_TEXT: usize = 512;

/// Headers the gateway adds when forwarding; shown as they are.
const FORWARDING: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "content-length",
];

/// One traced request, while it runs.
pub struct Recorder {
    id: String,
    api_id: String,
    operation_id: String,
    started: Instant,
    started_at: SystemTime,
    /// Entries per section: inbound, backend, outbound, on-error.
    sections: [Vec<Value>; 4],
    stack: Vec<Frame>,
    kept: usize,
    dropped: usize,
    key_header: String,
    key_query: String,
    redactor: Redactor,
}

/// A step that started and has not ended yet.
struct Frame {
    /// Where its entry is (`None`: not recorded, e.g. `<base/>`).
    slot: Option<(usize, usize)>,
    at: Instant,
    before: Option<Before>,
}

type HeaderList = Vec<(String, String)>;

/// What a step may change, as it was before the step.
struct Before {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<usize>,
    /// Status, headers and body size.
    response: Option<(u16, HeaderList, Option<usize>)>,
    variables: Vec<(String, String)>,
}

fn section_index(s: Section) -> usize {
    match s {
        Section::Inbound => 0,
        Section::Backend => 1,
        Section::Outbound => 2,
        Section::OnError => 3,
    }
}

/// A duration as .NET's `TimeSpan` prints it (`00:00:00.0012345`), as
/// APIM's traces show `elapsed`.
fn timespan(d: Duration) -> String {
    let secs = d.as_secs();
    let ticks = d.subsec_nanos() / 100;
    format!(
        "{:02}:{:02}:{:02}.{ticks:07}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn capped(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_TEXT).collect();
    out.push('…');
    out
}

/// Starts a trace when the request carries a valid debug token for its
/// API; removes the debug header in any case.
pub fn begin(ctx: &mut RequestCtx, ring: &TraceRing) {
    use crate::model::debug_token::HEADER;
    let headers = &ctx.state.ctx.request.message.headers;
    if !headers.contains(HEADER) {
        return;
    }
    let token = headers.joined(HEADER).unwrap_or_default();
    let arrived = headers.clone();
    ctx.state.ctx.request.message.headers.remove(HEADER);
    if !ring.enabled() {
        return;
    }
    let Some(key) = ctx.snapshot.debug_key.clone() else {
        return;
    };
    if !key.verify(&token, &ctx.api().id, crate::model::unix_now()) {
        return;
    }
    let Ok(id) = crate::error::random_hex(16) else {
        return;
    };
    let mut redactor = Redactor::default();
    redactor.add(&token);
    for v in ctx.snapshot.secret_values.iter() {
        redactor.add(v);
    }
    if let Some(s) = &ctx.state.ctx.subscription {
        redactor.add(&s.key);
    }
    for v in arrived.get_all("authorization") {
        redactor.add(v);
        if let Some((_, credentials)) = v.trim().split_once(' ') {
            redactor.add(credentials);
        }
    }
    let api = ctx.api();
    let mut rec = Recorder {
        id,
        api_id: api.id.to_string(),
        operation_id: ctx.operation().id.to_string(),
        started: ctx.state.ctx.started,
        started_at: SystemTime::now(),
        sections: Default::default(),
        stack: Vec::new(),
        kept: 0,
        dropped: 0,
        key_header: api.key_header.as_str().to_string(),
        key_query: api.key_query.to_string(),
        redactor,
    };
    let product = ctx.product.map(|p| ctx.snapshot.products[p].id.to_string());
    let request = json!({
        "method": ctx.state.ctx.request.method,
        "url": rec.url(&ctx.state.ctx.request.original_url),
        "headers": rec.headers(&arrived.0),
        "clientIp": ctx.state.ctx.request.ip_address,
    });
    let configuration = json!({
        "api": {"id": rec.api_id, "path": api.path.as_ref()},
        "operation": {"id": rec.operation_id, "method": ctx.operation().method.as_ref(), "urlTemplate": ctx.operation().url_template.as_ref()},
        "product": product,
        "subscription": ctx.subscription,
        "backendUrl": ctx.state.ctx.request.url.to_string(),
    });
    let at = rec.entry("api-inspector", "gateway", None, None);
    if let Some(slot) = rec.push(Section::Inbound, at) {
        let mut data = Map::new();
        data.insert("request".into(), request);
        data.insert("configuration".into(), configuration);
        rec.close(slot, Instant::now(), data);
    }
    ctx.state.ctx.tracing = true;
    ctx.state.trace_log = Some(Vec::new());
    ctx.inspector = Some(Box::new(rec));
}

/// Finishes the trace of a traced request: keeps it in `ring` and names it
/// in the response's `Apim-Trace-Id`.
pub fn end(ctx: &mut RequestCtx, resp: &mut Response<Body>, ring: &TraceRing) {
    let Some(rec) = ctx.inspector.take() else {
        return;
    };
    let id = rec.id.clone();
    let json = rec.finish(resp, &ctx.state);
    ring.insert(id.clone(), json);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(TRACE_ID_HEADER, v);
    }
}

impl Recorder {
    /// The trace id (32 hex digits, 128 random bits).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn url(&self, url: &Url) -> String {
        if url
            .query
            .iter()
            .any(|(k, _)| secret_param(k, &self.key_query))
        {
            let mut u = url.clone();
            for (k, v) in &mut u.query {
                if secret_param(k, &self.key_query) {
                    *v = mask(v);
                }
            }
            return u.to_string();
        }
        url.to_string()
    }

    fn header_value(&self, name: &str, value: &str) -> String {
        if secret_header(name, &self.key_header) {
            mask(value)
        } else {
            capped(value)
        }
    }

    fn headers(&self, headers: &[(String, String)]) -> Value {
        Value::Array(
            headers
                .iter()
                .map(|(k, v)| json!({"name": k, "value": self.header_value(k, v)}))
                .collect(),
        )
    }

    fn header_map(&self, headers: &HeaderMap, clear: impl Fn(&str) -> bool) -> Value {
        Value::Array(
            headers
                .iter()
                .map(|(k, v)| {
                    let text = String::from_utf8_lossy(v.as_bytes());
                    let value = if clear(k.as_str()) {
                        self.header_value(k.as_str(), &text)
                    } else {
                        "***".to_string()
                    };
                    json!({"name": k.as_str(), "value": value})
                })
                .collect(),
        )
    }

    fn entry(&self, source: &str, scope: &str, path: Option<&str>, id: Option<&str>) -> Value {
        let offset = self.started.elapsed();
        let mut e = Map::new();
        e.insert("source".into(), json!(source));
        e.insert("scope".into(), json!(scope));
        if let Some(p) = path {
            e.insert("path".into(), json!(p));
        }
        if let Some(id) = id {
            e.insert("id".into(), json!(id));
        }
        e.insert(
            "timestamp".into(),
            json!(humantime::format_rfc3339_micros(self.started_at + offset).to_string()),
        );
        e.insert("elapsed".into(), json!(timespan(offset)));
        e.insert("offsetUs".into(), json!(offset.as_micros() as u64));
        e.insert("data".into(), json!({}));
        Value::Object(e)
    }

    fn push(&mut self, section: Section, entry: Value) -> Option<(usize, usize)> {
        if self.kept >= MAX_ENTRIES {
            self.dropped += 1;
            return None;
        }
        self.kept += 1;
        let s = section_index(section);
        self.sections[s].push(entry);
        Some((s, self.sections[s].len() - 1))
    }

    fn before(&self, st: &State) -> Before {
        let req = &st.ctx.request;
        Before {
            method: req.method.clone(),
            url: self.url(&req.url),
            headers: req.message.headers.0.clone(),
            body: req.message.body.as_ref().map(|b| b.len()),
            response: st.ctx.response.as_ref().map(|r| {
                (
                    r.status,
                    r.message.headers.0.clone(),
                    r.message.body.as_ref().map(|b| b.len()),
                )
            }),
            variables: variables(st),
        }
    }

    /// A step starts (called by the pipeline before it runs).
    pub fn enter(&mut self, step: &Step, level: usize, section: Section, st: &State) {
        let at = Instant::now();
        if matches!(step.policy, Policy::Base) {
            self.stack.push(Frame {
                slot: None,
                at,
                before: None,
            });
            return;
        }
        // Containers run their policies as steps of their own: those
        // entries say what changed.
        let container = matches!(
            step.policy,
            Policy::Choose(_) | Policy::LimitConcurrency(_) | Policy::Retry(_) | Policy::Wait(_)
        );
        let before = (!container).then(|| self.before(st));
        let entry = self.entry(
            &step.name,
            SCOPES[level.min(3)],
            Some(&step.path),
            step.id.as_deref(),
        );
        let slot = self.push(section, entry);
        self.stack.push(Frame { slot, at, before });
    }

    /// The step started last ended with `outcome`.
    pub fn leave(&mut self, st: &mut State, outcome: Outcome) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let messages = st.trace_log.as_mut().map(std::mem::take);
        let Some(slot) = frame.slot else {
            return;
        };
        let mut data = self.diff(frame.before, st);
        if outcome == Outcome::Respond {
            let status = st.ctx.response.as_ref().map_or(200, |r| r.status);
            data.insert(
                "shortCircuit".into(),
                json!({ "status": status, "message": format!("short-circuited with {status}") }),
            );
        }
        if let Some(messages) = messages.filter(|m| !m.is_empty()) {
            let rendered: Vec<Value> = messages
                .into_iter()
                .map(|m| {
                    json!({
                        "source": m.source,
                        "severity": m.severity,
                        "message": m.message,
                        "metadata": m.metadata.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>(),
                    })
                })
                .collect();
            data.insert("trace".into(), Value::Array(rendered));
        }
        self.close(slot, frame.at, data);
    }

    /// A step failed: the innermost open step gets the error, the steps
    /// around it are marked failed (called from `on-error` handling).
    pub fn failed(&mut self, e: &PolicyError, st: &State) {
        let error = json!({
            "status": e.status,
            "source": e.source,
            "reason": e.reason,
            "message": e.message,
            "scope": e.scope,
            "section": e.section,
            "path": e.path,
            "policyId": e.policy_id,
        });
        let mut recorded = false;
        while let Some(frame) = self.stack.pop() {
            let Some(slot) = frame.slot else {
                continue;
            };
            let mut data = Map::new();
            if recorded {
                data.insert("failed".into(), json!(true));
            } else {
                data = self.diff(frame.before, st);
                data.insert("error".into(), error.clone());
                recorded = true;
            }
            self.close(slot, frame.at, data);
        }
        if !recorded {
            // A failure outside any policy (reading the body, ...).
            let section = Section::from_name(&e.section).unwrap_or(st.section);
            let source = if e.source.is_empty() {
                "gateway"
            } else {
                e.source.as_str()
            };
            let entry = self.entry(source, "gateway", None, None);
            if let Some(slot) = self.push(section, entry) {
                let mut data = Map::new();
                data.insert("error".into(), error);
                self.close(slot, Instant::now(), data);
            }
        }
    }

    /// `forward-request` sends: the method, URL and headers as sent
    /// (headers the gateway added beyond the policies' — a backend entity's
    /// credentials — are masked whole, except the forwarding headers).
    pub fn backend_request(&mut self, method: &str, url: &str, sent: &HeaderMap, set: &Headers) {
        let url = Url::parse(url).map_or_else(|| url.to_string(), |u| self.url(&u));
        let headers = self.header_map(sent, |name| {
            set.contains(name) || FORWARDING.iter().any(|f| name.eq_ignore_ascii_case(f))
        });
        self.annotate(
            "request",
            json!({"method": method, "url": url, "headers": headers}),
        );
    }

    /// What the backend answered (or why it did not), and how long it took.
    pub fn backend_response(
        &mut self,
        resp: &Result<Response<Body>, GatewayError>,
        elapsed: Duration,
    ) {
        let value = match resp {
            Ok(r) => json!({
                "status": r.status().as_u16(),
                "headers": self.header_map(r.headers(), |_| true),
                "elapsedUs": elapsed.as_micros() as u64,
            }),
            Err(e) => json!({
                "error": {"status": e.status.as_u16(), "reason": e.reason, "message": e.message},
                "elapsedUs": elapsed.as_micros() as u64,
            }),
        };
        self.annotate("response", value);
    }

    /// Adds `key` to the data of the innermost open step.
    fn annotate(&mut self, key: &str, value: Value) {
        let Some((s, i)) = self.stack.iter().rev().find_map(|f| f.slot) else {
            return;
        };
        if let Some(data) = self.sections[s][i]
            .get_mut("data")
            .and_then(Value::as_object_mut)
        {
            data.insert(key.into(), value);
        }
    }

    fn close(&mut self, (s, i): (usize, usize), at: Instant, data: Map<String, Value>) {
        let Some(entry) = self.sections[s].get_mut(i).and_then(Value::as_object_mut) else {
            return;
        };
        entry.insert("durationUs".into(), json!(at.elapsed().as_micros() as u64));
        match entry.get_mut("data").and_then(Value::as_object_mut) {
            Some(d) => d.extend(data),
            None => {
                entry.insert("data".into(), Value::Object(data));
            }
        }
    }

    /// What a step changed: method, URL, headers, body sizes, status,
    /// variables.
    fn diff(&self, before: Option<Before>, st: &State) -> Map<String, Value> {
        let mut d = Map::new();
        let Some(b) = before else {
            return d;
        };
        let req = &st.ctx.request;
        if b.method != req.method {
            d.insert("method".into(), json!({"from": b.method, "to": req.method}));
        }
        let url = self.url(&req.url);
        if b.url != url {
            d.insert("url".into(), json!({"from": b.url, "to": url}));
        }
        if let Some(h) = self.header_diff(&b.headers, &req.message.headers.0) {
            d.insert("requestHeaders".into(), h);
        }
        let body = req.message.body.as_ref().map(|b| b.len());
        if b.body != body {
            d.insert("requestBody".into(), json!({"from": b.body, "to": body}));
        }
        match (b.response, &st.ctx.response) {
            (None, Some(r)) => {
                d.insert(
                    "responseStatus".into(),
                    json!({"from": null, "to": r.status}),
                );
            }
            (Some((status, headers, body)), Some(r)) => {
                if status != r.status {
                    d.insert(
                        "responseStatus".into(),
                        json!({"from": status, "to": r.status}),
                    );
                }
                if let Some(h) = self.header_diff(&headers, &r.message.headers.0) {
                    d.insert("responseHeaders".into(), h);
                }
                let now = r.message.body.as_ref().map(|b| b.len());
                if body != now {
                    d.insert("responseBody".into(), json!({"from": body, "to": now}));
                }
            }
            _ => {}
        }
        let vars = variables(st);
        if vars != b.variables {
            let set: Map<String, Value> = vars
                .iter()
                .filter(|v| !b.variables.contains(v))
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let removed: Vec<&String> = b
                .variables
                .iter()
                .filter(|(k, _)| !vars.iter().any(|(n, _)| n == k))
                .map(|(k, _)| k)
                .collect();
            let mut v = Map::new();
            if !set.is_empty() {
                v.insert("set".into(), Value::Object(set));
            }
            if !removed.is_empty() {
                v.insert("removed".into(), json!(removed));
            }
            d.insert("variables".into(), Value::Object(v));
        }
        d
    }

    fn header_diff(
        &self,
        before: &[(String, String)],
        after: &[(String, String)],
    ) -> Option<Value> {
        let joined = |hs: &[(String, String)], name: &str| -> String {
            hs.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let has = |hs: &[(String, String)], name: &str| {
            hs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut set = Map::new();
        for (k, _) in after {
            if set.keys().any(|n| n.eq_ignore_ascii_case(k)) {
                continue;
            }
            let now = joined(after, k);
            if !has(before, k) || joined(before, k) != now {
                set.insert(k.clone(), json!(self.header_value(k, &now)));
            }
        }
        let mut removed: Vec<&str> = Vec::new();
        for (k, _) in before {
            if !has(after, k) && !removed.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                removed.push(k);
            }
        }
        if set.is_empty() && removed.is_empty() {
            return None;
        }
        let mut out = Map::new();
        if !set.is_empty() {
            out.insert("set".into(), Value::Object(set));
        }
        if !removed.is_empty() {
            out.insert("removed".into(), json!(removed));
        }
        Some(Value::Object(out))
    }

    /// The trace document, secrets redacted, as JSON text.
    fn finish(mut self, resp: &Response<Body>, st: &State) -> String {
        // Steps still open (a failure inside on-error): close them.
        while let Some(frame) = self.stack.pop() {
            if let Some(slot) = frame.slot {
                let mut data = Map::new();
                data.insert("unfinished".into(), json!(true));
                self.close(slot, frame.at, data);
            }
        }
        let elapsed = self.started.elapsed();
        let last_error = st.ctx.last_error.as_ref().map(|e| {
            json!({
                "source": e.source,
                "reason": e.reason,
                "message": e.message,
                "scope": e.scope,
                "section": e.section,
                "path": e.path,
                "policyId": e.policy_id,
            })
        });
        let [inbound, backend, outbound, on_error] = std::mem::take(&mut self.sections);
        let mut doc = json!({
            "traceId": self.id,
            "apiId": self.api_id,
            "operationId": self.operation_id,
            "startedAt": humantime::format_rfc3339_micros(self.started_at).to_string(),
            "elapsedMs": elapsed.as_secs_f64() * 1000.0,
            "response": {
                "status": resp.status().as_u16(),
                "headers": self.header_map(resp.headers(), |_| true),
            },
            "lastError": last_error,
            "traceEntries": {
                "inbound": inbound,
                "backend": backend,
                "outbound": outbound,
                "on-error": on_error,
            },
            "droppedEntries": self.dropped,
        });
        self.redactor.redact_json(&mut doc);
        doc.to_string()
    }
}

/// The variables as (name, capped preview), sorted by name.
fn variables(st: &State) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = st
        .ctx
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), capped(&v.to_display())))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_print_as_dotnet_does() {
        assert_eq!(timespan(Duration::from_micros(1234)), "00:00:00.0012340");
        assert_eq!(timespan(Duration::from_secs(3723)), "01:02:03.0000000");
    }

    #[test]
    fn long_values_are_capped() {
        assert_eq!(capped("abc"), "abc");
        let long = "x".repeat(MAX_TEXT + 10);
        assert_eq!(capped(&long).chars().count(), MAX_TEXT + 1);
    }
}
