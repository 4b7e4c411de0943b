"""Code shared by the services: configuration loading and template rendering."""
