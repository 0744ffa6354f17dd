"""The public REST API: HTTP and HTTPS listeners in front of the one request handler."""
