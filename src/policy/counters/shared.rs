//! Rate limits and quotas shared by every gateway using one Redis.
//!
//! Each check of a counting policy is one `EVALSHA` of a Lua script (the
//! script is loaded on `NOSCRIPT`), atomic in Redis, with Redis's `TIME`
//! as the clock so nodes agree on windows:
//!
//! - [`RATE`]: per counter, a list of `"<ms>:<hits>"` entries (the sliding
//!   log of the in-process store, hits closer than a thousandth of the
//!   period sharing an entry) and a hash `{n: total, p: longest period}`.
//!   All counters of the policy are checked; only when all allow (and the
//!   call is recorded now) are the hits added. Keys expire with the window.
//! - [`QUOTA`]: per counter, a hash `{s: window start ms, c: calls,
//!   b: bytes}`, windows aligned to the anchor as in process; the key
//!   expires when its window ends (a lifetime quota never expires).
//!
//! Keys: `[redis] key_prefix` + `rate:` / `rate-n:` / `quota:` + the
//! counter key. Replies are flat integer arrays, parsed by
//! [`parse_rate_reply`] and [`parse_quota_reply`].
//!
//! When Redis cannot answer (down, timed out, an error reply), the call is
//! counted by the in-process store instead and `crate::redis` logs it
//! loudly: counting never stops and never fails the request. Deferred
//! increments (after the response) are spawned so they never delay it.
//! `limit-concurrency` is not shared: a node that dies holding permits
//! would leak them in Redis, and APIM counts concurrency per gateway.

use super::{Local, Quota, QuotaLimits, Rate, Window};
use crate::redis::Redis;
use ::redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Largest number passed to Lua (doubles are exact up to 2^53).
const MAX: u64 = 1 << 53;

/// One rate-limit counter of a check.
#[derive(Debug, Clone)]
pub struct RateCheck {
    pub key: String,
    pub limit: u64,
    pub period: Duration,
    /// Hits this call adds (0: already counted by this request).
    pub add: u64,
}

/// One quota counter of a check.
#[derive(Debug, Clone)]
pub struct QuotaCheck {
    pub key: String,
    pub limits: QuotaLimits,
    pub window: Window,
    pub calls: u64,
    /// Count the calls now (when all allow); otherwise the caller defers.
    pub record: bool,
}

static RATE: LazyLock<Script> = LazyLock::new(|| Script::new(RATE_LUA));
static QUOTA: LazyLock<Script> = LazyLock::new(|| Script::new(QUOTA_LUA));

/// KEYS: (log, meta) per counter. ARGV: record, then (limit, period ms,
/// add) per counter. Returns (1, remaining before this call) or (0, retry
/// after ms) per counter.
const RATE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local record = ARGV[1] == '1'
local function split(e)
  local sp = string.find(e, ':', 1, true)
  return tonumber(string.sub(e, 1, sp - 1)), tonumber(string.sub(e, sp + 1))
end
local out, st, all = {}, {}, true
for i = 1, #KEYS / 2 do
  local log, meta = KEYS[2 * i - 1], KEYS[2 * i]
  local limit = tonumber(ARGV[3 * i - 1])
  local period = tonumber(ARGV[3 * i])
  local add = tonumber(ARGV[3 * i + 1])
  local p = tonumber(redis.call('HGET', meta, 'p') or '0')
  if p < period then p = period end
  local total = tonumber(redis.call('HGET', meta, 'n') or '0')
  while true do
    local head = redis.call('LINDEX', log, 0)
    if not head then total = 0 break end
    local ts, c = split(head)
    if now - ts < p then break end
    redis.call('LPOP', log)
    total = total - c
  end
  local count, entries = total, nil
  if p ~= period then
    entries = redis.call('LRANGE', log, 0, -1)
    count = 0
    for _, e in ipairs(entries) do
      local ts, c = split(e)
      if now - ts < period then count = count + c end
    end
  end
  if count + add > limit then
    all = false
    local need, wait = count + add - limit, period
    entries = entries or redis.call('LRANGE', log, 0, -1)
    for _, e in ipairs(entries) do
      local ts, c = split(e)
      if now - ts < period then
        if need <= c then wait = period - (now - ts) break end
        need = need - c
      end
    end
    out[2 * i - 1], out[2 * i] = 0, wait
  else
    out[2 * i - 1], out[2 * i] = 1, limit - count
  end
  st[i] = {log, meta, p, total, period, add}
