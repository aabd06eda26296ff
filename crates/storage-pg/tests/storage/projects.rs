//! Projects: creating, listing and loading them.

use lockstep_domain::ProjectId;
use lockstep_storage_pg::{StorageError, create_project, list_projects, load_project};
use lockstep_test_db::TestDb;

#[test]
fn created_projects_are_listed_in_id_order_and_load_by_id() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let web = create_project(&mut conn, "web").unwrap();
    let api = create_project(&mut conn, "api").unwrap();
    assert_eq!(web.name, "web");
    assert!(api.id > web.id);
    assert_eq!(list_projects(&mut conn).unwrap(), vec![web.clone(), api]);
    assert_eq!(load_project(&mut conn, web.id).unwrap(), web);
}

#[test]
fn a_taken_project_name_is_refused() {
    let db = TestDb::new();
    let mut conn = db.connect();
    create_project(&mut conn, "web").unwrap();
    let err = create_project(&mut conn, "web").unwrap_err();
    assert!(
        matches!(err, StorageError::AlreadyExists { entity: "project", ref name } if name == "web"),
        "{err}"
    );
    assert_eq!(list_projects(&mut conn).unwrap().len(), 1);
}

#[test]
fn an_unknown_project_is_not_found() {
    let db = TestDb::new();
    let mut conn = db.connect();
    assert_eq!(list_projects(&mut conn).unwrap(), vec![]);
    let err = load_project(&mut conn, ProjectId(42)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "project",
                id: 42
            }
        ),
        "{err}"
    );
}
