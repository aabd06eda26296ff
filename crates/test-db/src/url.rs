//! Naming another database on the same server: the server URL, with its database swapped.

/// `url` with its database replaced by `database`, keeping user, host, port and parameters.
///
/// Handles `postgres://user@host:port/db?params` and the socket form
/// `postgres://user@/db?host=/socket/dir&port=5432`; a `key=value` connection string gets a
/// trailing `dbname=` instead, since libpq lets the last keyword win.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={database}");
    };
    let authority_start = scheme_end + "://".len();
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |offset| authority_start + offset);
    let rest = &url[authority_end..];
    let parameters = if rest.starts_with('/') {
        rest.find(['?', '#']).map_or("", |offset| &rest[offset..])
    } else {
        rest
    };
    format!("{}/{database}{parameters}", &url[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[track_caller]
    fn check(url: &str, expected: &str) {
        assert_eq!(with_database(url, "lockstep_test_7_1"), expected);
    }

    #[test]
    fn replaces_the_database_of_a_tcp_url() {
        check(
            "postgres://user:secret@db.example:5433/lockstep?sslmode=disable",
            "postgres://user:secret@db.example:5433/lockstep_test_7_1?sslmode=disable",
        );
        check(
            "postgresql://localhost/lockstep",
            "postgresql://localhost/lockstep_test_7_1",
        );
    }

    #[test]
    fn replaces_the_database_of_a_socket_url() {
        check(
            "postgres://postgres@/lockstep?host=/w/target/lockstep-db/cluster/socket&port=5432",
            "postgres://postgres@/lockstep_test_7_1?host=/w/target/lockstep-db/cluster/socket&port=5432",
        );
    }

    #[test]
    fn adds_a_database_to_a_url_without_one() {
        check(
            "postgres://localhost",
            "postgres://localhost/lockstep_test_7_1",
        );
        check(
            "postgres://localhost/",
            "postgres://localhost/lockstep_test_7_1",
        );
        check(
            "postgres://?host=/run/postgresql",
            "postgres:///lockstep_test_7_1?host=/run/postgresql",
        );
    }

    #[test]
    fn appends_dbname_to_a_keyword_connection_string() {
        check(
            "host=/run/postgresql dbname=lockstep",
            "host=/run/postgresql dbname=lockstep dbname=lockstep_test_7_1",
        );
    }
}