end
for i, s in ipairs(st) do
  local log, meta, p, total, period, add = s[1], s[2], s[3], s[4], s[5], s[6]
  if all and record and add > 0 then
    local tail = redis.call('LINDEX', log, -1)
    local merged = false
    if tail then
      local ts, c = split(tail)
      if (now - ts) * 1000 < period then
        redis.call('LSET', log, -1, string.format('%d:%d', ts, c + add))
        merged = true
      end
    end
    if not merged then redis.call('RPUSH', log, string.format('%d:%d', now, add)) end
    total = total + add
  end
  if total > 0 then
    redis.call('HSET', meta, 'n', string.format('%d', total), 'p', string.format('%d', p))
    redis.call('PEXPIRE', meta, p)
    redis.call('PEXPIRE', log, p)
  else
    redis.call('DEL', meta, log)
  end
end
return out
"#;

/// KEYS: one hash per counter. ARGV per counter: period ms (0: for ever),
/// has anchor, anchor ms, call limit (-1: none), byte limit (-1: none),
/// calls, bytes, record. Returns (allowed, bandwidth, renews in ms or -1)
/// per counter.
const QUOTA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, st, all = {}, {}, true
for i = 1, #KEYS do
  local b = 8 * (i - 1)
  local period, has, anchor = tonumber(ARGV[b + 1]), ARGV[b + 2] == '1', tonumber(ARGV[b + 3])
  local lc, lb = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local calls, bytes, rec = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7]), ARGV[b + 8] == '1'
  local v = redis.call('HMGET', KEYS[i], 's', 'c', 'b')
  local start, c, by = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if not start then
    if has and period > 0 then start = anchor + math.floor((now - anchor) / period) * period
    elseif has then start = anchor
    else start = now end
    c, by = 0, 0
  end
  if period > 0 and now >= start + period then
    start = start + math.floor((now - start) / period) * period
    c, by = 0, 0
  end
  local renews = -1
  if period > 0 then renews = math.max(start + period - now, 0) end
  if lc >= 0 and c + calls > lc then
    all = false
    out[3 * i - 2], out[3 * i - 1], out[3 * i] = 0, 0, renews
  elseif lb >= 0 and by >= lb then
    all = false
    out[3 * i - 2], out[3 * i - 1], out[3 * i] = 0, 1, renews
  else
    out[3 * i - 2], out[3 * i - 1], out[3 * i] = 1, 0, renews
  end
  st[i] = {start, c, by, period, calls, bytes, rec}
end
for i, s in ipairs(st) do
  local start, c, by, period = s[1], s[2], s[3], s[4]
  if all and s[7] then c, by = c + s[5], by + s[6] end
  redis.call('HSET', KEYS[i], 's', string.format('%d', start), 'c', string.format('%d', c), 'b', string.format('%d', by))
  if period > 0 then
    redis.call('PEXPIRE', KEYS[i], math.max(start + period - now, 1))
  else
    redis.call('PERSIST', KEYS[i])
  end
end
return out
"#;

/// Parses the rate script's reply: one `(allowed, value)` pair per counter.
pub fn parse_rate_reply(reply: &[i64], counters: usize) -> Option<Vec<Rate>> {
    if reply.len() != 2 * counters {
        return None;
    }
    Some(
        reply
            .chunks_exact(2)
            .map(|p| match p[0] {
                1 => Rate::Allowed {
                    remaining: u64::try_from(p[1]).unwrap_or(0),
                },
                _ => Rate::Refused {
                    retry_after: Duration::from_millis(u64::try_from(p[1]).unwrap_or(0)),
                },
            })
            .collect(),
    )
}

