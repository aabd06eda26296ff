-- What a runner said of a build's log when it reported the build, against what the server
-- stored: so that a log cut short on the way (a chunk lost, an upload given up) shows.
--
-- One row per build, written (and rewritten by a repeated report) last in the finish
-- transition, after every lock of the canonical order: the only lock it adds is the one row it
-- upserts (its foreign key takes FOR KEY SHARE on the build, which conflicts with nothing a
-- transition takes).
-- stored_sha256 is PostgreSQL's sha256() of the stored chunks in order, reported_sha256 the
-- runner's of the bytes it meant to store; complete says they and the lengths agree.

CREATE TABLE build_log_checks (
    build_id bigint PRIMARY KEY REFERENCES ci_builds (id),
    reported_bytes bigint NOT NULL CHECK (reported_bytes >= 0),
    reported_sha256 bytea NOT NULL CHECK (length(reported_sha256) = 32),
    stored_bytes bigint NOT NULL CHECK (stored_bytes >= 0),
    stored_sha256 bytea NOT NULL CHECK (length(stored_sha256) = 32),
    complete boolean NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now(),
    CHECK (complete = (reported_bytes = stored_bytes AND reported_sha256 = stored_sha256))
);
