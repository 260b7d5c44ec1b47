"""Hidden checks and grading engine of the spam-vs-ham Transformer lab (never released)."""
