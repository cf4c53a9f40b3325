"""Labels: visible AI labels, GB 45438 `AIGC` metadata, signed C2PA manifests and the invisible watermark."""
