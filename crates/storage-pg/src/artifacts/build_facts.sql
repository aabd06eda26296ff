-- What an archive of build $1 needs to know: who holds the build, its pipeline and project,
-- its job's name, and what the job declared (artifacts, dependencies). No lock: the upload
-- transaction has locked the build already, and the fetches only read.
SELECT b.status, b.runner_id, b.pipeline_id, p.project_id, b.name,
       jd.artifacts::text AS artifacts,
       COALESCE(jd.dependencies, '{}') AS dependencies
FROM ci_builds AS b
JOIN pipelines AS p ON p.id = b.pipeline_id
LEFT JOIN ci_job_definitions AS jd ON jd.pipeline_id = b.pipeline_id AND jd.name = b.name
WHERE b.id = $1