/// Parses the quota script's reply: `(allowed, bandwidth, renews ms)` per
/// counter.
pub fn parse_quota_reply(reply: &[i64], counters: usize) -> Option<Vec<Quota>> {
    if reply.len() != 3 * counters {
        return None;
    }
    Some(
        reply
            .chunks_exact(3)
            .map(|t| match t[0] {
                1 => Quota::Allowed,
                _ => Quota::Refused {
                    bandwidth: t[1] == 1,
                    renews_in: u64::try_from(t[2]).ok().map(Duration::from_millis),
                },
            })
            .collect(),
    )
}

fn num(n: u64) -> i64 {
    n.min(MAX) as i64
}

fn ms(d: Duration) -> i64 {
    num(u64::try_from(d.as_millis()).unwrap_or(MAX)).max(1)
}

fn rate_call(checks: &[RateCheck], record: bool) -> (Vec<String>, Vec<i64>) {
    let mut keys = Vec::with_capacity(2 * checks.len());
    let mut args = Vec::with_capacity(1 + 3 * checks.len());
    args.push(i64::from(record));
    for c in checks {
        keys.push(format!("rate:{}", c.key));
        keys.push(format!("rate-n:{}", c.key));
        args.extend([num(c.limit), ms(c.period), num(c.add)]);
    }
    (keys, args)
}

fn quota_call(checks: &[QuotaCheck], bytes: u64) -> (Vec<String>, Vec<i64>) {
    let mut keys = Vec::with_capacity(checks.len());
    let mut args = Vec::with_capacity(8 * checks.len());
    let secs_ms = |s: f64| (s * 1000.0).round() as i64;
    for c in checks {
        keys.push(format!("quota:{}", c.key));
        let limit = |l: Option<u64>| l.map_or(-1, num);
        args.extend([
            secs_ms(c.window.period.max(0.0)),
            i64::from(c.window.anchor.is_some()),
            c.window.anchor.map_or(0, secs_ms),
            limit(c.limits.calls),
            limit(c.limits.bytes),
            num(c.calls),
            num(bytes),
            i64::from(c.record),
        ]);
    }
    (keys, args)
}

/// The Redis store and its in-process fallback.
#[derive(Debug)]
pub struct Shared {
    pub(super) local: Arc<Local>,
    redis: Redis,
}

impl Shared {
    pub fn new(redis: Redis) -> Shared {
        Shared {
            local: Arc::new(Local::new()),
            redis,
        }
    }

    pub async fn rate_all(&self, checks: &[RateCheck], record: bool) -> Vec<Rate> {
        if checks.is_empty() {
            return Vec::new();
        }
        let (keys, args) = rate_call(checks, record);
        match self.redis.script::<Vec<i64>>(&RATE, &keys, &args).await {
            Ok(reply) => match parse_rate_reply(&reply, checks.len()) {
                Some(r) => return r,
                None => tracing::error!("unexpected reply from the redis rate script"),
            },
            Err(e) => self.redis.failed(&e),
        }
        self.local.rate_all(checks, record, Instant::now())
    }

    pub async fn quota_all(&self, checks: &[QuotaCheck]) -> Vec<Quota> {
        if checks.is_empty() {
            return Vec::new();
        }
        let (keys, args) = quota_call(checks, 0);
        match self.redis.script::<Vec<i64>>(&QUOTA, &keys, &args).await {
            Ok(reply) => match parse_quota_reply(&reply, checks.len()) {
                Some(q) => return q,
                None => tracing::error!("unexpected reply from the redis quota script"),
            },
            Err(e) => self.redis.failed(&e),
        }
        self.local.quota_all(checks, super::unix_now())
    }

