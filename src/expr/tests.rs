//! Evaluator tests per type family, with the results C# gives.

use super::context::Ctx;
use super::{compile, Limits, Value};

fn sample() -> Ctx {
    let json = serde_json::json!({
        "request": {
            "method": "POST",
            "url": "https://api.contoso.com/echo/items/42?x=1&y=a%20b",
            "headers": {"Authorization": "Bearer abc", "Accept": ["a/b", "c/d"], "Content-Type": "application/json"},
            "body": "{\"name\":\"widget\",\"tags\":[\"a\",\"b\"],\"price\":2.5,\"count\":3}",
            "ipAddress": "203.0.113.7",
            "matchedParameters": {"id": "42"}
        },
        "deployment": {"region": "West US", "serviceName": "contoso", "gatewayId": "gw1"},
        "variables": {"name": "value", "n": 5, "obj": {"k": [1, 2]}},
        "subscription": {"id": "s1", "key": "k", "name": "Starter"},
        "user": {"id": "u1", "email": "a@b.c"},
        "api": {"id": "echo", "name": "Echo", "path": "echo", "serviceUrl": "http://backend:8080/v1"},
        "operation": {"id": "get", "method": "GET", "urlTemplate": "/items/{id}"},
        "product": {"id": "starter", "name": "Starter"}
    });
    Ctx::from_sample(&json).unwrap()
}

/// Evaluates and renders: strings as their text, everything else as JSON.
fn ev(src: &str) -> String {
    match try_ev(src) {
        Ok(s) => s,
        Err(e) => panic!("{src}: {e}"),
    }
}

fn try_ev(src: &str) -> Result<String, String> {
    let ctx = sample();
    let c = compile(src, 0).map_err(|e| format!("compile: {e:?}"))?;
    let v = c
        .eval(&ctx, Limits::default())
        .map_err(|e| format!("{}: {}", e.kind, e.message))?;
    Ok(match v {
        Value::Str(s) => s.to_string(),
        other => serde_json::to_string(&super::value::to_serde(&other)).unwrap(),
    })
}

fn err(src: &str) -> String {
    match try_ev(src) {
        Ok(v) => panic!("{src}: expected an error, got {v}"),
        Err(e) => e,
    }
}

#[test]
fn operators_follow_csharp() {
    assert_eq!(ev("@(7 / 2)"), "3");
    assert_eq!(ev("@(-7 / 2)"), "-3");
    assert_eq!(ev("@(-7 % 3)"), "-1");
    assert_eq!(ev("@(7 / 2.0)"), "3.5");
    assert_eq!(ev("@(1 + 2 * 3 - 4)"), "3");
    assert_eq!(ev("@(\"a\" + 1 + 2)"), "a12");
    assert_eq!(ev("@(1 + 2 + \"a\")"), "3a");
    assert_eq!(ev("@(\"x\" + null + true)"), "xTrue");
    assert_eq!(ev("@((1 < 2).ToString())"), "True");
    assert_eq!(ev("@(null ?? \"d\")"), "d");
    assert_eq!(ev("@(5 > 3 ? \"y\" : \"n\")"), "y");
    assert_eq!(ev("@(6 & 3 | 8 ^ 1)"), "11");
    assert_eq!(ev("@(1 << 4 >> 2)"), "4");
    assert_eq!(ev("@(\"abc\" == \"abc\" && \"A\" != \"a\")"), "true");
    assert_eq!(ev("@(0.1 + 0.2)"), "0.30000000000000004");
    assert_eq!(ev("@((0.5).ToString())"), "0.5");
    assert_eq!(ev("@((1e20).ToString())"), "1E+20");
    assert_eq!(ev("@((2.0).ToString())"), "2");
    assert_eq!(ev("@('a' + 1)"), "98");
    assert!(err("@(1 / 0)").starts_with("DivideByZeroException"));
    assert_eq!(ev("@(1.0 / 0)"), "null"); // Infinity has no JSON form
    assert_eq!(ev("@((1.0 / 0).ToString())"), "∞");
}

#[test]
fn statements_run() {
    assert_eq!(
        ev("@{ var sum = 0; for (var i = 1; i <= 10; i++) { if (i % 2 == 0) continue; sum += i; } return sum; }"),
        "25"
    );
    assert_eq!(
        ev("@{ var s = \"\"; foreach (var c in \"abc\") { s = c + s; } return s; }"),
        "cba"
    );
    assert_eq!(
        ev("@{ int i = 0; while (i < 100) { i += 7; if (i > 50) break; } return i; }"),
        "56"
    );
    assert_eq!(
        ev("@{ try { throw new Exception(\"boom\"); } catch (Exception ex) { return ex.Message; } }"),
        "boom"
    );
    assert_eq!(
        ev("@{ try { var x = int.Parse(\"zz\"); return \"no\"; } catch (FormatException) { return \"bad number\"; } }"),
        "bad number"
    );
    assert_eq!(
        ev("@{ string F(int x) { return \"v\" + x; } return F(3); }"),
        "v3"
    );
    assert_eq!(
        ev("@{ Func<int, int> sq = x => x * x; return sq(9); }"),
        "81"
    );
    assert_eq!(
        ev("@{ if (int.TryParse(\"12\", out var n)) { return n * 2; } return -1; }"),
        "24"
    );
    assert_eq!(
        ev("@{ object o = \"s\"; return o is string t ? t + \"!\" : \"no\"; }"),
        "s!"
    );
}

