"""Evaluation: generation backends, extraction, equivalence-aware metrics, reports and suites."""