    /// Records hits after the response, without delaying it.
    pub fn rate_add(&self, key: &str, period: Duration, add: u64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.local.rate_add(key, period, add, Instant::now());
            return;
        };
        if add == 0 {
            return;
        }
        let (redis, local) = (self.redis.clone(), self.local.clone());
        let check = RateCheck {
            key: key.to_string(),
            limit: MAX,
            period,
            add,
        };
        rt.spawn(async move {
            let (keys, args) = rate_call(std::slice::from_ref(&check), true);
            if let Err(e) = redis.script::<Vec<i64>>(&RATE, &keys, &args).await {
                redis.failed(&e);
                local.rate_add(&check.key, check.period, check.add, Instant::now());
            }
        });
    }

    /// Adds calls and bytes to a quota after the response, without
    /// delaying it.
    pub fn quota_add(&self, key: &str, window: Window, calls: u64, bytes: u64) {
        let none = QuotaLimits {
            calls: None,
            bytes: None,
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.local
                .quota(key, none, window, calls, bytes, true, super::unix_now());
            return;
        };
        let (redis, local) = (self.redis.clone(), self.local.clone());
        let check = QuotaCheck {
            key: key.to_string(),
            limits: none,
            window,
            calls,
            record: true,
        };
        rt.spawn(async move {
            let (keys, args) = quota_call(std::slice::from_ref(&check), bytes);
            if let Err(e) = redis.script::<Vec<i64>>(&QUOTA, &keys, &args).await {
                redis.failed(&e);
                local.quota(
                    &check.key,
                    none,
                    check.window,
                    check.calls,
                    bytes,
                    true,
                    super::unix_now(),
                );
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_replies_parse_per_counter() {
        assert_eq!(
            parse_rate_reply(&[1, 4, 0, 2500], 2),
            Some(vec![
                Rate::Allowed { remaining: 4 },
                Rate::Refused {
                    retry_after: Duration::from_millis(2500)
                }
            ])
        );
        // A negative number never becomes a huge count.
        assert_eq!(
            parse_rate_reply(&[1, -3], 1),
            Some(vec![Rate::Allowed { remaining: 0 }])
        );
        assert_eq!(parse_rate_reply(&[1, 4, 0], 2), None);
        assert_eq!(parse_rate_reply(&[], 0), Some(vec![]));
    }

    #[test]
    fn quota_replies_parse_per_counter() {
        assert_eq!(
            parse_quota_reply(&[1, 0, 5000, 0, 0, 1500, 0, 1, -1], 3),
            Some(vec![
                Quota::Allowed,
                Quota::Refused {
                    bandwidth: false,
                    renews_in: Some(Duration::from_millis(1500))
                },
                Quota::Refused {
                    bandwidth: true,
                    renews_in: None
                },
            ])
        );
        assert_eq!(parse_quota_reply(&[1, 0], 1), None);
    }

    #[test]
    fn calls_carry_prefixed_kinds_and_clamped_numbers() {
        let (keys, args) = rate_call(
            &[RateCheck {
                key: "rate-limit-by-key\0k".into(),
                limit: u64::MAX,
                period: Duration::from_secs(60),
                add: 1,
            }],
            true,
        );
        assert_eq!(
            keys,
            ["rate:rate-limit-by-key\0k", "rate-n:rate-limit-by-key\0k"]
        );
        assert_eq!(args, [1, 1 << 53, 60_000, 1]);
        let (keys, args) = quota_call(
            &[QuotaCheck {
                key: "q".into(),
                limits: QuotaLimits {
                    calls: Some(5),
                    bytes: None,
                },
                window: Window {
                    period: 3600.0,
                    anchor: Some(-62_135_596_800.0),
                },
                calls: 1,
                record: false,
            }],
            7,
        );
        assert_eq!(keys, ["quota:q"]);
        assert_eq!(args, [3_600_000, 1, -62_135_596_800_000, 5, -1, 1, 7, 0]);
    }
}
