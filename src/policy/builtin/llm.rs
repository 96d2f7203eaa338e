//! The LLM policies: `<llm-token-limit>` / `<azure-openai-token-limit>`
//! (one schema) and `<llm-emit-token-metric>` /
//! `<azure-openai-emit-token-metric>` (one schema). Sections: inbound.
//!
//! **Token limits.** One counter per `counter-key` value across all scopes
//! (like `rate-limit-by-key`), in the gateway's
//! [`Counters`](crate::policy::counters::Counters): `tokens-per-minute` is
//! a 60 s sliding window whose hits are tokens; `token-quota` is a fixed
//! window of `token-quota-period` (`Hourly`, `Daily`, `Weekly` from Monday
//! 00:00 UTC, `Monthly` as 30 days, `Yearly` as 365 days, all aligned to
//! the Unix epoch in UTC; `Indefinite`: one window for ever). When the
//! policy runs it checks that the counters have room for the prompt
//! estimate (at least one token): out of tokens per minute → 429 "Token
//! limit is exceeded. Try again in N seconds." with `Retry-After` (or
//! `retry-after-header-name`); out of quota → 403 "Token quota is
//! exceeded. Quota will be replenished in hh:mm:ss." with `Retry-After`.
//! The tokens are charged when the response is known ([`settle`], called
//! by the pipeline before the response is written; [`tap`] for streams):
//! the `usage` object of
//! the response — OpenAI chat/completions (`prompt_tokens`,
//! `completion_tokens`, `total_tokens`), the Responses API and Anthropic
//! messages (`input_tokens`, `output_tokens`) — or, for a streamed
//! response (`"stream": true` in the request or a `text/event-stream`
//! response), the usage of a final usage event when the stream carries one,
//! else the estimate: the prompt estimate plus the streamed text's
//! estimate. Concurrent requests may overshoot a limit (as in APIM).
//!
//! **Prompt estimate** (`estimate-prompt-tokens="true"`, and always for
//! streaming): about 4 characters per token over the request's text —
//! `messages[].content` (strings or `text` parts), `system`, `prompt`,
//! `input` (strings, or items with `content`) — plus 4 tokens per message.
//! With `estimate-prompt-tokens="false"` nothing is reserved up front:
//! only actual usage counts, so one request may pass a nearly exhausted
//! limit. `ignore-prompt="true"` counts completion tokens only.
//! `prompt-type` is accepted (the request's shape decides).
//!
//! **Reporting.** `tokens-consumed-variable-name` holds the prompt
//! estimate (or 0) while the request runs. For a JSON response (buffered,
//! capped at the gateway's 16 MiB) the charge happens before the response
//! is written: `tokens-consumed-header-name`,
//! `remaining-tokens-header-name` and `remaining-quota-tokens-header-name`
//! carry the charged usage and what is left after it, and their variables
//! are set then. A `text/event-stream` response is not buffered: it
//! streams through a [`UsageTap`] that reads its events as they pass and
//! charges when the stream ends (or the client goes away); its headers
//! report the prompt estimate as consumed and the tokens left minus that
//! estimate.
//!
//! **Token metrics.** `llm-emit-token-metric` records, after the response,
//! `Total Tokens`, `Prompt Tokens` and `Completion Tokens` (or the one
//! `value-type` names) into the gateway's metrics registry under
//! `namespace` (default "API Management") with its dimensions (evaluated
//! when the policy runs; default dimensions as in `emit-metric`).

use super::counting::{ceil_secs, whole};
use super::emit_metric::{self, Dimension};
use super::quota::timespan;
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::Value;
use crate::policy::counters::{Counters, Quota, QuotaLimits, Rate, Window};
use crate::policy::xml::Element;
use serde_json::Value as Json;
use std::time::Duration;

/// The sections `llm-token-limit` may appear in.
pub const LIMIT_SECTIONS: &[Section] = &[Section::Inbound];
/// The sections `llm-emit-token-metric` may appear in.
pub const METRIC_SECTIONS: &[Section] = &[Section::Inbound];

