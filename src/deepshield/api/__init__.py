"""HTTP service: FastAPI app factory, shared dependencies (auth, sessions), thin routes and web pages."""
