"""Consent for a likeness: a digital human is made only from the person who agreed (issue 29)."""
