#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/, gitignored) from the shared
# real-world corpus (../shared/corpus beside the checkout, or $CORPUS) and
# from a running appliance (the cluster export). Never commit the results.
#
#   fuzz/seed.sh            # all targets
#
# Idempotent: files are named by content hash, so running it again adds
# nothing new. Needs python3 and curl; the cluster_export seed also needs a
# built `turnpike` binary ($TURNPIKE_BIN, else target/debug/turnpike under
# $CARGO_TARGET_DIR or the repository) and is skipped without one.
set -euo pipefail

FUZZ="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$FUZZ")"
CORPUS="${CORPUS:-$ROOT/../shared/corpus}"
OUT="$FUZZ/corpus"

if [ ! -d "$CORPUS/policy-snippets" ]; then
    echo "seed.sh: $CORPUS/policy-snippets not found (set CORPUS=...)" >&2
    exit 1
fi
mkdir -p "$OUT"/{policy_xml,expr_parse,expr_eval,openapi_import,config_toml,url_template,cluster_export}

python3 - "$CORPUS" "$OUT" "$ROOT" <<'PY'
import glob, hashlib, html, os, re, sys

corpus, out, root = sys.argv[1:4]

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

def expressions(text):
    """Every @(...) / @{...} in a document, entities decoded, brackets
    balanced (string and char literals skipped)."""
    text = html.unescape(text)
    found = []
    i = 0
    while True:
        i = text.find("@", i)
        if i < 0 or i + 1 >= len(text):
            return found
        open_ = text[i + 1]
        if open_ not in "({":
            i += 1
            continue
        close = ")" if open_ == "(" else "}"
        depth, j, quote = 0, i + 1, None
        while j < len(text):
            c = text[j]
            if quote:
                if c == "\\":
                    j += 1
                elif c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    found.append(text[i:j + 1])
                    break
            j += 1
        i = j + 1 if depth == 0 else i + 2

counts = dict.fromkeys(["policy_xml", "expr", "openapi_import", "config_toml", "url_template"], 0)
templates = set()
for path in sorted(glob.glob(os.path.join(corpus, "policy-snippets", "**", "*.xml"), recursive=True)):
    text = open(path, encoding="utf-8", errors="replace").read()
    put("policy_xml", text)
    counts["policy_xml"] += 1
    for e in expressions(text):
        put("expr_parse", e)
        put("expr_eval", e)
        counts["expr"] += 1
    for t in re.findall(r'template="([^"]*)"', text):
        templates.add(t)

for path in sorted(glob.glob(os.path.join(corpus, "openapi", "*"))):
    if path.endswith((".json", ".yaml", ".yml")):
        data = open(path, "rb").read()
        put("openapi_import", data)
        counts["openapi_import"] += 1
        for t in re.findall(rb'^\s*"?(/[^"\s:]*)"?\s*:\s*(?:\{|$)', data, re.M):
            templates.add(t.decode("utf-8", "replace"))

example = os.path.join(root, "config.example.toml")
if os.path.exists(example):
    text = open(example, encoding="utf-8").read()
    put("config_toml", text)
    # The same file with every commented-out key switched on, and each
    # section alone: more shapes for the mutator to start from.
    put("config_toml", re.sub(r"^# ?([a-z_]+ = )", r"\1", text, flags=re.M))
    for section in re.split(r"(?m)^(?=\[)", text):
        if section.startswith("["):
            put("config_toml", section)
    counts["config_toml"] = len(os.listdir(os.path.join(out, "config_toml")))

# URL templates: the operations' paths of the OpenAPI documents, in tables
# with requests that hit them (parameters filled in) and some that miss.
templates = sorted(t for t in templates if t.startswith("/"))
for k in range(0, len(templates), 8):
    group = templates[k:k + 8]
    defs = "\n".join(f"GET {t}" for t in group)
    reqs = "\n".join("GET " + re.sub(r"\{[^}]*\}", "42", t) for t in group)
    put("url_template", f"{defs}\n\n{reqs}\nPOST /nope?x=1\n")
    counts["url_template"] += 1
