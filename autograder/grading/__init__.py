"""Grading: the engine, the warm check process, re-evaluation, the evidence schema and the hidden checks."""