const MINUTE: Duration = Duration::from_secs(60);

/// Token usage of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
}

/// What the request's body says (computed once per request).
#[derive(Debug, Clone, Copy, Default)]
struct Prompt {
    estimate: u64,
    streaming: bool,
}

/// Header and variable names of one token-limit policy, evaluated.
#[derive(Debug, Default)]
struct Names {
    consumed_header: Option<String>,
    consumed_variable: Option<String>,
    remaining_header: Option<String>,
    remaining_variable: Option<String>,
    quota_header: Option<String>,
    quota_variable: Option<String>,
}

#[derive(Debug)]
struct Charge {
    tpm: Option<(String, u64)>,
    quota: Option<(String, u64, Window)>,
    ignore_prompt: bool,
    names: Names,
}

#[derive(Debug)]
struct Emit {
    namespace: String,
    dimensions: Vec<(String, String)>,
    value_type: String,
    ignore_prompt: bool,
}

/// One request's token work left for the end of the request.
#[derive(Debug, Default)]
pub struct Pending {
    prompt: Option<Prompt>,
    charges: Vec<Charge>,
    emits: Vec<Emit>,
    /// Headers for the final response when a streamed body is tapped.
    headers: Vec<(String, String)>,
}

/// Whether this request waits for token usage (a token limit or token
/// metric ran): the pipeline then reads the backend's response — buffered
/// (capped) when it is JSON, tapped as it streams when it is
/// `text/event-stream`.
pub fn wants_usage(st: &State) -> bool {
    !st.llm.charges.is_empty() || !st.llm.emits.is_empty()
}

/// About 4 characters per token, rounded up.
pub fn tokens_of_chars(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

fn text_len(v: &Json) -> usize {
    match v {
        Json::String(s) => s.chars().count(),
        Json::Array(parts) => parts.iter().map(text_len).sum(),
        Json::Object(o) => ["text", "content", "input_text"]
            .iter()
            .filter_map(|k| o.get(*k))
            .map(text_len)
            .sum(),
        _ => 0,
    }
}

/// The prompt estimate of a request body (0 when it is not JSON).
pub fn estimate_prompt(body: &[u8]) -> (u64, bool) {
    let Ok(v) = serde_json::from_slice::<Json>(body) else {
        return (0, false);
    };
    let streaming = v.get("stream").and_then(Json::as_bool).unwrap_or(false);
    let mut chars = 0;
    let mut messages = 0u64;
    if let Some(ms) = v.get("messages").and_then(Json::as_array) {
        for m in ms {
            messages += 1;
            chars += m.get("content").map_or(0, text_len);
        }
    }
    for key in ["system", "prompt"] {
        chars += v.get(key).map_or(0, text_len);
    }
    match v.get("input") {
        Some(Json::Array(items)) => {
            for i in items {
                if i.is_object() {
                    messages += 1;
                }
                chars += text_len(i);
            }
        }
        Some(other) => chars += text_len(other),
        None => {}
    }
    (tokens_of_chars(chars) + 4 * messages, streaming)
}

fn num(v: &Json, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| v.get(*k).and_then(Json::as_u64))
}

/// The `usage` object's counts (OpenAI, Responses API, Anthropic).
pub fn parse_usage(u: &Json) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    let prompt = num(u, &["prompt_tokens", "input_tokens"]);
    let completion = num(u, &["completion_tokens", "output_tokens"]);
    let total = num(u, &["total_tokens"]);
    if prompt.is_none() && completion.is_none() && total.is_none() {
        return None;
    }
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    Some(Usage {
        prompt: p,
        completion: c,
        total: total.unwrap_or(p + c),
    })
}

fn usage_in(v: &Json) -> Option<Usage> {
    v.get("usage")
        .and_then(parse_usage)
        .or_else(|| v.pointer("/message/usage").and_then(parse_usage))
        .or_else(|| v.pointer("/response/usage").and_then(parse_usage))
}

