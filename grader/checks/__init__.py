"""Helpers for check authors: numeric comparison, gradient checks, maths, text rubrics."""
