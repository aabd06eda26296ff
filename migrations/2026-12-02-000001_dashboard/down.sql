DROP TABLE web_sessions;

DROP TRIGGER build_log_chunks_notify_logged ON build_log_chunks;
DROP FUNCTION lockstep_notify_logged();

CREATE OR REPLACE FUNCTION lockstep_notify_updated_builds() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
    canceling text;
BEGIN
    SELECT count(*) FILTER (WHERE n.status = 'pending'),
           string_agg(n.id::text, ',' ORDER BY n.id) FILTER (WHERE n.status = 'canceling')
    INTO builds, canceling
    FROM new_builds AS n
    JOIN old_builds AS o ON o.id = n.id
    WHERE n.status <> o.status AND n.status IN ('pending', 'canceling');
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    IF canceling IS NOT NULL THEN
        IF length(canceling) > 7000 THEN
            canceling := '';
        END IF;
        PERFORM pg_notify('lockstep_builds_canceling', canceling);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION lockstep_notify_inserted_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
BEGIN
    SELECT count(*) INTO builds FROM inserted_builds WHERE status = 'pending';
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    RETURN NULL;
END
$$;

DROP FUNCTION lockstep_id_list(text);