for sample in [
    "GET /users/{id}\nGET /users/me\nGET /users/{id}.json\n* /*\n\nGET /users/me\nGET /USERS/42.json\nPUT /a/b/c\n",
    "GET /search?q={q}&page={p}\nPOST /items/{*rest}\n\nGET /search?q=a&page=2\nPOST /items/a/b/c\n",
]:
    put("url_template", sample)
    counts["url_template"] += 1
# Programs that work the evaluator's limits (loops, recursion, growth).
for e in [
    '@{ int s = 0; for (int i = 0; i < 100; i++) { s += i; } return s; }',
    '@{ var s = "ab"; while (s.Length < 1000) { s = s + s; } return s.Length; }',
    '@{ Func<int, int> f = null; f = n => n <= 1 ? 1 : n * f(n - 1); return f(10); }',
    '@{ var l = new List<string>(); foreach (var h in context.Request.Headers) { l.Add(h.Key); } return string.Join(",", l); }',
    '@(context.Request.Body.As<JObject>(preserveContent: true)["tags"][0].ToString())',
    '@(new string(\'x\', 10).PadLeft(20, \'-\').Substring(3, 4).ToUpper())',
    '@(DateTime.UtcNow.AddDays(1).ToString("o") + TimeSpan.FromMinutes(90).TotalHours)',
    '@(Regex.Replace(context.Request.Url.Path, "[0-9]+", "N"))',
]:
    put("expr_parse", e)
    put("expr_eval", e)
    counts["expr"] += 1
print("seeded:", ", ".join(f"{k} {v}" for k, v in counts.items()))
PY

# The cluster export: a demo primary serves its configuration to a
# registered gateway; the seed is the gzip form (first byte even) and the
# JSON form (first byte odd), as the cluster_export target reads them.
BIN="${TURNPIKE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/turnpike}"
if [ ! -x "$BIN" ]; then
    echo "seed.sh: no turnpike binary at $BIN; cluster_export gets no export seed (cargo build, or set TURNPIKE_BIN)" >&2
else
    TMP="$(mktemp -d)"
    PID=""
    cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
    trap cleanup EXIT
    ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])'))
    KEY="fuzz-seed-admin-key-0123456789"
    cat > "$TMP/config.toml" <<TOML
[node]
data_dir = "$TMP/data"
[gateway]
http = "127.0.0.1:${ports[0]}"
[management]
listen = "127.0.0.1:${ports[1]}"
admin_key = "$KEY"
[portal]
listen = "127.0.0.1:${ports[2]}"
[cluster]
allow_plaintext_export = true
[telemetry]
log_level = "warn"
TOML
    "$BIN" serve --config "$TMP/config.toml" --demo > "$TMP/log" 2>&1 &
    PID=$!
    M="http://127.0.0.1:${ports[1]}"
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null -H "authorization: Bearer $KEY" "$M/mgmt/apis" && break
        sleep 0.1
    done
    curl -fs -o /dev/null -X PUT -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
        -d '{"locationData":{"name":"West US"}}' "$M/mgmt/gateways/seed"
    TOKEN="$(curl -fs -X POST -H "authorization: Bearer $KEY" "$M/mgmt/gateways/seed/token" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')"
    curl -fs -H "authorization: GatewayKey $TOKEN" -H 'accept-encoding: gzip' \
        -o "$TMP/export.gz" "$M/cluster/v1/config"
    curl -fs -H "authorization: GatewayKey $TOKEN" -o "$TMP/export.json" "$M/cluster/v1/config"
    { printf '\0'; cat "$TMP/export.gz"; } > "$OUT/cluster_export/demo-gzip"
    { printf '\1'; cat "$TMP/export.json"; } > "$OUT/cluster_export/demo-json"
    { printf '\1'; printf '{"schemaVersion":1,"revision":1}'; } > "$OUT/cluster_export/empty-json"
    echo "seeded: cluster_export from $BIN ($(wc -c < "$TMP/export.gz") bytes gzip, $(wc -c < "$TMP/export.json") bytes JSON)"
fi
