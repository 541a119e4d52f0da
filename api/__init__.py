"""The HTTP API: uploads, status, queue figures and the web page."""
