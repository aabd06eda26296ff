DROP TRIGGER ci_builds_notify_updated_pending ON ci_builds;
DROP TRIGGER ci_builds_notify_inserted_pending ON ci_builds;
DROP FUNCTION lockstep_notify_updated_pending();
DROP FUNCTION lockstep_notify_inserted_pending();
