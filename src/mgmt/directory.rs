//! Users, groups and memberships, named values, backends and locations.

use super::body::{self, ensure_valid, flag, now};
use super::resource::{Link, Resource};
use super::MgmtState;
use crate::error::{ApiError, Detail, Secret};
use crate::model::{
    credentials, user_of_owner, Backend, BackendType, Catalog, Change, Group, Location, NamedValue,
    User, UserCredentials,
};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, BTreeSet};

impl Resource for User {
    const NAME: &'static str = "user";
    const READ_ONLY: &'static [&'static str] = &["registrationDate", "groups"];

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.users
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(&mut details);
        let password = new.password.take();
        if let Some(problem) = password
            .as_ref()
            .and_then(|p| credentials::password_problem(p.expose(), &new.email))
        {
            details.push(Detail::new("password", problem));
        }
        ensure_valid(details)?;
        if let Some((other, _)) = c
            .users
            .iter()
            .find(|(uid, u)| *uid != id && u.email.eq_ignore_ascii_case(&new.email))
        {
            return Err(ApiError {
                details: vec![Detail::new("email", "already used by another user")],
                ..ApiError::conflict(format!("email is already used by user {other:?}"))
            });
        }
        new.registration_date = old.map(|o| o.registration_date.clone()).unwrap_or_else(now);
        let mut changes = vec![Change::User(id.into(), Some(new))];
        if let Some(password) = password {
            // A new password signs every portal session of the user out.
            let epoch = c
                .user_credentials
                .get(id)
                .map_or(0, |cr| cr.session_epoch + 1);
            let hash = credentials::hash_password(password.expose()).map_err(|e| {
                tracing::error!(error = %e, "user password");
                ApiError::internal()
            })?;
            changes.push(Change::UserCredentials(
                id.into(),
                Some(UserCredentials {
                    password_hash: Secret::new(hash),
                    session_epoch: epoch,
                }),
            ));
        }
        if old.is_none() {
            // Every user is a developer (APIM's built-in Developers group).
            changes.push(Change::GroupUser("developers".into(), id.into(), true));
        }
        Ok(changes)
    }

    /// Refused while the user owns subscriptions unless
    /// `deleteSubscriptions=true`; memberships always go with the user.
    fn plan_delete(id: &str, c: &Catalog, q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        let subs: Vec<&String> = c
            .subscriptions
            .iter()
            .filter(|(_, s)| s.owner_id.as_deref().and_then(user_of_owner) == Some(id))
            .map(|(sid, _)| sid)
            .collect();
        if !subs.is_empty() && !flag(q, "deleteSubscriptions") {
            return Err(ApiError::conflict(format!(
                "user {id:?} owns {} subscription(s); delete them first or pass deleteSubscriptions=true",
                subs.len()
            )));
        }
        let mut changes = vec![Change::User(id.into(), None)];
        if c.user_credentials.contains_key(id) {
            changes.push(Change::UserCredentials(id.into(), None));
        }
        changes.extend(
            subs.into_iter()
                .map(|sid| Change::Subscription(sid.clone(), None)),
        );
        for (g, members) in &c.group_users {
            if members.contains(id) {
                changes.push(Change::GroupUser(g.clone(), id.into(), false));
            }
        }
        Ok(changes)
    }
}

impl Resource for Group {
    const NAME: &'static str = "group";
    const READ_ONLY: &'static [&'static str] = &["builtIn"];

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.groups
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        old: Option<&Self>,
        _c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        if old.is_some_and(|g| g.built_in) {
            return Err(ApiError::conflict(format!(
                "group {id:?} is built in and cannot be changed"
            )));
        }
        let mut details = Vec::new();
        new.normalize(id, &mut details);
        ensure_valid(details)?;
        new.built_in = false;
        Ok(vec![Change::Group(id.into(), Some(new))])
    }

    fn plan_delete(id: &str, c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        if c.groups.get(id).is_some_and(|g| g.built_in) {
            return Err(ApiError::conflict(format!(
                "group {id:?} is built in and cannot be deleted"
            )));
        }
        let mut changes = vec![Change::Group(id.into(), None)];
        for u in c.group_users.get(id).into_iter().flatten() {
            changes.push(Change::GroupUser(id.into(), u.clone(), false));
        }
        for (p, groups) in &c.product_groups {
            if groups.contains(id) {
                changes.push(Change::ProductGroup(p.clone(), id.into(), false));
            }
        }
        Ok(changes)
    }
}

