"""A second detector for reenactment, lip-sync and talking heads: temporal coherence of consecutive face crops,
trained on real video only (see docs/detect.md, "Temporal detector")."""
