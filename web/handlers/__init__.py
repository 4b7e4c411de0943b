"""Tornado request handlers: the JSON API (`api_*`) and the pages (`pages_*`)."""
