"""Thin routes: parse the request, call a domain service, shape the response."""
