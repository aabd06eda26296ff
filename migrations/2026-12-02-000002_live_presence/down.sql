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

CREATE OR REPLACE FUNCTION lockstep_notify_logged() RETURNS trigger
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


DROP TABLE live_viewers;