#[test]
fn strings() {
    assert_eq!(ev("@(\"Hello World\".Substring(6))"), "World");
    assert_eq!(ev("@(\"Hello World\".Substring(0, 5).ToUpper())"), "HELLO");
    assert_eq!(ev("@(\"a,b,,c\".Split(',').Length)"), "4");
    assert_eq!(
        ev("@(\"a,b,,c\".Split(new[] {','}, StringSplitOptions.RemoveEmptyEntries).Length)"),
        "3"
    );
    assert_eq!(ev("@(\"a-b_c\".Split('-', '_')[2])"), "c");
    assert_eq!(ev("@(\"Bearer xyz\".Replace(\"Bearer \", \"\"))"), "xyz");
    assert_eq!(ev("@(\"ABC\".Contains(\"b\"))"), "false");
    assert_eq!(
        ev("@(\"ABC\".StartsWith(\"ab\", StringComparison.OrdinalIgnoreCase))"),
        "true"
    );
    assert_eq!(ev("@(\"hello\".IndexOf('l'))"), "2");
    assert_eq!(ev("@(\"hello\".LastIndexOf(\"l\"))"), "3");
    assert_eq!(ev("@(\"  x \".Trim() + \"|\")"), "x|");
    assert_eq!(ev("@(\"xxhixx\".Trim('x'))"), "hi");
    assert_eq!(ev("@(\"7\".PadLeft(3, '0'))"), "007");
    assert_eq!(
        ev("@(String.Format(\"{0}-{1:D3}-{0}\", \"a\", 7))"),
        "a-007-a"
    );
    assert_eq!(ev("@(string.Join(\",\", new[] {1, 2, 3}))"), "1,2,3");
    assert_eq!(ev("@(String.Concat(\"a\", \"b\", 1))"), "ab1");
    assert_eq!(
        ev("@(string.IsNullOrEmpty(\"\") && string.IsNullOrWhiteSpace(\"  \"))"),
        "true"
    );
    assert_eq!(
        ev("@(\"abc\".Equals(\"ABC\", StringComparison.OrdinalIgnoreCase))"),
        "true"
    );
    assert_eq!(ev("@(\"abc\"[1])"), "\"b\"");
    assert_eq!(ev("@(\"abc\".Length)"), "3");
    assert_eq!(ev("@($\"{1 + 1} and {\"x\".ToUpper()}\")"), "2 and X");
    assert_eq!(ev("@($\"[{42,5}][{7:D2}]\")"), "[   42][07]");
    assert_eq!(ev("@(@\"c:\\path\")"), "c:\\path");
    assert_eq!(ev("@(\"abc\".Any(c => c == 'b'))"), "true");
    assert_eq!(ev("@(new string('-', 3))"), "---");
    assert!(err("@(\"abc\".Substring(5))").starts_with("ArgumentOutOfRangeException"));
    assert!(err("@(((string)null).Length)").starts_with("NullReferenceException"));
}

#[test]
fn numbers_math_convert() {
    assert_eq!(ev("@(int.Parse(\"42\") + 1)"), "43");
    assert_eq!(ev("@(double.Parse(\"2.5\") * 2)"), "5.0");
    assert_eq!(ev("@(Math.Max(3, 9))"), "9");
    assert_eq!(ev("@(Math.Round(2.5))"), "2.0");
    assert_eq!(ev("@(Math.Round(3.5))"), "4.0");
    assert_eq!(ev("@(Math.Round(2.345, 2))"), "2.35");
    assert_eq!(ev("@(Math.Floor(-1.5))"), "-2.0");
    assert_eq!(ev("@(Math.Pow(2, 10))"), "1024.0");
    assert_eq!(ev("@(Convert.ToInt32(\"17\"))"), "17");
    assert_eq!(
        ev("@(Convert.ToBase64String(Encoding.UTF8.GetBytes(\"user:pass\")))"),
        "dXNlcjpwYXNz"
    );
    assert_eq!(
        ev("@(Encoding.UTF8.GetString(Convert.FromBase64String(\"aGk=\")))"),
        "hi"
    );
    assert_eq!(ev("@((1234567.891).ToString(\"N2\"))"), "1,234,567.89");
    assert_eq!(ev("@((3.14159).ToString(\"F2\"))"), "3.14");
    assert_eq!(ev("@((255).ToString(\"X4\"))"), "00FF");
    assert_eq!(ev("@((0.5).ToString(\"0.00\"))"), "0.50");
    assert_eq!(ev("@((int)3.99)"), "3");
    assert_eq!(ev("@((double)7 / 2)"), "3.5");
    assert_eq!(ev("@(int.MaxValue)"), "2147483647");
    assert!(err("@(int.Parse(\"x\"))").starts_with("FormatException"));
    assert_eq!(ev("@(BitConverter.ToString(new byte[] {1, 171}))"), "01-AB");
}

#[test]
fn dates_and_spans() {
    assert_eq!(
        ev("@(new DateTime(2026, 11, 23, 14, 5, 9).ToString(\"yyyy-MM-ddTHH:mm:ssZ\"))"),
        "2026-11-23T14:05:09Z"
    );
    assert_eq!(
        ev("@(new DateTime(2026, 11, 23, 14, 5, 9).ToString())"),
        "11/23/2026 2:05:09 PM"
    );
    assert_eq!(
        ev("@(DateTime.Parse(\"2026-01-31T00:00:00Z\").AddMonths(1).ToString(\"o\"))"),
        "2026-02-28T00:00:00.0000000Z"
    );
    assert_eq!(
        ev("@(new DateTime(2026, 11, 23).ToString(\"R\"))"),
        "Mon, 23 Nov 2026 00:00:00 GMT"
    );
    assert_eq!(
        ev("@((new DateTime(2026, 1, 2) - new DateTime(2026, 1, 1)).TotalHours)"),
        "24.0"
    );
    assert_eq!(ev("@(TimeSpan.FromMinutes(90).ToString())"), "01:30:00");
    assert_eq!(
        ev("@(DateTimeOffset.FromUnixTimeSeconds(0).ToString(\"o\"))"),
        "1970-01-01T00:00:00.0000000+00:00"
    );
    assert_eq!(
        ev("@(DateTimeOffset.FromUnixTimeMilliseconds(1700000000000).ToUnixTimeSeconds())"),
        "1700000000"
    );
    assert_eq!(
        ev("@(new DateTime(2024, 2, 29).DayOfWeek.ToString())"),
        "Thursday"
    );
    assert_eq!(ev("@(DateTime.UtcNow > new DateTime(2020, 1, 1))"), "true");
    assert_eq!(ev("@(DateTime.DaysInMonth(2024, 2))"), "29");
}

