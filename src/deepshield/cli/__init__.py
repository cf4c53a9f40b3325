"""Command line: `deepshield scan`, `serve`, `apikey`, `user`, and each domain's commands."""
