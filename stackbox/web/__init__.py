"""HTTP: the ASGI app, routing by service prefix, token checks, error mapping."""
