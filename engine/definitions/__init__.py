"""Workflow definitions: load (YAML with marks), check, compile, draw."""
