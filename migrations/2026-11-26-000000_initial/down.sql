DROP TABLE build_log_chunks;
DROP TABLE deployments;
DROP TABLE environments;
DROP TABLE ci_builds;
DROP TABLE pipelines;
DROP TABLE runners;
DROP TABLE projects;
