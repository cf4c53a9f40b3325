"""Liveness: prove that a KYC selfie video shows a live person who follows a server-chosen challenge and matches
the ID photo, and that it is not a replay, a photo or a real-time face swap."""
