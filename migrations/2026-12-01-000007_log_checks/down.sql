DROP TABLE build_log_checks;