/// Group ↔ user.
pub struct GroupUsers;

impl Link for GroupUsers {
    type Parent = Group;
    type Child = User;

    fn map(c: &Catalog) -> &BTreeMap<String, BTreeSet<String>> {
        &c.group_users
    }

    fn change(parent: &str, child: &str, on: bool) -> Change {
        Change::GroupUser(parent.into(), child.into(), on)
    }

    fn check_link(group: &str, _user: &str, _c: &Catalog) -> Result<(), ApiError> {
        if group == "guests" {
            return Err(ApiError::invalid(
                "groupId",
                "guests are anonymous portal visitors; users cannot be added to it",
            ));
        }
        Ok(())
    }

    fn check_unlink(group: &str, _user: &str, _c: &Catalog) -> Result<(), ApiError> {
        if group == "developers" {
            return Err(ApiError::conflict(
                "every user is a member of developers; delete the user instead",
            ));
        }
        Ok(())
    }
}

/// `GET /mgmt/users/{u}/groups`
pub async fn groups_of_user(
    State(s): State<MgmtState>,
    Path(u): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    if !c.users.contains_key(&u) {
        return Err(ApiError::not_found(format!("user {u:?}")));
    }
    let items = c
        .group_users
        .iter()
        .filter(|(_, members)| members.contains(&u))
        .filter_map(|(g, _)| c.groups.get(g).map(|e| e.view(g)))
        .collect();
    body::list_response(items, q.as_deref())
}

impl Resource for NamedValue {
    const NAME: &'static str = "named value";

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.named_values
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        _old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(id, &mut details);
        ensure_valid(details)?;
        if let Some((other, _)) = c
            .named_values
            .iter()
            .find(|(nid, nv)| *nid != id && nv.display_name.eq_ignore_ascii_case(&new.display_name))
        {
            return Err(ApiError {
                details: vec![Detail::new(
                    "displayName",
                    "already used by another named value",
                )],
                ..ApiError::conflict(format!(
                    "displayName {:?} is already used by named value {other:?}",
                    new.display_name
                ))
            });
        }
        Ok(vec![Change::NamedValue(id.into(), Some(new))])
    }

    /// Refused (409) while a policy references the named value.
    fn plan_delete(id: &str, c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        if let Some(nv) = c.named_values.get(id) {
            let users: Vec<&str> = c
                .policies
                .iter()
                .filter(|(_, doc)| {
                    crate::policy::named_value_refs(&doc.xml)
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(&nv.display_name))
                })
                .map(|(scope, _)| scope.as_str())
                .collect();
            if !users.is_empty() {
                return Err(ApiError::conflict(format!(
                    "named value {:?} is used by the policies of: {}",
                    nv.display_name,
                    users.join(", ")
                )));
            }
        }
        Ok(vec![Change::NamedValue(id.into(), None)])
    }

    /// A secret's value is never shown; `listValue` returns it.
    fn view(&self, id: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            if self.secret {
                obj.remove("value");
            }
            obj.insert("id".into(), id.into());
        }
        v
    }
}

/// `POST /mgmt/named-values/{id}/listValue` → `{value}`.
pub async fn list_value(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let nv = c
        .named_values
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("named value {id:?}")))?;
    Ok(axum::Json(serde_json::json!({ "value": nv.value.expose() })).into_response())
}

