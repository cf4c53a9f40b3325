"""Exchange tokens sealed for the database: a ThreatExchange token (`<app id>|<app secret>`) opens a partner's
privacy group, so a copy of the database (a backup, a PostgreSQL host shared with other services) must not
hand it out. Tokens are stored encrypted (Fernet: AES-128-CBC with an HMAC-SHA256 tag) under a key that lives
only in `$DEEPSHIELD_HOME/keys/exchange-secrets.key` (0600, created on first use); whoever holds the database
without the data directory reads nothing. Tokens stored before sealing existed are read as they are, and
`seal_stored_tokens` (run at every service start) seals them in place."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from deepshield.errors import NotConfigured
from deepshield.matching.storage import StoreLike, as_store

KEY_FILE = "exchange-secrets.key"
#: A stored value that starts with this is sealed; anything else is a plain token from before.
SEALED = "sealed:v1:"
#: The exchange type whose credentials are a token (`exchanges.THREATEXCHANGE`, which imports this module).
THREATEXCHANGE_API = "fb_threatexchange"


class SecretUnreadable(NotConfigured):
    code = "exchange_secret_unreadable"


def key_path(home: Path) -> Path:
    return home / "keys" / KEY_FILE


def _load_key(home: Path) -> bytes:
    """The key, created once 0600 (atomically: the first of several processes wins, the others read its key)."""
    path = key_path(home)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_bytes().strip()


class ExchangeSecrets:
    """Seals and opens the tokens of one data directory's exchanges."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            try:
                self._fernet = Fernet(_load_key(self.home))
            except ValueError:
                raise SecretUnreadable(f"{key_path(self.home)} is not an exchange secrets key") from None
        return self._fernet

    def seal(self, token: str) -> str:
        return token if is_sealed(token) else SEALED + self._cipher().encrypt(token.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            return self._cipher().decrypt(stored[len(SEALED) :].encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                f"a stored exchange token cannot be opened with {key_path(self.home)} (was the key replaced?): "
                "set the token again"
            ) from None


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


def seal_stored_tokens(session: StoreLike, home: Path) -> int:
    """Seal every token still stored in plain text (an exchange's `api_token`, the ThreatExchange credentials),
    as the service starts; returns how many it sealed. A token already sealed is left as it is."""
    store, box = as_store(session), ExchangeSecrets(home)
    sealed = 0
    for x in store.exchanges():
        token = x.api_json.get("api_token")
        if isinstance(token, str) and token and not is_sealed(token):
            x.api_json["api_token"] = box.seal(token)
            store.save_exchange(x)
            sealed += 1
    creds = store.exchange_credentials(THREATEXCHANGE_API)
    token = (creds or {}).get("api_token")
    if creds is not None and isinstance(token, str) and token and not is_sealed(token):
        store.set_exchange_credentials(THREATEXCHANGE_API, {**creds, "api_token": box.seal(token)})
        sealed += 1
    return sealed
