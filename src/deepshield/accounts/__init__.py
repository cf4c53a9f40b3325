"""Accounts: API keys with scopes and web users with session login."""
