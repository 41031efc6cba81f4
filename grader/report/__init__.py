"""Renderers: terminal summary, HTML report, gradebook exports. They take data, not objects."""
