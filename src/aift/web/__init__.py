"""Jinja2 templates and static assets of the web UI."""
