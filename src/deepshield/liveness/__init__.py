"""Liveness: server-chosen challenge scripts and the signals that verify a KYC selfie video."""
