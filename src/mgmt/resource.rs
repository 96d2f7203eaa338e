//! The shape every top-level resource shares: GET one (with `ETag`), list,
//! PUT (create 201 / replace 200, `If-Match`), DELETE (204, `If-Match`).
//!
//! To add a resource: implement [`Resource`] for its model type (how to
//! find it in the catalog, how a PUT and a DELETE become changes, what GET
//! may show), then route `get_one::<T>`, `list::<T>`, `put_one::<T>` and
//! `delete_one::<T>`.

use super::body::{self, check_if_match, etag, with_etag};
use super::{commit, MgmtState};
use crate::error::{ApiError, Detail};
use crate::model::{validate_id, Catalog, Change};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A top-level management resource.
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Name used in messages ("API", "product", ...).
    const NAME: &'static str;
    /// Properties GET shows that a PUT may send back and that are ignored.
    const READ_ONLY: &'static [&'static str] = &[];

    /// Where the catalog keeps this kind.
    fn all(c: &Catalog) -> &BTreeMap<String, Self>;

    /// Checks the id in the URL.
    fn check_id(id: &str) -> Result<(), Detail> {
        validate_id("id", id)
    }

    /// Turns a PUT into changes: normalise, check against the catalog,
    /// keep what a replace keeps (server-set fields, secrets).
    fn plan_put(
        id: &str,
        new: Self,
        old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError>;

    /// Turns a DELETE of an existing entity into changes (with cascades).
    fn plan_delete(id: &str, c: &Catalog, query: Option<&str>) -> Result<Vec<Change>, ApiError>;

    /// The GET representation; must not show secrets.
    fn view(&self, id: &str) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("id".into(), Value::String(id.to_string()));
        }
        v
    }
}

fn not_found<R: Resource>(id: &str) -> ApiError {
    ApiError::not_found(format!("{} {id:?}", R::NAME))
}

pub async fn get_one<R: Resource>(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let entity = R::all(&c).get(&id).ok_or_else(|| not_found::<R>(&id))?;
    Ok(with_etag(StatusCode::OK, entity.view(&id), &etag(entity)))
}

pub async fn list<R: Resource>(
    State(s): State<MgmtState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let items = R::all(&c).iter().map(|(id, e)| e.view(id)).collect();
    body::list_response(items, q.as_deref())
}

pub async fn put_one<R: Resource>(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    R::check_id(&id).map_err(|d| ApiError::invalid_all(vec![d]))?;
    let bytes = body::read(body, &headers, s.max_body).await?;
    put_bytes::<R>(&s, id, headers, &bytes).await
}

/// [`put_one`] once the body is read.
pub async fn put_bytes<R: Resource>(
    s: &MgmtState,
    id: String,
    headers: HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let new: R = body::parse(bytes, &id, R::READ_ONLY)?;
    let created = Arc::new(AtomicBool::new(false));
    let (pid, flag) = (id.clone(), created.clone());
    let c = commit(s, move |c| {
        let old = R::all(c).get(&pid);
        check_if_match(&headers, old.map(etag).as_deref())?;
        flag.store(old.is_none(), Ordering::Relaxed);
        R::plan_put(&pid, new, old, c)
    })
    .await?;
    let entity = R::all(&c).get(&id).ok_or_else(ApiError::internal)?;
    let status = if created.load(Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(status, entity.view(&id), &etag(entity)))
}

pub async fn delete_one<R: Resource>(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    commit(&s, move |c| {
        let old = R::all(c).get(&id).ok_or_else(|| not_found::<R>(&id))?;
        check_if_match(&headers, Some(&etag(old)))?;
        R::plan_delete(&id, c, q.as_deref())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A many-to-many link between two resources, addressed as
/// `/{parents}/{p}/{children}/{c}`: PUT links (201, or 200 when already
/// linked), GET shows the linked child, DELETE unlinks (204).
pub trait Link: Send + Sync + 'static {
    type Parent: Resource;
    type Child: Resource;

    /// parent id → linked child ids.
    fn map(c: &Catalog) -> &BTreeMap<String, std::collections::BTreeSet<String>>;

    fn change(parent: &str, child: &str, on: bool) -> Change;

    /// Extra rules for linking (e.g. one open product per API).
    fn check_link(_parent: &str, _child: &str, _c: &Catalog) -> Result<(), ApiError> {
        Ok(())
    }

    /// Extra rules for unlinking.
    fn check_unlink(_parent: &str, _child: &str, _c: &Catalog) -> Result<(), ApiError> {
        Ok(())
    }
}

fn linked<L: Link>(c: &Catalog, parent: &str, child: &str) -> bool {
    L::map(c).get(parent).is_some_and(|s| s.contains(child))
}

fn parent_exists<L: Link>(c: &Catalog, parent: &str) -> Result<(), ApiError> {
    if L::Parent::all(c).contains_key(parent) {
        Ok(())
    } else {
        Err(not_found::<L::Parent>(parent))
    }
}

fn child_view<L: Link>(c: &Catalog, child: &str) -> Result<Value, ApiError> {
    L::Child::all(c)
        .get(child)
        .map(|e| e.view(child))
        .ok_or_else(|| not_found::<L::Child>(child))
}

pub async fn list_links<L: Link>(
    State(s): State<MgmtState>,
    Path(parent): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    parent_exists::<L>(&c, &parent)?;
    let items = L::map(&c)
        .get(&parent)
        .into_iter()
        .flatten()
        .filter_map(|child| child_view::<L>(&c, child).ok())
        .collect();
    body::list_response(items, q.as_deref())
}

pub async fn get_link<L: Link>(
    State(s): State<MgmtState>,
    Path((parent, child)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    parent_exists::<L>(&c, &parent)?;
    if !linked::<L>(&c, &parent, &child) {
        return Err(ApiError::not_found(format!(
            "{} {child:?} in {} {parent:?}",
            L::Child::NAME,
            L::Parent::NAME
        )));
    }
    Ok(axum::response::IntoResponse::into_response(axum::Json(
        child_view::<L>(&c, &child)?,
    )))
}

pub async fn put_link<L: Link>(
    State(s): State<MgmtState>,
    Path((parent, child)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let created = Arc::new(AtomicBool::new(false));
    let (p, ch, flag) = (parent.clone(), child.clone(), created.clone());
    let c = commit(&s, move |c| {
        parent_exists::<L>(c, &p)?;
        child_view::<L>(c, &ch)?;
        if linked::<L>(c, &p, &ch) {
            return Ok(vec![]);
        }
        L::check_link(&p, &ch, c)?;
        flag.store(true, Ordering::Relaxed);
        Ok(vec![L::change(&p, &ch, true)])
    })
    .await?;
    let status = if created.load(Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(axum::response::IntoResponse::into_response((
        status,
        axum::Json(child_view::<L>(&c, &child)?),
    )))
}

pub async fn delete_link<L: Link>(
    State(s): State<MgmtState>,
    Path((parent, child)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    commit(&s, move |c| {
        parent_exists::<L>(c, &parent)?;
        if !linked::<L>(c, &parent, &child) {
            return Err(ApiError::not_found(format!(
                "{} {child:?} in {} {parent:?}",
                L::Child::NAME,
                L::Parent::NAME
            )));
        }
        L::check_unlink(&parent, &child, c)?;
        Ok(vec![L::change(&parent, &child, false)])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
