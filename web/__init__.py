"""The user-facing service: pages and JSON API over contacts, segments, templates and campaigns."""
