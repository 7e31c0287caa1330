//! The router, with the paths it serves written down as it is built, so
//! the OpenAPI document can be checked against what is really routed.

use super::AppState;
use axum::routing::MethodRouter;
use axum::Router;

/// A router under construction and the paths added to it.
pub(super) struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    pub(super) fn new() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    /// As [`Router::route`], remembering the path.
    pub(super) fn route(mut self, path: &'static str, method: MethodRouter<AppState>) -> Self {
        self.paths.push(path);
        self.router = self.router.route(path, method);
        self
    }

    pub(super) fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    pub(super) fn into_router(self) -> Router<AppState> {
        self.router
    }
}
