"""Hidden checks: pytest modules run by the grader on a submission's evidence."""
