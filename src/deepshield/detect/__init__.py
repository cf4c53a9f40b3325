"""detect domain."""