/// Streamed text of one event (OpenAI chat/completions, Responses API,
/// Anthropic).
fn streamed_chars(v: &Json) -> usize {
    let mut n = 0;
    if let Some(choices) = v.get("choices").and_then(Json::as_array) {
        for c in choices {
            n += c.pointer("/delta/content").map_or(0, text_len);
            n += c.get("text").map_or(0, text_len);
        }
    }
    match v.get("delta") {
        Some(Json::String(s)) => n += s.chars().count(),
        Some(d @ Json::Object(_)) => n += d.get("text").map_or(0, text_len),
        _ => {}
    }
    n
}

/// Reads a server-sent-event stream as it passes: the usage its events
/// report (the largest counts seen: Anthropic reports input and output in
/// separate events) and the streamed text's length.
#[derive(Debug, Default)]
pub struct SseScan {
    partial: Vec<u8>,
    usage: Option<Usage>,
    chars: usize,
}

/// Longest event line kept while waiting for its end.
const MAX_LINE: usize = 1 << 20;

impl SseScan {
    pub fn feed(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                self.line(&rest[..nl]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..nl]);
                self.line(&line);
            }
            rest = &rest[nl + 1..];
        }
        if self.partial.len() + rest.len() <= MAX_LINE {
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.clear();
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<Json>(data.trim_ascii()) else {
            return;
        };
        self.chars += streamed_chars(&v);
        if let Some(u) = usage_in(&v) {
            let cur = self.usage.unwrap_or_default();
            let prompt = cur.prompt.max(u.prompt);
            let completion = cur.completion.max(u.completion);
            self.usage = Some(Usage {
                prompt,
                completion,
                total: cur.total.max(u.total).max(prompt + completion),
            });
        }
    }

    /// The reported usage, and the streamed text's token estimate.
    pub fn result(mut self) -> (Option<Usage>, u64) {
        let rest = std::mem::take(&mut self.partial);
        self.line(&rest);
        (self.usage, tokens_of_chars(self.chars))
    }

    /// The usage to charge: reported, else the prompt estimate plus the
    /// streamed text's estimate.
    fn usage(self, prompt_estimate: u64) -> Usage {
        match self.result() {
            (Some(u), _) => u,
            (None, completion) => Usage {
                prompt: prompt_estimate,
                completion,
                total: prompt_estimate + completion,
            },
        }
    }
}

/// [`SseScan`] over a whole body.
pub fn parse_sse(body: &[u8]) -> (Option<Usage>, u64) {
    let mut scan = SseScan::default();
    scan.feed(body);
    scan.result()
}

fn prompt(st: &mut State) -> Prompt {
    if let Some(p) = st.llm.prompt {
        return p;
    }
    let (estimate, streaming) = st
        .ctx
        .request
        .message
        .body
        .as_ref()
        .map_or((0, false), |b| estimate_prompt(b));
    let p = Prompt {
        estimate,
        streaming,
    };
    st.llm.prompt = Some(p);
    p
}

/// The usage of this request's exchange (see the module docs).
fn usage(st: &State, p: Prompt) -> Usage {
    let Some(resp) = st.ctx.response.as_ref() else {
        return Usage {
            prompt: p.estimate,
            completion: 0,
            total: p.estimate,
        };
    };
    let sse = resp
        .message
        .headers
        .joined("content-type")
        .is_some_and(|c| c.to_ascii_lowercase().contains("text/event-stream"));
    let body = resp.message.body.as_deref().unwrap_or(&[]);
    if sse || p.streaming {
        if !sse {
            if let Some(u) = serde_json::from_slice::<Json>(body)
                .ok()
                .as_ref()
                .and_then(usage_in)
            {
                return u;
            }
        }
        let mut scan = SseScan::default();
        scan.feed(body);
        return scan.usage(p.estimate);
    }
    serde_json::from_slice::<Json>(body)
        .ok()
        .as_ref()
        .and_then(usage_in)
        .unwrap_or_default()
}

