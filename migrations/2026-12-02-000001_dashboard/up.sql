-- The web dashboard: live pages fed by notifications, and sign-in sessions.
--
-- Live pages (crates/api-http/src/live.rs) follow the same LISTEN connection as long-polling
-- runners, so a page served by any replica hears a change committed through any other. Two more
-- channels, both sent after commit by statement-level triggers:
--
-- * lockstep_pipelines_changed: the ids of the pipelines whose builds were inserted or changed
--   status, ascending and comma-separated. A pipeline page re-renders when it is named.
-- * lockstep_build_logs: the ids of the builds whose log grew. A build page reads on from the
--   offset it has reached, so a notification folded with another one loses nothing.
--
-- As for lockstep_builds_canceling, a list longer than 7000 characters is sent empty instead
-- (NOTIFY payloads stop at 8000 bytes), which asks every page to look again. The channel names
-- are constants in crates/storage-pg/src/notify.rs; a test checks them.
--
-- The insert and update triggers on ci_builds already run once per statement; only their
-- functions change, so a transition still costs one trigger call per statement.

CREATE FUNCTION lockstep_id_list(ids text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(ids) > 7000 THEN '' ELSE ids END
$$;

CREATE OR REPLACE FUNCTION lockstep_notify_inserted_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
    pipelines text;
BEGIN
    SELECT count(*) FILTER (WHERE status = 'pending'),
           string_agg(DISTINCT pipeline_id::text, ',')
    INTO builds, pipelines
    FROM inserted_builds;
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    IF pipelines IS NOT NULL THEN
        PERFORM pg_notify('lockstep_pipelines_changed', lockstep_id_list(pipelines));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION lockstep_notify_updated_builds() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
    canceling text;
    pipelines text;
BEGIN
    -- Only rows that changed status: a row already pending or canceling before was announced then.
    SELECT count(*) FILTER (WHERE n.status = 'pending'),
           string_agg(n.id::text, ',' ORDER BY n.id) FILTER (WHERE n.status = 'canceling'),
           string_agg(DISTINCT n.pipeline_id::text, ',')
    INTO builds, canceling, pipelines
    FROM new_builds AS n
    JOIN old_builds AS o ON o.id = n.id
    WHERE n.status <> o.status;
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    IF canceling IS NOT NULL THEN
        PERFORM pg_notify('lockstep_builds_canceling', lockstep_id_list(canceling));
    END IF;
    IF pipelines IS NOT NULL THEN
        PERFORM pg_notify('lockstep_pipelines_changed', lockstep_id_list(pipelines));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION lockstep_notify_logged() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds text;
BEGIN
    SELECT string_agg(DISTINCT build_id::text, ',') INTO builds FROM appended_chunks;
    IF builds IS NOT NULL THEN
        PERFORM pg_notify('lockstep_build_logs', lockstep_id_list(builds));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER build_log_chunks_notify_logged
AFTER INSERT ON build_log_chunks
REFERENCING NEW TABLE AS appended_chunks
FOR EACH STATEMENT EXECUTE FUNCTION lockstep_notify_logged();

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is kept, as for runner
-- tokens, so a copy of this table signs nobody in. Each session has its own CSRF token, which
-- every state-changing form must send back. Sessions are only inserted and deleted, never
-- locked: they take no place in the lock order (docs/locking.md).
CREATE TABLE web_sessions (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    csrf_token text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > created_at)
);

CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);
