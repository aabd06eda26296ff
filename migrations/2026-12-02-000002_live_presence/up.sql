-- The dashboard's notifications only while a page is open.
--
-- lockstep_pipelines_changed and lockstep_build_logs (the dashboard migration) fire on nearly
-- every transition, claims and reports included, and a notifying commit takes PostgreSQL's
-- notification queue lock, so such commits queue behind each other: storage claim+complete ran
-- about 15% slower with them (docs/performance.md). Nobody needs them while no live page is
-- open, which is most of the time on a busy coordinator.
--
-- So each server replica with live pages open keeps a row here, refreshed while they stay open
-- and left to expire after (crates/api-http/src/live/presence.rs), and the triggers notify only
-- while some row is live. The check runs inside the trigger function, which PostgreSQL plans as
-- a separate query with a fresh snapshot taken after the statement's writes, so a statement
-- either sees a row committed before that moment or belongs to a transaction that the replica
-- waits out after registering, before it tells its pages to read again: no change is missed.
--
-- The row is only ever upserted and deleted by its own replica, never locked by a transition:
-- it takes no place in the lock order (docs/locking.md).

CREATE TABLE live_viewers (
    replica text PRIMARY KEY CHECK (length(replica) BETWEEN 1 AND 100),
    expires_at timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION lockstep_notify_inserted_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
    pipelines text;
    watched boolean := EXISTS (SELECT 1 FROM live_viewers WHERE expires_at > now());
BEGIN
    SELECT count(*) FILTER (WHERE status = 'pending'),
           string_agg(DISTINCT pipeline_id::text, ',') FILTER (WHERE watched)
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
    watched boolean := EXISTS (SELECT 1 FROM live_viewers WHERE expires_at > now());
BEGIN
    -- Only rows that changed status: a row already pending or canceling before was announced then.
    SELECT count(*) FILTER (WHERE n.status = 'pending'),
           string_agg(n.id::text, ',' ORDER BY n.id) FILTER (WHERE n.status = 'canceling'),
           string_agg(DISTINCT n.pipeline_id::text, ',') FILTER (WHERE watched)
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

CREATE OR REPLACE FUNCTION lockstep_notify_logged() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM live_viewers WHERE expires_at > now()) THEN
        RETURN NULL;
    END IF;
    SELECT string_agg(DISTINCT build_id::text, ',') INTO builds FROM appended_chunks;
    IF builds IS NOT NULL THEN
        PERFORM pg_notify('lockstep_build_logs', lockstep_id_list(builds));
    END IF;
    RETURN NULL;
END
$$;
