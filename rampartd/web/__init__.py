"""The HTTP layer: app factory, auth, error shape, URL table and handlers."""