fn name(v: &Option<Val>, st: &State) -> Result<Option<String>, PolicyError> {
    match v {
        None => Ok(None),
        Some(v) => {
            let t = v.text(st)?;
            let t = t.trim();
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
    }
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Tokens left in a quota window (binary search over the public check).
fn quota_left(c: &Counters, key: &str, quota: u64, w: Window) -> u64 {
    let limits = QuotaLimits {
        calls: Some(quota),
        bytes: None,
    };
    let fits = |k: u64| matches!(c.quota(key, limits, w, k, 0, false), Quota::Allowed);
    if !fits(0) {
        return 0;
    }
    let (mut lo, mut hi) = (0u64, quota);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

fn window(period: &str) -> Window {
    let secs = match period {
        "Hourly" => 3600.0,
        "Daily" => 86_400.0,
        "Weekly" => 604_800.0,
        "Monthly" => 30.0 * 86_400.0,
        "Yearly" => 365.0 * 86_400.0,
        _ => 0.0,
    };
    Window {
        period: secs,
        // 1970-01-05 was a Monday.
        anchor: Some(if period == "Weekly" {
            4.0 * 86_400.0
        } else {
            0.0
        }),
    }
}

/// `<llm-token-limit>` / `<azure-openai-token-limit>`.
#[derive(Debug)]
pub struct TokenLimit {
    key: Val,
    tpm: Option<Val>,
    quota: Option<Val>,
    period: String,
    estimate: bool,
    ignore_prompt: bool,
    retry_after_header: Option<Val>,
    retry_after_variable: Option<Val>,
    remaining_header: Option<Val>,
    remaining_variable: Option<Val>,
    quota_header: Option<Val>,
    quota_variable: Option<Val>,
    consumed_header: Option<Val>,
    consumed_variable: Option<Val>,
}

impl TokenLimit {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<TokenLimit> {
        let Some(key) = cx.attr(e, "counter-key") else {
            cx.error(e.span.start, format!("<{}> needs counter-key", e.name));
            return None;
        };
        let tpm = cx.attr(e, "tokens-per-minute");
        let quota = cx.attr(e, "token-quota");
        if tpm.is_none() && quota.is_none() {
            cx.error(
                e.span.start,
                format!("<{}> needs tokens-per-minute or token-quota", e.name),
            );
            return None;
        }
        let period = cx
            .literal(e, "token-quota-period")
            .unwrap_or_else(|| "Indefinite".into());
        let estimate = cx.flag(e, "estimate-prompt-tokens", false);
        let ignore_prompt = cx.flag(e, "ignore-prompt", false);
        cx.note_request_body();
        Some(TokenLimit {
            key,
            tpm,
            quota,
            period,
            estimate,
            ignore_prompt,
            retry_after_header: cx.attr(e, "retry-after-header-name"),
            retry_after_variable: cx.attr(e, "retry-after-variable-name"),
            remaining_header: cx.attr(e, "remaining-tokens-header-name"),
            remaining_variable: cx.attr(e, "remaining-tokens-variable-name"),
            quota_header: cx.attr(e, "remaining-quota-tokens-header-name"),
            quota_variable: cx.attr(e, "remaining-quota-tokens-variable-name"),
            consumed_header: cx.attr(e, "tokens-consumed-header-name"),
            consumed_variable: cx.attr(e, "tokens-consumed-variable-name"),
        })
    }

    fn refused(
        &self,
        st: &mut State,
        mut err: PolicyError,
        secs: u64,
    ) -> Result<PolicyError, PolicyError> {
        let api = st.ctx.api.as_ref().map_or("", |a| a.id.as_str());
        st.telemetry.prometheus.rejected(api, "llm-token-limit");
        let header = name(&self.retry_after_header, st)?.unwrap_or_else(|| "Retry-After".into());
        err.headers.push((header, secs.to_string()));
        if let Some(n) = name(&self.retry_after_variable, st)? {
            st.ctx.variables.insert(n, int(secs));
        }
        if let Some(n) = name(&self.consumed_variable, st)? {
            st.ctx.variables.insert(n, int(0));
        }
        Ok(err)
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let key = self.key.text(st)?;
        let p = prompt(st);
        let reserve = if (self.estimate || p.streaming) && !self.ignore_prompt {
            p.estimate
        } else {
            0
        };
        let need = reserve.max(1);
        let mut tpm = None;
        let mut remaining = None;
        if let Some(v) = &self.tpm {
            let limit = whole(v, st, "tokens-per-minute")?;
            let k = format!("token-limit\0tpm\0{key}");
            match st.counters.rate(&k, limit, MINUTE, need, false) {
                Rate::Refused { retry_after } => {
                    let secs = ceil_secs(retry_after);
                    let err = PolicyError::new(
                        429,
                        "TokenLimitExceeded",
                        format!("Token limit is exceeded. Try again in {secs} seconds."),
                    );
                    return Err(self.refused(st, err, secs)?);
                }
                Rate::Allowed { remaining: r } => remaining = Some(r.saturating_sub(reserve)),
            }
            tpm = Some((k, limit));
        }
        let mut quota = None;
        if let Some(v) = &self.quota {
            let limit = whole(v, st, "token-quota")?;
            let k = format!("token-limit\0quota\0{key}");
            let w = window(&self.period);
            let limits = QuotaLimits {
                calls: Some(limit),
                bytes: None,
            };
            if let Quota::Refused { renews_in, .. } =
                st.counters.quota(&k, limits, w, need, 0, false)
            {
                let (message, secs) = match renews_in {
                    Some(d) => (
                        format!(
                            "Token quota is exceeded. Quota will be replenished in {}.",
                            timespan(d)
                        ),
                        ceil_secs(d),
                    ),
                    None => ("Token quota is exceeded.".to_string(), 0),
                };
                let err = PolicyError::new(403, "TokenQuotaExceeded", message);
                let err = if renews_in.is_some() {
                    self.refused(st, err, secs)?
                } else {
                    err
                };
                return Err(err);
            }
            quota = Some((k, limit, w));
        }
        let names = Names {
            consumed_header: name(&self.consumed_header, st)?,
            consumed_variable: name(&self.consumed_variable, st)?,
            remaining_header: name(&self.remaining_header, st)?,
            remaining_variable: name(&self.remaining_variable, st)?,
            quota_header: name(&self.quota_header, st)?,
            quota_variable: name(&self.quota_variable, st)?,
        };
        if let Some(n) = &names.consumed_variable {
            st.ctx.variables.insert(n.clone(), int(reserve));
        }
        if let (Some(n), Some(r)) = (&names.remaining_variable, remaining) {
            st.ctx.variables.insert(n.clone(), int(r));
        }
        st.llm.charges.push(Charge {
            tpm,
            quota,
            ignore_prompt: self.ignore_prompt,
            names,
        });
        Ok(Outcome::Continue)
    }
}

/// `<llm-emit-token-metric>` / `<azure-openai-emit-token-metric>`.
#[derive(Debug)]
pub struct EmitTokenMetric {
    namespace: String,
    value_type: String,
    ignore_prompt: bool,
    dimensions: Vec<Dimension>,
}

impl EmitTokenMetric {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<EmitTokenMetric> {
        let namespace = cx
            .literal(e, "namespace")
            .unwrap_or_else(|| emit_metric::DEFAULT_NAMESPACE.to_string());
        let value_type = cx.literal(e, "value-type").unwrap_or_else(|| "all".into());
        let ignore_prompt = cx.flag(e, "ignore-prompt", false);
        let dimensions = emit_metric::dimensions(cx, e, 10);
        cx.note_request_body();
        Some(EmitTokenMetric {
            namespace,
            value_type,
            ignore_prompt,
            dimensions,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        prompt(st);
        let dimensions = emit_metric::evaluate(&self.dimensions, st)?;
        st.llm.emits.push(Emit {
            namespace: self.namespace.clone(),
            dimensions,
            value_type: self.value_type.clone(),
            ignore_prompt: self.ignore_prompt,
        });
        Ok(Outcome::Continue)
    }
}

/// What a charge reports: response headers and variables.
#[derive(Debug, Default)]
struct Report {
    headers: Vec<(String, String)>,
    variables: Vec<(String, u64)>,
}

/// Charges `u` to the counters of `charges` and records the metrics of
/// `emits`.
fn charge(
    counters: &Counters,
    telemetry: &crate::telemetry::Telemetry,
    u: Usage,
    charges: &[Charge],
    emits: &[Emit],
) -> Report {
    let mut out = Report::default();
    for c in charges {
        let total = if c.ignore_prompt {
            u.completion
        } else {
            u.total
        };
        let mut left_tpm = None;
        if let Some((k, limit)) = &c.tpm {
            counters.rate_add(k, MINUTE, total);
            left_tpm = Some(match counters.rate(k, *limit, MINUTE, 0, false) {
                Rate::Allowed { remaining } => remaining,
                Rate::Refused { .. } => 0,
            });
        }
        let mut left_quota = None;
        if let Some((k, limit, w)) = &c.quota {
            counters.quota_add(k, *w, total, 0);
            if c.names.quota_header.is_some() || c.names.quota_variable.is_some() {
                left_quota = Some(quota_left(counters, k, *limit, *w));
            }
        }
        report(&mut out, &c.names, Some(total), left_tpm, left_quota);
    }
    for e in emits {
        let prompt = if e.ignore_prompt { 0 } else { u.prompt };
        let total = if e.ignore_prompt {
            u.completion
        } else {
            u.total
        };
        let metrics = [
            ("total-tokens", "Total Tokens", total),
            ("prompt-tokens", "Prompt Tokens", prompt),
            ("completion-tokens", "Completion Tokens", u.completion),
        ];
        for (kind, metric, value) in metrics {
            if e.value_type == "all" || e.value_type == kind {
                telemetry
                    .metrics
                    .record(&e.namespace, metric, e.dimensions.clone(), value as f64);
            }
        }
    }
    out
}

/// Adds the consumed / remaining / remaining-quota values to `out` under
/// the names the policy gave.
fn report(
    out: &mut Report,
    n: &Names,
    consumed: Option<u64>,
    left_tpm: Option<u64>,
    left_quota: Option<u64>,
) {
    for (h, v, value) in [
        (&n.consumed_header, &n.consumed_variable, consumed),
        (&n.remaining_header, &n.remaining_variable, left_tpm),
        (&n.quota_header, &n.quota_variable, left_quota),
    ] {
        let Some(value) = value else {
            continue;
        };
        if let Some(h) = h {
            out.headers.push((h.clone(), value.to_string()));
        }
        if let Some(v) = v {
            out.variables.push((v.clone(), value));
        }
    }
}

/// Charges the tokens of this request and records the token metrics; adds
/// the reporting headers and variables. The pipeline calls it once, before
/// the response is written. (A tapped stream charges when it ends.)
pub fn settle(st: &mut State) {
    let pending = std::mem::take(&mut st.llm);
    let mut headers = pending.headers;
    if !pending.charges.is_empty() || !pending.emits.is_empty() {
        let p = pending.prompt.unwrap_or_default();
        let u = usage(st, p);
        let r = charge(
            &st.counters,
            &st.telemetry,
            u,
            &pending.charges,
            &pending.emits,
        );
        for (k, v) in r.variables {
            st.ctx.variables.insert(k, int(v));
        }
        headers.extend(r.headers);
    }
    if headers.is_empty() {
        return;
    }
    if let Some(r) = st.ctx.response.as_mut() {
        for (k, v) in headers {
            r.message.headers.set(&k, v);
        }
    }
}

/// The work a tapped stream does when it ends.
struct Finish {
    counters: std::sync::Arc<Counters>,
    telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    prompt_estimate: u64,
    charges: Vec<Charge>,
    emits: Vec<Emit>,
}

/// A streamed (server-sent events) response body on its way to the
/// client: its events are read as they pass, and the tokens are charged
/// when it ends — or when it is dropped (the client went away).
pub struct UsageTap<B> {
    inner: B,
    scan: SseScan,
    finish: Option<Finish>,
}

impl<B> UsageTap<B> {
    fn finish(&mut self) {
        if let Some(f) = self.finish.take() {
            let u = std::mem::take(&mut self.scan).usage(f.prompt_estimate);
            charge(&f.counters, &f.telemetry, u, &f.charges, &f.emits);
        }
    }
}

impl<B> Drop for UsageTap<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<B> http_body::Body for UsageTap<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.scan.feed(d);
                }
            }
            std::task::Poll::Ready(None) => this.finish(),
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Taps a streamed response: the request's token work moves into the
/// body, which charges it when the stream ends. Until then the response
/// reports the prompt estimate as consumed, and the tokens left before
/// this request's charge minus that estimate.
pub fn tap<B>(st: &mut State, body: B) -> UsageTap<B> {
    let pending = std::mem::take(&mut st.llm);
    let p = pending.prompt.unwrap_or_default();
    let mut out = Report {
        headers: pending.headers,
        variables: Vec::new(),
    };
    for c in &pending.charges {
        let reserve = if c.ignore_prompt { 0 } else { p.estimate };
        let n = &c.names;
        let left_tpm =
            c.tpm.as_ref().map(
                |(k, limit)| match st.counters.rate(k, *limit, MINUTE, 0, false) {
                    Rate::Allowed { remaining } => remaining.saturating_sub(reserve),
                    Rate::Refused { .. } => 0,
                },
            );
        let left_quota = c.quota.as_ref().and_then(|(k, limit, w)| {
            (n.quota_header.is_some() || n.quota_variable.is_some())
                .then(|| quota_left(&st.counters, k, *limit, *w).saturating_sub(reserve))
        });
        report(&mut out, n, Some(reserve), left_tpm, left_quota);
    }
    for (k, v) in out.variables {
        st.ctx.variables.insert(k, int(v));
    }
    st.llm.headers = out.headers;
    st.llm.prompt = pending.prompt;
    UsageTap {
        inner: body,
        scan: SseScan::default(),
        finish: Some(Finish {
            counters: st.counters.clone(),
            telemetry: st.telemetry.clone(),
            prompt_estimate: p.estimate,
            charges: pending.charges,
            emits: pending.emits,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_prompts() {
        let body = br#"{"messages":[{"role":"user","content":"abcdefgh"},{"role":"user","content":[{"type":"text","text":"abcd"}]}],"stream":true}"#;
        assert_eq!(estimate_prompt(body), (3 + 8, true));
        assert_eq!(estimate_prompt(br#"{"prompt":"abcdefghi"}"#), (3, false));
        assert_eq!(estimate_prompt(br#"{"input":"abcd"}"#), (1, false));
        assert_eq!(estimate_prompt(b"not json"), (0, false));
    }

    #[test]
    fn reads_usage_shapes() {
        let openai = serde_json::json!({"usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}});
        assert_eq!(
            usage_in(&openai),
            Some(Usage {
                prompt: 5,
                completion: 7,
                total: 12
            })
        );
        let anthropic = serde_json::json!({"usage": {"input_tokens": 3, "output_tokens": 4}});
        assert_eq!(
            usage_in(&anthropic),
            Some(Usage {
                prompt: 3,
                completion: 4,
                total: 7
            })
        );
        let sse =
            b"data: {\"choices\":[{\"delta\":{\"content\":\"abcdefgh\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(parse_sse(sse), (None, 2));
        let anth = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":6}}\n\n";
        assert_eq!(
            parse_sse(anth).0,
            Some(Usage {
                prompt: 10,
                completion: 6,
                total: 16
            })
        );
    }

    #[test]
    fn quota_windows() {
        assert_eq!(window("Hourly").period, 3600.0);
        assert_eq!(window("Indefinite").period, 0.0);
        let c = Counters::local();
        let w = window("Daily");
        c.quota_add("k", w, 30, 0);
        assert_eq!(quota_left(&c, "k", 100, w), 70);
    }
}