impl Resource for Backend {
    const NAME: &'static str = "backend";

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.backends
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(&mut details);
        ensure_valid(details)?;
        details = pool_references(id, &new, c);
        for cid in &new.credentials.certificate_ids {
            if !c
                .certificates
                .contains_key(crate::model::certificate_ref_id(cid))
            {
                details.push(Detail::new(
                    "credentials.certificateIds",
                    format!(
                        "certificate {cid:?} does not exist (PUT /mgmt/certificates/{cid} first)"
                    ),
                ));
            }
        }
        ensure_valid(details)?;
        // GET hides the authorization parameter; a PUT that omits it keeps it.
        if let (Some(auth), Some(old_auth)) = (
            new.credentials.authorization.as_mut(),
            old.and_then(|o| o.credentials.authorization.as_ref()),
        ) {
            if auth.parameter.is_empty() && auth.scheme == old_auth.scheme {
                auth.parameter = old_auth.parameter.clone();
            }
        }
        Ok(vec![Change::Backend(id.into(), Some(new))])
    }

    /// A backend a pool uses cannot go: 409 naming the pools.
    fn plan_delete(id: &str, c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        let users = pools_using(id, c);
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "backend {id:?} is a member of the pool(s) {}; remove it from them first",
                users.join(", ")
            )));
        }
        Ok(vec![Change::Backend(id.into(), None)])
    }

    /// The authorization parameter is a credential: never shown.
    fn view(&self, id: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(auth) = v
            .pointer_mut("/credentials/authorization")
            .and_then(|a| a.as_object_mut())
        {
            auth.remove("parameter");
        }
        if let Some(obj) = v.as_object_mut() {
            obj.insert("id".into(), id.into());
        }
        v
    }
}

impl Resource for Location {
    const NAME: &'static str = "location";

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.locations
    }

    /// Region names are free text ("West US"): letters, digits, spaces,
    /// '.', '_', '-', at most 80.
    fn check_id(id: &str) -> Result<(), Detail> {
        let ok = !id.trim().is_empty()
            && id.len() <= 80
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'));
        if ok {
            Ok(())
        } else {
            Err(Detail::new(
                "id",
                "a region name: 1-80 letters, digits, spaces, '.', '_' or '-'",
            ))
        }
    }

    fn plan_put(
        id: &str,
        new: Self,
        _old: Option<&Self>,
        _c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        Ok(vec![Change::Location(id.into(), Some(new))])
    }

    fn plan_delete(id: &str, _c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        Ok(vec![Change::Location(id.into(), None)])
    }
}

/// The pools that list backend `id` as a member.
fn pools_using(id: &str, c: &Catalog) -> Vec<String> {
    c.backends
        .iter()
        .filter(|(pid, b)| {
            pid.as_str() != id
                && b.pool
                    .as_ref()
                    .is_some_and(|p| p.services.iter().any(|m| m.id == id))
        })
        .map(|(pid, _)| pid.clone())
        .collect()
}

/// Cross-resource checks of a backend write: a pool's members exist and
/// are single backends (pools do not nest), and a backend some pool uses
/// stays a single backend.
fn pool_references(id: &str, new: &Backend, c: &Catalog) -> Vec<Detail> {
    let mut details = Vec::new();
    if let Some(pool) = &new.pool {
        for (i, m) in pool.services.iter().enumerate() {
            let target = format!("pool.services[{i}].id");
            match c.backends.get(&m.id) {
                _ if m.id == id => {
                    details.push(Detail::new(target, "a pool cannot contain itself"))
                }
                None => details.push(Detail::new(
                    target,
                    format!("backend {:?} does not exist", m.id),
                )),
                Some(b) if b.kind == BackendType::Pool => details.push(Detail::new(
                    target,
                    format!(
                        "backend {:?} is a pool; pools contain only single backends",
                        m.id
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    if new.kind == BackendType::Pool {
        let users = pools_using(id, c);
        if !users.is_empty() {
            details.push(Detail::new(
                "type",
                format!(
                    "this backend is a member of the pool(s) {}; pools contain only single backends",
                    users.join(", ")
                ),
            ));
        }
    }
    details
}
