//! Who sees what in the portal, as in APIM: anonymous visitors see the
//! published products the `guests` group may see; signed-in developers
//! those of `developers` and of their own groups; administrators see
//! everything. An API is visible when a visible product contains it.

use crate::model::{Api, Catalog, Product, ProductState};
use std::collections::BTreeSet;

/// A visitor's groups.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub uid: Option<String>,
    pub groups: BTreeSet<String>,
    pub admin: bool,
}

impl Viewer {
    pub fn of(c: &Catalog, uid: Option<&str>) -> Viewer {
        let mut groups = BTreeSet::new();
        match uid {
            None => {
                groups.insert("guests".to_string());
            }
            Some(uid) => {
                groups.insert("developers".to_string());
                for (g, members) in &c.group_users {
                    if members.contains(uid) {
                        groups.insert(g.clone());
                    }
                }
            }
        }
        Viewer {
            uid: uid.map(str::to_string),
            admin: groups.contains("administrators"),
            groups,
        }
    }

    /// Whether this visitor sees product `id`.
    pub fn sees_product(&self, c: &Catalog, id: &str) -> bool {
        let Some(p) = c.products.get(id) else {
            return false;
        };
        self.admin
            || (p.state == ProductState::Published
                && c.product_groups
                    .get(id)
                    .is_some_and(|g| !g.is_disjoint(&self.groups)))
    }

    /// The products this visitor sees, by id.
    pub fn products<'c>(&self, c: &'c Catalog) -> Vec<(&'c String, &'c Product)> {
        c.products
            .iter()
            .filter(|(id, _)| self.sees_product(c, id))
            .collect()
    }

    /// Whether this visitor sees API `id`.
    pub fn sees_api(&self, c: &Catalog, id: &str) -> bool {
        if self.admin {
            return c.apis.contains_key(id);
        }
        c.product_apis
            .iter()
            .any(|(p, apis)| apis.contains(id) && self.sees_product(c, p))
    }

    /// The APIs this visitor sees, by id.
    pub fn apis<'c>(&self, c: &'c Catalog) -> Vec<(&'c String, &'c Api)> {
        c.apis
            .iter()
            .filter(|(id, _)| self.sees_api(c, id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Change;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        for (id, state) in [
            ("public", ProductState::Published),
            ("members", ProductState::Published),
            ("draft", ProductState::NotPublished),
        ] {
            c.apply(&Change::Product(
                id.into(),
                Some(Product {
                    display_name: id.into(),
                    description: None,
                    terms: None,
                    subscription_required: true,
                    approval_required: false,
                    subscriptions_limit: None,
                    state,
                }),
            ));
            c.apply(&Change::Api(
                format!("api-{id}"),
                Some(Api {
                    path: id.into(),
                    ..Api::default()
                }),
            ));
            c.apply(&Change::ProductApi(id.into(), format!("api-{id}"), true));
        }
        c.apply(&Change::ProductGroup(
            "public".into(),
            "guests".into(),
            true,
        ));
        c.apply(&Change::ProductGroup(
            "public".into(),
            "developers".into(),
            true,
        ));
        c.apply(&Change::ProductGroup(
            "members".into(),
            "developers".into(),
            true,
        ));
        c.apply(&Change::ProductGroup(
            "draft".into(),
            "developers".into(),
            true,
        ));
        c.apply(&Change::GroupUser(
            "administrators".into(),
            "boss".into(),
            true,
        ));
        c
    }

    fn ids<T>(v: Vec<(&String, T)>) -> Vec<String> {
        v.into_iter().map(|(id, _)| id.clone()).collect()
    }

    #[test]
    fn guests_developers_and_admins_see_their_share() {
        let c = catalog();
        let anon = Viewer::of(&c, None);
        assert_eq!(ids(anon.products(&c)), ["public"]);
        assert_eq!(ids(anon.apis(&c)), ["api-public"]);
        let dev = Viewer::of(&c, Some("dev"));
        assert_eq!(ids(dev.products(&c)), ["members", "public"]);
        assert!(!dev.sees_product(&c, "draft"), "unpublished stays hidden");
        let admin = Viewer::of(&c, Some("boss"));
        assert_eq!(ids(admin.products(&c)).len(), 3);
        assert_eq!(ids(admin.apis(&c)).len(), 3);
    }
}
