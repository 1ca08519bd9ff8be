"""Placeholder: filled in by the service fixture work."""
