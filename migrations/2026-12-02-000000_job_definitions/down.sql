DROP TABLE ci_job_definitions;