#[test]
fn guids_regex_uri_hashing() {
    assert_eq!(ev("@(Guid.NewGuid().ToString().Length)"), "36");
    assert_eq!(
        ev("@(Guid.Parse(\"{0F8FAD5B-D9CB-469F-A165-70867728950E}\").ToString(\"N\"))"),
        "0f8fad5bd9cb469fa16570867728950e"
    );
    assert_eq!(
        ev("@(Regex.IsMatch(\"abc123\", \"^[a-z]+\\\\d+$\"))"),
        "true"
    );
    assert_eq!(
        ev("@(Regex.Match(\"id=42;\", \"id=(\\\\d+)\").Groups[1].Value)"),
        "42"
    );
    assert_eq!(
        ev("@(Regex.Match(\"k=v\", \"(?<key>\\\\w+)=(?<val>\\\\w+)\").Groups[\"val\"].Value)"),
        "v"
    );
    assert_eq!(ev("@(Regex.Replace(\"a1b22\", \"\\\\d+\", \"#\"))"), "a#b#");
    assert_eq!(ev("@(Regex.Matches(\"a1b22c333\", \"\\\\d+\").Count)"), "3");
    assert_eq!(
        ev("@(Regex.Replace(\"abc\", \"b\", m => m.Value.ToUpper()))"),
        "aBc"
    );
    assert_eq!(ev("@(Uri.EscapeDataString(\"a b&c/d\"))"), "a%20b%26c%2Fd");
    assert_eq!(ev("@(Uri.UnescapeDataString(\"a%20b\"))"), "a b");
    assert_eq!(ev("@(WebUtility.UrlEncode(\"a b&c\"))"), "a+b%26c");
    assert_eq!(
        ev("@(WebUtility.HtmlEncode(\"<a href='x'>\"))"),
        "&lt;a href=&#39;x&#39;&gt;"
    );
    assert_eq!(
        ev("@(new Uri(\"https://h.example:8443/a/b?q=1\").Port)"),
        "8443"
    );
    assert_eq!(
        ev("@(new Uri(\"https://h.example/a/b?q=1\").PathAndQuery)"),
        "/a/b?q=1"
    );
    // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
    assert_eq!(
        ev("@(BitConverter.ToString(new HMACSHA256(Encoding.UTF8.GetBytes(\"key\")).ComputeHash(Encoding.UTF8.GetBytes(\"The quick brown fox jumps over the lazy dog\"))).Replace(\"-\", \"\").ToLower())"),
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    assert_eq!(
        ev("@(Convert.ToBase64String(SHA256.Create().ComputeHash(Encoding.UTF8.GetBytes(\"abc\"))))"),
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    );
    assert!(ev("@(new Random().Next(10))").parse::<i64>().unwrap() < 10);
    assert_eq!(
        ev("@(new Guid(Guid.Parse(\"0f8fad5b-d9cb-469f-a165-70867728950e\").ToByteArray()).ToString())"),
        "0f8fad5b-d9cb-469f-a165-70867728950e"
    );
}

#[test]
fn json() {
    assert_eq!(
        ev("@(JObject.Parse(\"{\\\"a\\\":{\\\"b\\\":[1,2]}}\")[\"a\"][\"b\"][1])"),
        "2"
    );
    assert_eq!(
        ev("@((string)JObject.Parse(\"{\\\"a\\\":\\\"x\\\"}\")[\"a\"])"),
        "x"
    );
    // (bool) of a JSON value converts as Convert.ToBoolean does.
    assert_eq!(
        ev("@((bool)JObject.Parse(\"{\\\"a\\\":\\\"True\\\",\\\"n\\\":0}\")[\"a\"])"),
        "true"
    );
    assert_eq!(
        ev("@((bool)JObject.Parse(\"{\\\"n\\\":0}\")[\"n\"])"),
        "false"
    );
    assert!(err("@((bool)JToken.Parse(\"\\\"yes\\\"\"))").starts_with("FormatException"));
    assert_eq!(
        ev("@(JObject.Parse(\"{\\\"a\\\":5}\").Value<int>(\"a\") + 1)"),
        "6"
    );
    assert_eq!(
        ev("@{ var o = new JObject(); o[\"a\"] = 1; o.Add(\"b\", new JArray(1, 2)); o.Add(new JProperty(\"c\", \"x\")); return o.ToString(Newtonsoft.Json.Formatting.None); }"),
        "{\"a\":1,\"b\":[1,2],\"c\":\"x\"}"
    );
    assert_eq!(
        ev("@(new JObject(new JProperty(\"a\", 1)).ToString())"),
        "{\n  \"a\": 1\n}"
    );
    assert_eq!(
        ev("@{ var o = JObject.Parse(\"{\\\"x\\\":{\\\"y\\\":1}}\"); var inner = (JObject)o[\"x\"]; inner[\"z\"] = 2; return o.ToString(Formatting.None); }"),
        "{\"x\":{\"y\":1,\"z\":2}}"
    );
    assert_eq!(
        ev("@(JObject.Parse(\"{\\\"a\\\":1,\\\"b\\\":2}\").Properties().Select(p => p.Name).Aggregate((x, y) => x + y))"),
        "ab"
    );
    assert_eq!(
        ev("@(JObject.Parse(\"{\\\"a\\\":{\\\"b\\\":[5,6]}}\").SelectToken(\"$.a.b[1]\"))"),
        "6"
    );
    assert_eq!(
        ev("@(JObject.Parse(\"{\\\"a\\\":1}\").ContainsKey(\"a\"))"),
        "true"
    );
    assert_eq!(ev("@(JArray.Parse(\"[3,1,2]\").Count)"), "3");
    assert_eq!(
        ev("@(JArray.Parse(\"[3,1,2]\").Select(t => (int)t).Max())"),
        "3"
    );
    assert_eq!(
        ev("@(JsonConvert.SerializeObject(new { a = 1, b = \"x\" }))"),
        "{\"a\":1,\"b\":\"x\"}"
    );
    assert!(err("@(JObject.Parse(\"not json\"))").starts_with("JsonReaderException"));
    assert!(err("@(JObject.Parse(\"[1]\"))").starts_with("JsonReaderException"));
    assert_eq!(
        ev("@{ var o = JObject.Parse(\"{\\\"a\\\":1}\"); o.Remove(\"a\"); return o.Count; }"),
        "0"
    );
}

#[test]
fn linq_and_collections() {
    assert_eq!(
        ev("@(new[] {1, 2, 3, 4}.Where(x => x % 2 == 0).Sum())"),
        "6"
    );
    assert_eq!(
        ev("@(new[] {3, 1, 2}.OrderByDescending(x => x).First())"),
        "3"
    );
    assert_eq!(
        ev("@(new[] {1, 2, 3}.Select((x, i) => x * i).ToArray())"),
        "[0,2,6]"
    );
    assert_eq!(ev("@(new[] {1, 1, 2}.Distinct().Count())"), "2");
    assert_eq!(ev("@(new[] {1, 2, 3}.Skip(1).Take(1).Single())"), "2");
    assert_eq!(
        ev("@(new[] {1, 2, 3}.Any(x => x > 2) && new[] {1, 2}.All(x => x > 0))"),
        "true"
    );
    assert_eq!(ev("@(new[] {\"a\", \"b\"}.Contains(\"b\"))"), "true");
    assert_eq!(
        ev("@(new[] {1, 2, 3}.Aggregate(10, (acc, x) => acc + x))"),
        "16"
    );
    assert_eq!(ev("@(new int[0].FirstOrDefault())"), "null");
    assert!(err("@(new int[0].First())").contains("Sequence contains no elements"));
    assert_eq!(
        ev("@{ var l = new List<string> { \"b\", \"a\" }; l.Add(\"c\"); l.Sort(); return string.Join(\"\", l); }"),
        "abc"
    );
    assert_eq!(
        ev("@{ var d = new Dictionary<string, int> { { \"a\", 1 } }; d[\"b\"] = 2; return d.ContainsKey(\"b\") && d.TryGetValue(\"a\", out var v) && v == 1; }"),
        "true"
    );
    assert_eq!(
        ev("@{ var d = new Dictionary<string, string>(); d.Add(\"k\", \"v\"); foreach (var kv in d) { return kv.Key + \"=\" + kv.Value; } return \"\"; }"),
        "k=v"
    );
    assert!(err("@(new Dictionary<string, int>()[\"x\"])").starts_with("KeyNotFoundException"));
    assert_eq!(
        ev("@{ var s = new HashSet<string>(); s.Add(\"a\"); return s.Add(\"a\"); }"),
        "false"
    );
    assert_eq!(
        ev("@(Enumerable.Range(1, 4).Select(i => i * i).Last())"),
        "16"
    );
}

#[test]
fn context_model() {
    assert_eq!(ev("@(context.Request.Method)"), "POST");
    assert_eq!(
        ev("@(context.Request.Headers.GetValueOrDefault(\"accept\", \"\"))"),
        "a/b,c/d"
    );
    assert_eq!(
        ev("@(context.Request.Headers.GetValueOrDefault(\"missing\", \"dflt\"))"),
        "dflt"
    );
    assert_eq!(ev("@(context.Request.Headers[\"Accept\"].Length)"), "2");
    assert_eq!(
        ev("@(context.Request.Headers.ContainsKey(\"AUTHORIZATION\"))"),
        "true"
    );
    assert_eq!(ev("@(context.Request.Url.Path)"), "/echo/items/42");
    assert_eq!(
        ev("@(context.Request.Url.Query.GetValueOrDefault(\"y\", \"\"))"),
        "a b"
    );
    assert_eq!(ev("@(context.Request.Url.QueryString)"), "?x=1&y=a%20b");
    assert_eq!(
        ev("@(context.Request.Url.ToString())"),
        "https://api.contoso.com/echo/items/42?x=1&y=a%20b"
    );
    assert_eq!(ev("@(context.Request.MatchedParameters[\"id\"])"), "42");
    assert_eq!(ev("@(context.Request.IpAddress)"), "203.0.113.7");
    assert_eq!(ev("@(context.Deployment.Region)"), "West US");
    assert_eq!(ev("@(context.Api.ServiceUrl.Host)"), "backend");
    assert_eq!(ev("@(context.Operation.UrlTemplate)"), "/items/{id}");
    assert_eq!(ev("@(context.Product.Name + \"/\" + context.Subscription.Id + \"/\" + context.User.Email)"), "Starter/s1/a@b.c");
    assert_eq!(ev("@((string)context.Variables[\"name\"])"), "value");
    assert_eq!(
        ev("@(context.Variables.GetValueOrDefault<int>(\"n\") * 2)"),
        "10"
    );
    assert_eq!(
        ev("@(context.Variables.GetValueOrDefault<string>(\"none\", \"d\"))"),
        "d"
    );
    assert_eq!(ev("@(context.Variables.ContainsKey(\"name\"))"), "true");
    assert!(err("@(context.Variables.GetValueOrDefault<int>(\"name\"))")
        .starts_with("InvalidCastException"));
    assert!(err("@(context.Variables[\"none\"])").starts_with("KeyNotFoundException"));
    assert_eq!(
        ev("@(context.Request.Body.As<JObject>(preserveContent: true)[\"name\"].ToString())"),
        "widget"
    );
    assert_eq!(
        ev("@(context.Request.Body.As<JObject>()[\"tags\"].Count())"),
        "2"
    );
    assert_eq!(ev("@(context.Request.Body.As<string>().Length)"), "56");
    assert_eq!(ev("@(context.Response == null)"), "true");
    assert_eq!(ev("@(context.LastError == null)"), "true");
    assert_eq!(
        ev("@(context.Request.Headers.Select(h => h.Key).ToArray())"),
        "[\"Authorization\",\"Accept\",\"Content-Type\"]"
    );
}

#[test]
fn jwt_and_basic() {
    // {"alg":"HS256","typ":"JWT"} . {"sub":"1234567890","name":"John","aud":["a","b"],"exp":1700000000}
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4iLCJhdWQiOlsiYSIsImIiXSwiZXhwIjoxNzAwMDAwMDAwfQ.sig";
    assert_eq!(ev(&format!("@(\"{token}\".AsJwt().Subject)")), "1234567890");
    assert_eq!(
        ev(&format!(
            "@(\"Bearer {token}\".AsJwt().Claims.GetValueOrDefault(\"name\", \"?\"))"
        )),
        "John"
    );
    assert_eq!(
        ev(&format!("@(\"{token}\".AsJwt().Audiences.Count())")),
        "2"
    );
    assert_eq!(
        ev(&format!("@(\"{token}\".AsJwt().ExpirationTime.Value.Year)")),
        "2023"
    );
    assert_eq!(ev(&format!("@(\"{token}\".AsJwt().Algorithm)")), "HS256");
    assert_eq!(ev("@(\"garbage\".AsJwt() == null)"), "true");
    assert_eq!(
        ev("@{ Jwt jwt; return \"x.y\".TryParseJwt(out jwt); }"),
        "false"
    );
    assert_eq!(ev("@(\"Basic dXNlcjpwYXNz\".AsBasic().Password)"), "pass");
    assert_eq!(ev("@(\"Basic !!\".AsBasic() == null)"), "true");
}

#[test]
fn limits_stop_runaway_expressions() {
    assert!(err("@{ while (true) { } return 1; }").starts_with("LimitExceeded"));
    assert!(
        err("@{ var s = \"xxxxxxxxxxxxxxxx\"; while (true) { s = s + s; } return s; }")
            .starts_with("LimitExceeded")
    );
    assert!(err("@{ int F(int n) { return F(n + 1); } return F(0); }").starts_with("LimitExceeded"));
    assert!(err("@(new string('x', 100000000))").starts_with("LimitExceeded"));
    // A limit cannot be caught.
    assert!(
        err("@{ try { while (true) { } } catch (Exception) { return 1; } return 2; }")
            .starts_with("LimitExceeded")
    );
}

#[test]
fn sample_context_rejects_bad_input() {
    let bad = serde_json::json!({"request": {"methd": "GET"}});
    let e = Ctx::from_sample(&bad).unwrap_err();
    assert!(e.contains("request: unknown key 'methd'"), "{e}");
    let bad = serde_json::json!({"request": {"url": "not a url"}});
    assert!(Ctx::from_sample(&bad).unwrap_err().contains("request.url"));
    let bad = serde_json::json!({"mystery": 1});
    assert!(Ctx::from_sample(&bad).is_err());
}

#[test]
fn byte_array_encrypt_and_decrypt() {
    // NIST SP 800-38A F.2.1 (CBC-AES128), first block; PKCS7 pads the
    // 16-byte input with a whole block, so the result is two blocks.
    let nist = "@{ byte[] FromHex(string h) { var b = new byte[h.Length / 2]; for (var i = 0; i < b.Length; i++) { b[i] = Convert.ToByte(h.Substring(i * 2, 2), 16); } return b; }
        var key = FromHex(\"2b7e151628aed2a6abf7158809cf4f3c\");
        var iv = FromHex(\"000102030405060708090a0b0c0d0e0f\");
        var ct = FromHex(\"6bc1bee22e409f96e93d7e117393172a\").Encrypt(\"Aes\", key, iv);
        return BitConverter.ToString(ct).Replace(\"-\", \"\").ToLower(); }";
    let hex = ev(nist);
    assert_eq!(hex.len(), 64, "{hex}");
    assert_eq!(&hex[..32], "7649abac8119b246cee98e9b12e9197d");
    // AES-192-CBC of "Hello, APIM!" (as .NET's Aes and OpenSSL give it).
    let enc = "@{ var key = Convert.FromBase64String(\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\");
        var iv = Convert.FromBase64String(\"EBESExQVFhcYGRobHB0eHw==\");
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(\"Hello, APIM!\").Encrypt(\"Aes\", key, iv)); }";
    assert_eq!(ev(enc), "NOP1RO4GGphvy02A8E3AQQ==");
    // The corpus's decrypt snippet, shape for shape.
    let dec = "@{ byte[] inBytes = Convert.FromBase64String(\"NOP1RO4GGphvy02A8E3AQQ==\");
        byte[] IV = Convert.FromBase64String(\"EBESExQVFhcYGRobHB0eHw==\");
        byte[] key = Convert.FromBase64String(\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\");
        byte[] decryptedBytes = inBytes.Decrypt(\"Aes\", key, IV);
        return Encoding.UTF8.GetString(decryptedBytes); }";
    assert_eq!(ev(dec), "Hello, APIM!");
    // Round trips at every key size, including an empty input.
    for n in [16, 24, 32] {
        for text in [
            "",
            "x",
            "exactly sixteen!",
            "a longer message spanning blocks",
        ] {
            let src = format!(
                "@{{ var key = new byte[{n}]; var iv = new byte[16]; new Random(7).NextBytes(key); iv[3] = 9;
                    var ct = Encoding.UTF8.GetBytes(\"{text}\").Encrypt(\"AES\", key, iv);
                    return ct.Length + \":\" + Encoding.UTF8.GetString(ct.Decrypt(\"Aes\", key, iv)); }}"
            );
            let want = format!("{}:{text}", (text.len() / 16 + 1) * 16);
            assert_eq!(ev(&src), want, "{n} {text:?}");
        }
    }
    let e = err("@(new byte[3].Encrypt(\"Aes\", new byte[15], new byte[16]))");
    assert_eq!(
        e,
        "CryptographicException: Specified key is not a valid size for this algorithm."
    );
    let e = err("@(new byte[3].Encrypt(\"Aes\", new byte[16], new byte[12]))");
    assert!(
        e.starts_with("CryptographicException: Specified initialization vector"),
        "{e}"
    );
    let e = err("@(new byte[20].Decrypt(\"Aes\", new byte[16], new byte[16]))");
    assert_eq!(
        e,
        "CryptographicException: The input data is not a complete block."
    );
    let e = err("@(new byte[16].Encrypt(\"Aes\", new byte[16], new byte[16]).Decrypt(\"Aes\", new byte[24], new byte[16]))");
    assert_eq!(
        e,
        "CryptographicException: Padding is invalid and cannot be removed."
    );
    assert!(
        err("@(new byte[1].Encrypt(\"DES\", new byte[8], new byte[8]))")
            .starts_with("NotSupportedException")
    );
    assert_eq!(
        ev("@{ try { return new byte[1].Decrypt(\"Aes\", new byte[16], new byte[16]); } catch (CryptographicException e) { return e.Message; } }"),
        "The input data is not a complete block."
    );
}

fn ev_with(ctx: &Ctx, src: &str) -> String {
    let c = compile(src, 0).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    match c.eval(ctx, Limits::default()) {
        Ok(Value::Str(s)) => s.to_string(),
        Ok(other) => serde_json::to_string(&super::value::to_serde(&other)).unwrap(),
        Err(e) => panic!("{src}: {}: {}", e.kind, e.message),
    }
}

const ORDER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- an order -->
<order id="o-17" xmlns:x="urn:extra">
  <customer tier="gold">Contoso &amp; Co</customer>
  <items>
    <item sku="a1" qty="2">Widget</item>
    <item sku="b2" qty="1"><![CDATA[Gadget <large>]]></item>
  </items>
  <x:note>rush</x:note>
  <paid>true</paid>
  <total>12.50</total>
  <empty/>
</order>"#;

fn with_order(body: &str) -> String {
    format!(
        "@{{ var doc = XDocument.Parse(\"{}\"); {body} }}",
        ORDER.replace('"', "\\\"").replace('\n', "\\n")
    )
}

#[test]
fn xml_linq_navigation_values_and_casts() {
    // The corpus's "extracting multiple values" snippet.
    let snippet = "@{ var doc = XDocument.Parse(\"<message1>\\n  <conditionValue>true</conditionValue>\\n  <value1>MESSAGE1_TEST1</value1>\\n  <value2>MESSAGE1_TEST2</value2>\\n  <value3>MESSAGE1_TEST3</value3>\\n</message1>\");
        var obj = new JObject();
        obj[\"conditionValue\"] = doc.Descendants().Where(r=>r.Name.LocalName == \"conditionValue\").First().Value;
        obj[\"value1\"] = doc.Descendants().Where(r=>r.Name.LocalName == \"value1\").First().Value;
        obj[\"value3\"] = doc.Descendants().Where(r=>r.Name.LocalName == \"value3\").First().Value;
        return obj; }";
    assert_eq!(
        ev(snippet),
        r#"{"conditionValue":"true","value1":"MESSAGE1_TEST1","value3":"MESSAGE1_TEST3"}"#
    );
    let cases = [
        ("return doc.Root.Name.ToString();", "order"),
        ("return (string)doc.Root.Attribute(\"id\");", "o-17"),
        ("return doc.Root.Element(\"customer\").Value;", "Contoso & Co"),
        ("return doc.Root.Element(\"customer\").Attribute(\"tier\").Value;", "gold"),
        ("return (string)doc.Root.Element(\"missing\") ?? \"none\";", "none"),
        ("return doc.Root.Elements().Count();", "6"),
        ("return doc.Root.Elements(\"items\").Count();", "1"),
        ("return doc.Descendants(\"item\").Count();", "2"),
        ("return doc.Descendants().Count();", "9"),
        (
            "return string.Join(\",\", doc.Descendants(\"item\").Select(i => (string)i.Attribute(\"sku\") + \"x\" + (int)i.Attribute(\"qty\")));",
            "a1x2,b2x1",
        ),
        ("return doc.Descendants(\"item\").Last().Value;", "Gadget <large>"),
        ("return doc.Descendants(\"item\").Sum(i => (int)i.Attribute(\"qty\"));", "3"),
        ("return (bool)doc.Root.Element(\"paid\");", "true"),
        ("return ((double)doc.Root.Element(\"total\") * 2).ToString();", "25"),
        // Names: strings are local names in no namespace, or {ns}local.
        ("return doc.Root.Element(\"note\") == null;", "true"),
        ("return doc.Root.Element(\"{urn:extra}note\").Value;", "rush"),
        (
            "XNamespace x = \"urn:extra\"; return (string)doc.Root.Element(x + \"note\");",
            "rush",
        ),
        (
            "var n = doc.Root.Elements().First(e => e.Name.NamespaceName != \"\"); return n.Name.LocalName + \"|\" + n.Name.NamespaceName + \"|\" + n.Name;",
            "note|urn:extra|{urn:extra}note",
        ),
        (
            "return doc.Root.Elements().Where(e => e.Name == \"paid\").Count();",
            "1",
        ),
        (
            "return doc.Descendants(\"item\").First().Parent.Name.LocalName + \"/\" + doc.Descendants(\"item\").First().Ancestors().Count();",
            "items/2",
        ),
        (
            "return doc.Root.HasElements + \" \" + doc.Root.Element(\"paid\").HasElements + \" \" + doc.Root.Element(\"empty\").IsEmpty;",
            "True False True",
        ),
        (
            "return string.Join(\" \", doc.Root.Attributes().Select(a => a.Name.LocalName + \"=\" + a.Value));",
            "id=o-17 x=urn:extra",
        ),
        ("return doc.Root.Attribute(\"id\").ToString();", "id=\"o-17\""),
        ("return doc.Root.Element(\"items\") is XElement;", "true"),
        ("return doc.Root.Parent == null && doc.Root.Document != null;", "true"),
        (
            "return doc.Root.Element(\"items\").Element(\"item\") == doc.Descendants(\"item\").First();",
            "true",
        ),
        (
            "return doc.Root.Element(\"items\").ToString();",
            "<items>\n  <item sku=\"a1\" qty=\"2\">Widget</item>\n  <item sku=\"b2\" qty=\"1\"><![CDATA[Gadget <large>]]></item>\n</items>",
        ),
        (
            "return doc.Root.Element(\"x:note\".Substring(2)) == null ? doc.Root.Element(\"{urn:extra}note\").ToString() : \"\";",
            "<x:note xmlns:x=\"urn:extra\">rush</x:note>",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(ev(&with_order(body)), want, "{body}");
    }
    // XDocument.ToString() leaves the declaration out and indents.
    assert_eq!(
        ev(&with_order("return doc.ToString();")),
        "<!-- an order -->\n<order id=\"o-17\" xmlns:x=\"urn:extra\">\n  <customer tier=\"gold\">Contoso &amp; Co</customer>\n  <items>\n    <item sku=\"a1\" qty=\"2\">Widget</item>\n    <item sku=\"b2\" qty=\"1\"><![CDATA[Gadget <large>]]></item>\n  </items>\n  <x:note>rush</x:note>\n  <paid>true</paid>\n  <total>12.50</total>\n  <empty />\n</order>"
    );
    assert_eq!(
        ev("@(XElement.Parse(\"<p>Hello <b>world</b>!</p>\").ToString())"),
        "<p>Hello <b>world</b>!</p>"
    );
    assert_eq!(
        ev("@(XElement.Parse(\"<a>\\n  <b>1</b>\\n  <c></c>\\n</a>\").ToString(SaveOptions.DisableFormatting))"),
        "<a><b>1</b><c></c></a>"
    );
    assert_eq!(
        ev("@(XElement.Parse(\"<a> <b/> </a>\", LoadOptions.PreserveWhitespace).ToString())"),
        "<a> <b /> </a>"
    );
    assert_eq!(ev("@(\"[\" + XElement.Parse(\"<a/>\") + \"]\")"), "[<a />]");
    assert_eq!(ev("@(XName.Get(\"a\", \"urn:n\").ToString())"), "{urn:n}a");
    assert_eq!(
        ev("@(XNamespace.Get(\"urn:n\").GetName(\"a\").LocalName)"),
        "a"
    );
    // Malformed XML and bad casts are exceptions C# code can catch.
    let e = err("@(XDocument.Parse(\"<a><b></a>\"))");
    assert_eq!(
        e,
        "XmlException: The 'b' start tag on line 1 position 5 does not match the end tag of 'a'. Line 1, position 9."
    );
    assert_eq!(
        err("@(XElement.Parse(\"\"))"),
        "XmlException: Root element is missing."
    );
    assert_eq!(
        ev("@{ try { return XDocument.Parse(\"not xml\").Root.Name.LocalName; } catch (XmlException e) { return \"bad: \" + e.Message; } }"),
        "bad: Data at the root level is invalid. Line 1, position 1."
    );
    assert!(
        err(&with_order("return (int)doc.Root.Element(\"customer\");"))
            .starts_with("FormatException")
    );
}

#[test]
fn message_bodies_read_as_xml() {
    let ctx = Ctx::from_sample(&serde_json::json!({
        "request": {"method": "POST", "url": "https://api.contoso.com/x", "body": ORDER},
    }))
    .unwrap();
    assert_eq!(
        ev_with(
            &ctx,
            "@(context.Request.Body.As<XDocument>().Root.Element(\"customer\").Value)"
        ),
        "Contoso & Co"
    );
    assert_eq!(
        ev_with(
            &ctx,
            "@(context.Request.Body.As<XElement>(preserveContent: true).Elements().Count())"
        ),
        "6"
    );
    assert_eq!(
        ev_with(
            &ctx,
            "@((string)context.Request.Body.As<XNode>(true).Attribute(\"id\"))"
        ),
        "o-17"
    );
    let bad = Ctx::from_sample(&serde_json::json!({
        "request": {"method": "POST", "url": "https://api.contoso.com/x", "body": "{\"json\": true}"},
    }))
    .unwrap();
    let c = compile("@(context.Request.Body.As<XDocument>())", 0).unwrap();
    let e = c.eval(&bad, Limits::default()).unwrap_err();
    assert_eq!(e.kind, "XmlException");
}

/// Found probing the input class of the `expr_eval` fuzz target (programs
/// that build large values; the fuzzer's short runs did not reach these
/// sizes): the indented text of a deep element
/// grows with the square of its depth (two spaces a level on every line),
/// so `ToString()` of a 1.4 MB document 200,000 levels deep built some
/// 40 GB before the string limit was checked. The writer now stops at the
/// limit: a limit error; unindented text is linear and still fine.
#[test]
fn fuzz_expr_eval_deep_xml_to_string() {
    let deep = "XElement.Parse(string.Concat(Enumerable.Repeat(\"<a>\", 200000)) + string.Concat(Enumerable.Repeat(\"</a>\", 200000)))";
    let e = err(&format!("@({deep}.ToString().Length)"));
    assert!(e.starts_with("LimitExceeded"), "{e}");
    let e = err(&format!(
        "@(XDocument.Parse({deep}.ToString(SaveOptions.DisableFormatting)).ToString().Length)"
    ));
    assert!(e.starts_with("LimitExceeded"), "{e}");
    // Where no limit is at hand (the element used as a string), the text
    // stops at the allocation limit, which the result then exceeds.
    let e = err(&format!("@(\"\" + {deep})"));
    assert!(e.starts_with("LimitExceeded"), "{e}");
    assert_eq!(
        ev(&format!(
            "@({deep}.ToString(SaveOptions.DisableFormatting).Length)"
        )),
        "1400000"
    );
}

/// Found probing the input class of the `expr_eval` fuzz target: a loop
/// that wraps a list in a list
/// (or a dictionary in a dictionary) builds a value nested 100,000 deep in
/// a few hundred thousand steps; dropping it recursed once per level and
/// overflowed the stack, aborting the process. Containers now unnest their
/// contents when dropped.
#[test]
fn fuzz_expr_eval_deep_json_add() {
    // Each Add copies the token: nesting 50,000 JArrays used to recurse
    // 50,000 deep (a stack overflow) and take quadratic time.
    let e = err("@{ var a = new JArray(); for (int i = 0; i < 50000; i++) { var b = new JArray(); b.Add(a); a = b; } return a.Count; }");
    assert!(e.starts_with("InvalidOperationException"), "{e}");
    assert!(e.contains("deeper than 256"), "{e}");
    // Deepened in place through indexer references (no copy of a deep
    // tree): printing it is refused, dropping it is fine.
    let e = err("@{ var root = new JArray(); var cur = root; for (int i = 0; i < 20000; i++) { cur.Add(new JArray()); cur = (JArray)cur[0]; } return root.ToString(); }");
    assert!(e.starts_with("InvalidOperationException"), "{e}");
    let e = err("@{ var root = new JObject(); var cur = root; for (int i = 0; i < 20000; i++) { cur[\"k\"] = new JObject(); cur = (JObject)cur[\"k\"]; } return root.DeepClone().ToString(); }");
    assert!(e.starts_with("InvalidOperationException"), "{e}");
    // Copied or serialised without a check of its own (JsonConvert, a
    // string concatenation): cut at the limit, never a crash.
    let out = try_ev("@{ var root = new JArray(); var cur = root; for (int i = 0; i < 20000; i++) { cur.Add(new JArray()); cur = (JArray)cur[0]; } return JsonConvert.SerializeObject(root).Length > 0; }")
        .unwrap_or_else(|e| e);
    assert!(out == "true" || out.starts_with("LimitExceeded"), "{out}");
    let out = try_ev("@{ var root = new JArray(); var cur = root; for (int i = 0; i < 20000; i++) { cur.Add(new JArray()); cur = (JArray)cur[0]; } return (\"x\" + root).Length > 0; }")
        .unwrap_or_else(|e| e);
    assert!(out == "true" || out.starts_with("LimitExceeded"), "{out}");
    // A list holding itself is infinitely deep: refused, not recursed.
    let e =
        err("@{ var l = new List<object>(); l.Add(l); return JToken.FromObject(l).ToString(); }");
    assert!(e.starts_with("InvalidOperationException"), "{e}");
    // Lists sharing sublists stand for 2^40 values: refused, not copied.
    let e = err("@{ object o = 1; for (int i = 0; i < 40; i++) { o = new List<object> { o, o }; } return JToken.FromObject(o).Type; }");
    assert!(e.starts_with("InvalidOperationException"), "{e}");
    // Within the limit, nothing changes.
    assert_eq!(
        ev("@{ var a = new JArray(); for (int i = 0; i < 200; i++) { var b = new JArray(); b.Add(a); a = b; } return a.ToString(Formatting.None).Length; }"),
        "402"
    );
}

#[test]
fn fuzz_expr_eval_deep_nesting_drop() {
    for program in [
        "@{ object o = null; for (int i = 0; i < 100000; i++) { var n = new List<object>(); n.Add(o); o = n; } return 1; }",
        "@{ object o = null; for (int i = 0; i < 100000; i++) { o = new List<object> { o }; } o = null; return 2; }",
        "@{ object o = 1; for (int i = 0; i < 100000; i++) { var d = new Dictionary<string, object>(); d[\"k\"] = o; o = d; } return 3; }",
    ] {
        let out = try_ev(program).unwrap_or_else(|e| e);
        assert!(out.len() == 1 || out.starts_with("LimitExceeded"), "{program}: {out}");
    }
}
