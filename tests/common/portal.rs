//! A cookie-keeping portal client for tests: fetches pages, pulls the CSRF
//! token out of forms, posts forms, and never follows redirects (so tests
//! see them).

use reqwest::StatusCode;

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

/// A fetched page.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of the first `name="csrf"` hidden input.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").expect("page has a csrf field")
    }
}

/// The `value` of the first hidden input named `name`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Browser::page(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        Browser::page(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Fetches `form_page` for its CSRF token, then posts `fields` (plus
    /// the token) to `action`.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(form_page).await.csrf();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post(action, &all).await
    }

    /// Signs up (and so signs in) a new developer.
    pub async fn sign_up(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/signup",
            "/signup",
            &[
                ("email", email),
                ("firstName", "Test"),
                ("lastName", "Developer"),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/signin",
            "/signin",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

impl Page {
    /// The text inside the element with `id="{id}"` (up to its first
    /// child tag or end tag).
    pub fn text_of(&self, id: &str) -> Option<String> {
        let at = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[at..];
        let start = rest.find('>')? + 1;
        let rest = &rest[start..];
        Some(rest[..rest.find('<')?].trim().to_string())
    }

    /// Whether an element has `id="{id}"`.
    pub fn has_id(&self, id: &str) -> bool {
        self.body.contains(&format!("id=\"{id}\""))
    }

    /// The rest of every `id="{prefix}…"`, in page order.
    pub fn ids_with_prefix(&self, prefix: &str) -> Vec<String> {
        let needle = format!("id=\"{prefix}");
        self.body
            .match_indices(&needle)
            .filter_map(|(at, _)| {
                let rest = &self.body[at + needle.len()..];
                Some(rest[..rest.find('"')?].to_string())
            })
            .collect()
    }
}

impl Browser {
    /// Subscribes to `product` through its page's form.
    pub async fn subscribe(&self, product: &str, name: &str, accept_terms: bool) -> Page {
        let mut fields = vec![("name", name)];
        if accept_terms {
            fields.push(("acceptTerms", "on"));
        }
        self.submit(
            &format!("/products/{product}"),
            &format!("/products/{product}/subscribe"),
            &fields,
        )
        .await
    }

    /// The subscription ids on the profile, newest first.
    pub async fn subscription_ids(&self) -> Vec<String> {
        self.get("/profile").await.ids_with_prefix("sub-")
    }

    /// The `(primary, secondary)` keys the profile shows for `sid`.
    pub async fn keys(&self, sid: &str) -> Option<(String, String)> {
        let page = self.get("/profile").await;
        Some((
            page.text_of(&format!("key-primary-{sid}"))?,
            page.text_of(&format!("key-secondary-{sid}"))?,
        ))
    }
}

impl Browser {
    /// Posts `body` as JSON with an optional `X-CSRF-Token` header (what
    /// the console script does); returns the status and the JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        csrf: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} -> {status}: not JSON ({e}): {text}"));
        (status, v)
    }
}
