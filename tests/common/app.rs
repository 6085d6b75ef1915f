//! The API's state over a test database, with reports in a temp directory of its own.

use super::TestDb;
use std::collections::BTreeMap;
use vctp::api::AppState;
use vctp::objstore::Objects;

/// The app, its store, and the directory its reports live in.
pub struct App {
    pub db: TestDb,
    pub state: AppState,
    _reports: tempfile::TempDir,
}

pub fn app(db: TestDb) -> App {
    let reports = tempfile::tempdir().unwrap();
    let objects = Objects::from_url(reports.path().to_str().unwrap(), &BTreeMap::new()).unwrap();
    let state = AppState::new(db.store.clone(), objects).unwrap();
    App {
        db,
        state,
        _reports: reports,
    }
}
