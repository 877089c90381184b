"""Evaluating graders against human grades: datasets, runs, metrics, reports, comparisons."""
