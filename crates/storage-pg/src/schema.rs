// @generated automatically by Diesel CLI.

diesel::table! {
    build_log_checks (build_id) {
        build_id -> Int8,
        reported_bytes -> Int8,
        reported_sha256 -> Bytea,
        stored_bytes -> Int8,
        stored_sha256 -> Bytea,
        complete -> Bool,
        checked_at -> Timestamptz,
    }
}

diesel::table! {
    build_log_chunks (build_id, byte_offset) {
        build_id -> Int8,
        byte_offset -> Int8,
        data -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ci_builds (id) {
        id -> Int8,
        pipeline_id -> Int8,
        name -> Text,
        stage -> Text,
        stage_idx -> Int4,
        needs -> Nullable<Array<Text>>,
        run_when -> Text,
        allow_failure -> Bool,
        script -> Array<Text>,
        tags -> Array<Text>,
        environment -> Nullable<Text>,
        timeout_seconds -> Int4,
        retry_limit -> Int4,
        attempt -> Int4,
        status -> Text,
        runner_id -> Nullable<Int8>,
        lease_expires_at -> Nullable<Timestamptz>,
        failure_reason -> Nullable<Text>,
        exit_code -> Nullable<Int4>,
        created_at -> Timestamptz,
        queued_at -> Nullable<Timestamptz>,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        resource_group_id -> Nullable<Int8>,
        interruptible -> Bool,
        canceling_since -> Nullable<Timestamptz>,
        acknowledged_at -> Nullable<Timestamptz>,
        retry_when -> Array<Text>,
        retry_exit_codes -> Array<Int4>,
        allow_failure_exit_codes -> Nullable<Array<Int4>>,
        retry_of -> Nullable<Int8>,
        automatic_retry -> Bool,
    }
}

diesel::table! {
    ci_caches (id) {
        id -> Int8,
        project_id -> Int8,
        cache_key -> Text,
        object_key -> Text,
        size_bytes -> Int8,
        sha256 -> Bytea,
        build_id -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    ci_job_artifacts (build_id) {
        build_id -> Int8,
        pipeline_id -> Int8,
        job_name -> Text,
        file_name -> Text,
        object_key -> Text,
        size_bytes -> Int8,
        sha256 -> Bytea,
        entries -> Jsonb,
        entry_count -> Int4,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    ci_job_definitions (pipeline_id, name) {
        pipeline_id -> Int8,
        name -> Text,
        before_script -> Array<Text>,
        after_script -> Array<Text>,
        variables -> Jsonb,
        environment_action -> Text,
        artifacts -> Nullable<Jsonb>,
        caches -> Jsonb,
        dependencies -> Array<Text>,
    }
}

diesel::table! {
    deployments (id) {
        id -> Int8,
        build_id -> Int8,
        environment_id -> Int8,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    environments (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    live_viewers (replica) {
        replica -> Text,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    pipeline_refs (id) {
        id -> Int8,
        project_id -> Int8,
        #[sql_name = "ref"]
        ref_ -> Text,
        pipelines -> Int8,
    }
}

diesel::table! {
    pipelines (id) {
        id -> Int8,
        project_id -> Int8,
        #[sql_name = "ref"]
        ref_ -> Text,
        sha -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        auto_canceled_by -> Nullable<Int8>,
    }
}

diesel::table! {
    projects (id) {
        id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
        keep_latest_artifacts -> Bool,
    }
}

diesel::table! {
    resource_groups (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        process_mode -> Text,
        slot_limit -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    runners (id) {
        id -> Int8,
        name -> Text,
        tags -> Array<Text>,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        contacted_at -> Nullable<Timestamptz>,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    web_sessions (token_hash) {
        token_hash -> Bytea,
        csrf_token -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(build_log_checks -> ci_builds (build_id));
diesel::joinable!(build_log_chunks -> ci_builds (build_id));
diesel::joinable!(ci_builds -> pipelines (pipeline_id));
diesel::joinable!(ci_builds -> resource_groups (resource_group_id));
diesel::joinable!(ci_builds -> runners (runner_id));
diesel::joinable!(ci_caches -> projects (project_id));
diesel::joinable!(ci_job_artifacts -> ci_builds (build_id));
diesel::joinable!(ci_job_artifacts -> pipelines (pipeline_id));
diesel::joinable!(ci_job_definitions -> pipelines (pipeline_id));
diesel::joinable!(deployments -> ci_builds (build_id));
diesel::joinable!(deployments -> environments (environment_id));
diesel::joinable!(environments -> projects (project_id));
diesel::joinable!(pipeline_refs -> projects (project_id));
diesel::joinable!(pipelines -> projects (project_id));
diesel::joinable!(resource_groups -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    build_log_checks,
    build_log_chunks,
    ci_builds,
    ci_caches,
    ci_job_artifacts,
    ci_job_definitions,
    deployments,
    environments,
    live_viewers,
    pipeline_refs,
    pipelines,
    projects,
    resource_groups,
    runners,
    web_sessions,
);
