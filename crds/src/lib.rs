//! The mooc-recsys custom resources. Every kind is namespaced and served under one API group and
//! version; `kubectl get mooc` lists them all through the shared category.

/// API group of every mooc-recsys kind.
pub const GROUP: &str = "mooc.recsys.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get <category>` lists all four kinds.
pub const CATEGORY: &str = "mooc";

/// `group/version`, as written in a manifest's `apiVersion`.
pub fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_joins_group_and_version() {
        assert_eq!(api_version(), "mooc.recsys.io/v1alpha1");
    }
}
