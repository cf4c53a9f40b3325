"""Signal exchanges (HMA's `/c/exchanges`, python-threatexchange's SignalExchangeAPI): a bank filled from
outside, fetched on request or on the service's timer (`fetcher`, the one path both take).

Exchange types, by python-threatexchange's names so HMA clients configure them unchanged (and `sample`,
which fetches nothing: HMA's stand-in for trying the configuration):

* `local_file`: a file in python-threatexchange's format (`LocalFileSignalExchangeAPI`, and what
  `deepshield bank export --format threatexchange` writes): one signal a line, `<signal type> <signal>`, or
  the bare signal when `api_json.signal_type` names the type. Every fetch reads the whole file and banks the
  signals the bank does not hold yet. `api_json.filename` names a file in `$DEEPSHIELD_HOME/exchange-files`:
  a curator's HTTP request must not make the server read any file (a path escaping the folder is refused).
* `fb_threatexchange`: Meta's ThreatExchange Graph API, read as python-threatexchange's client reads it
  (`GET <graph_api_url>/<privacy_group>/threat_updates/` with `paging.next` cursors); `api_json` holds
  `privacy_group`, optionally `graph_api_url` (another server speaking the same API) and `api_token`;
  without one, the token set through HMA's `POST /c/exchanges/api/fb_threatexchange`, else
  DEEPSHIELD_THREATEXCHANGE_TOKEN. Tokens are stored sealed (`exchange_secrets`) and never shown. An update
  with `should_delete` removes what it added; the next fetch starts from the newest `last_updated` seen.

Each banked item records where it came from as HMA's `collab` metadata ({exchange: [key]}), which is how a
later fetch knows what it already holds. A failed fetch keeps its error for `/c/exchange/<name>/status`
instead of raising, as HMA's fetcher does.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonObject, JsonValue
from deepshield.matching import banks as bank_svc
from deepshield.matching.exchange_secrets import THREATEXCHANGE_API, ExchangeSecrets
from deepshield.matching.hma import hma_signal_name
from deepshield.matching.signals import get_signal
from deepshield.matching.signals.registry import SIGNAL_TYPES
from deepshield.matching.storage import ExchangeRecord, MatchStore, StoreLike, as_store
from deepshield.matching.types import BANK_NAME_RE, EntryMeta

LOCAL_FILE = "local_file"
THREATEXCHANGE = THREATEXCHANGE_API
SAMPLE = "sample"
#: The Graph API python-threatexchange's client calls by default.
GRAPH_API_URL = "https://graph.facebook.com/v26.0"
#: ThreatExchange indicator type (and tag) -> our signal type, and the content type it implies.
TX_TYPES: dict[str, tuple[str, str | None]] = {
    "HASH_PDQ": ("pdq", "photo"),
    "HASH_VIDEO_MD5": ("video_md5", "video"),
    "HASH_MD5": ("video_md5", "video"),  # python-threatexchange takes HASH_MD5 only with tag media_type_video
}
#: The signal type names of HMA and python-threatexchange that are ours under another name.
TX_NAMES = ("video_md5", "photo_md5")
#: Fields python-threatexchange asks threat_updates for.
TX_FIELDS = "id,indicator,type,creation_time,last_updated,should_delete,tags,status,applications_with_opinions"
#: The folder under $DEEPSHIELD_HOME that `local_file` exchanges read from.
EXCHANGE_FILES = "exchange-files"
_PAGE_SIZE = 1000
_MAX_PAGES = 10_000


class ExchangeNotFound(DeepshieldError):
    code = "exchange_not_found"
    http_status = 404


class ExchangeApiNotFound(DeepshieldError):
    code = "exchange_api_not_found"
    http_status = 404


class InvalidExchange(DeepshieldError):
    code = "invalid_exchange"
    http_status = 400


@dataclass(frozen=True)
class Fetched:
    """One signal from an exchange: its key there, type and value (`delete`: the exchange withdrew it; `skip`:
    an indicator we do not bank, which still moves the checkpoint)."""

    key: str
    signal_type: str
    value: str
    content_type: str | None = None
    delete: bool = False
    updated: int = 0
    skip: bool = False


def exchange_types() -> list[str]:
    return [LOCAL_FILE, THREATEXCHANGE, SAMPLE]


def _require_str(api_json: dict[str, JsonValue], key: str) -> str:
    v = api_json.get(key)
    if not isinstance(v, str) or not v:
        raise InvalidExchange(f"Failed to parse `api_json` - {key} is required (a string)")
    return v


def local_file_path(home: Path, filename: str) -> Path:
    """A `local_file` exchange's file: a name (or absolute path) inside the exchange files folder, resolved
    with its links; anything escaping the folder is refused like a malformed configuration."""
    root = (home / EXCHANGE_FILES).resolve()
    path = (root / filename).resolve()
    if path == root or not path.is_relative_to(root):
        raise InvalidExchange(
            f"filename {filename[:200]!r} is outside the exchange files folder: put the file in "
            f"$DEEPSHIELD_HOME/{EXCHANGE_FILES} and give its name"
        )
    return path


def _check_api_json(api: str, api_json: dict[str, JsonValue], home: Path) -> None:
    if api == LOCAL_FILE:
        local_file_path(home, _require_str(api_json, "filename"))
        st = api_json.get("signal_type")
        if st is not None:
            get_signal(_require_str(api_json, "signal_type"))
    elif api == THREATEXCHANGE:
        pg = api_json.get("privacy_group")
        if isinstance(pg, bool) or not isinstance(pg, int) or pg <= 0:
            raise InvalidExchange("Failed to parse `api_json` - privacy_group is required (a positive integer)")
        url = api_json.get("graph_api_url")
        ok = isinstance(url, str) and url.startswith(("http://", "https://")) and url.isprintable() and " " not in url
        if url is not None and not ok:
            raise InvalidExchange("Failed to parse `api_json` - graph_api_url must be an http(s) URL")
        if "api_token" in api_json:
            _require_str(api_json, "api_token")
    elif api != SAMPLE:
        raise InvalidExchange(f"No such exchange type '{api}'")


def create_exchange(
    session: StoreLike, name: str, api: str, api_json: JsonValue, enabled: bool = True, *, home: Path
) -> None:
    """HMA's `POST /c/exchanges`: the exchange is named after its bank, which is created when missing; `home`
    (the data directory) holds the exchange files folder and the key its token is sealed with."""
    store = as_store(session)
    if not BANK_NAME_RE.match(name):
        raise InvalidExchange("Field `bank` must match /^[A-Z_][A-Z0-9_]*$/")
    if not isinstance(api_json, dict):
        raise InvalidExchange("Field `api_json` must be object")
    _check_api_json(api, api_json, home)
    if store.exchange(name) is not None:
        raise InvalidExchange(f"exchange {name!r} already exists")
    if store.bank(name) is None:
        bank_svc.create_bank(store, name, description=f"filled by the {api} exchange {name}")
    kept = dict(api_json)
    if isinstance(kept.get("api_token"), str):
        kept["api_token"] = ExchangeSecrets(home).seal(str(kept["api_token"]))
    store.save_exchange(ExchangeRecord(name=name, api=api, bank=name, api_json=kept, enabled=enabled))


def get_exchange(session: StoreLike, name: str) -> ExchangeRecord:
    x = as_store(session).exchange(name)
    if x is None:
        raise ExchangeNotFound(f"Exchange '{name}' not found")
    return x


def set_enabled(session: StoreLike, name: str, body: JsonValue) -> ExchangeRecord:
    """HMA's `PUT /c/exchange/<name>` {"enabled"?}."""
    if not isinstance(body, dict):
        raise InvalidExchange("this endpoint expects a json object payload")
    x = get_exchange(session, name)
    enabled = body.get("enabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise InvalidExchange("enabled must be true or false")
        x.enabled = enabled
        as_store(session).save_exchange(x)
    return x


def _field(name: str, kind: str, help_text: str, required: bool = False, default: JsonValue = None) -> JsonObject:
    """One field as HMA's `exchange_api_schema` describes it (for a form that configures an exchange)."""
    choices: JsonValue = sorted(SIGNAL_TYPES.names()) if name == "signal_type" else None
    return {"name": name, "type": kind, "required": required, "default": default, "help": help_text, "choices": choices}


def api_schema(api: str) -> JsonObject:
    """HMA's `/c/exchanges/api/<api>/schema`: the fields an exchange's `api_json` takes (`config_schema`) and,
    for a type with credentials, those of `credential_json` (`credentials_schema`, else null)."""
    fields: list[JsonValue] = []
    if api == LOCAL_FILE:
        fields = [
            _field("filename", "string", f"a signal file in $DEEPSHIELD_HOME/{EXCHANGE_FILES}", required=True),
            _field("signal_type", "enum", "the type of every line, when the lines are bare signals"),
        ]
    elif api == THREATEXCHANGE:
        fields = [
            _field("privacy_group", "number", "the ThreatExchange privacy group to fetch", required=True),
            _field("graph_api_url", "string", "another server speaking the Graph API", default=GRAPH_API_URL),
            _field("api_token", "string", "this exchange's token (else the type's credentials)"),
        ]
    elif api != SAMPLE:
        raise ExchangeApiNotFound(f"Exchange API '{api}' not found")
    creds: JsonValue = None
    if api == THREATEXCHANGE:
        creds = {"fields": [_field("api_token", "string", "<app id>|<app secret>", required=True)]}
    return {"config_schema": {"fields": fields}, "credentials_schema": creds}


def _token(store: MatchStore, x: ExchangeRecord, secrets: ExchangeSecrets) -> str:
    """The exchange's own ThreatExchange token, else the one set through the API, else the environment's."""
    for stored in (x.api_json.get("api_token"), (store.exchange_credentials(THREATEXCHANGE) or {}).get("api_token")):
        if isinstance(stored, str) and stored:
            return secrets.open(stored)
    return os.environ.get("DEEPSHIELD_THREATEXCHANGE_TOKEN", "")


def api_auth_json(session: StoreLike, api: str) -> dict[str, bool]:
    """HMA's `/c/exchanges/api/<api>`: whether the type takes credentials and whether they are set."""
    if api not in exchange_types():
        raise InvalidExchange(f"no such Exchange API '{api}'")
    takes = api == THREATEXCHANGE
    stored = (as_store(session).exchange_credentials(THREATEXCHANGE) or {}).get("api_token") if takes else None
    has_set = bool(stored) or (takes and bool(os.environ.get("DEEPSHIELD_THREATEXCHANGE_TOKEN")))
    return {"supports_authentification": takes, "has_set_authentification": has_set}


def set_credentials(session: StoreLike, api: str, body: JsonValue, *, home: Path) -> dict[str, bool]:
    """HMA's `POST /c/exchanges/api/<api>` {"credential_json": {"api_token"}}; an empty object forgets them."""
    if api not in exchange_types():
        raise InvalidExchange(f"no such Exchange API '{api}'")
    if not isinstance(body, dict):
        raise InvalidExchange("this endpoint expects a json object payload")
    creds = body.get("credential_json")
    if creds is not None:
        if api != THREATEXCHANGE:
            raise InvalidExchange(f"the {api} exchange takes no credentials")
        if not creds:
            as_store(session).set_exchange_credentials(api, None)
        elif not isinstance(creds, dict) or not isinstance(creds.get("api_token"), str) or not creds["api_token"]:
            raise InvalidExchange('credential_json must be {"api_token": "<app id>|<secret>"}')
        else:
            sealed = ExchangeSecrets(home).seal(creds["api_token"])
            as_store(session).set_exchange_credentials(api, {"api_token": sealed})
    return api_auth_json(session, api)


def config_json(x: ExchangeRecord) -> JsonObject:
    """An exchange as HMA shows its collaboration config (a token is never shown)."""
    shown = {k: v for k, v in x.api_json.items() if k != "api_token"}
    return {**shown, "name": x.name, "api": x.api, "enabled": x.enabled, "bank": x.bank}


def status_json(x: ExchangeRecord) -> JsonObject:
    """HMA's fetch status (`FetchStatus`), plus the count and error of the last fetch."""
    return {
        "checkpoint_ts": x.checkpoint_ts or None,
        "running_fetch_start_ts": None,
        "last_fetch_complete_ts": x.last_fetch_complete_ts or None,
        "last_fetch_succeeded": x.last_fetch_succeeded,
        "up_to_date": bool(x.last_fetch_succeeded),
        "fetched_items": x.fetched_items,
        "last_fetch_start_ts": x.last_fetch_start_ts or None,
        "error": x.error,
    }


# ---------------------------------------------------------------------------------------------- sources


def read_signal_file(path: Path, signal_type: str | None = None, shown: str | None = None) -> Iterator[Fetched]:
    """python-threatexchange's signal file: `<type> <signal>` a line (or the bare signal when the exchange
    names the type); blank lines skipped, as `LocalFileSignalExchangeAPI.fetch_iter` does. `shown`: the name
    an error gives the file (an exchange's own, not the server's path)."""
    if not path.is_file():
        raise InvalidExchange(f"No such file {shown or path}")
    with path.open(encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            st = signal_type
            if st is None:
                st, _, text = text.partition(" ")
            if st and text:
                yield Fetched(key=f"{st} {text}", signal_type=st, value=text)


def _get_json(url: str, params: dict[str, str] | None) -> JsonObject:
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (http(s) checked at configuration)
        body = json.loads(resp.read().decode("utf-8"))
    if not isinstance(body, dict):
        raise InvalidExchange("the ThreatExchange API answered something other than a JSON object")
    return body


def read_threat_updates(
    api_json: dict[str, JsonValue],
    since: int,
    get_json: Callable[[str, dict[str, str] | None], JsonObject],
    token: str,
) -> Iterator[Fetched]:
    """ThreatExchange's threat_updates for a privacy group since a time, page by page (`paging.next`)."""
    base = str(api_json.get("graph_api_url") or GRAPH_API_URL).rstrip("/")
    if not token:
        raise InvalidExchange("no ThreatExchange token: set api_token or DEEPSHIELD_THREATEXCHANGE_TOKEN")
    params: dict[str, str] | None = {"access_token": token, "fields": TX_FIELDS, "limit": str(_PAGE_SIZE)}
    if since and params is not None:
        params["start_time"] = str(since)
    url: str | None = f"{base}/{api_json['privacy_group']}/threat_updates/"
    for _ in range(_MAX_PAGES):
        if url is None:
            return
        page = get_json(url, params)
        params = None  # the next url carries its own parameters, as python-threatexchange's cursor assumes
        data = page.get("data", [])
        for item in data if isinstance(data, list) else []:
            f = _threat_update(item)
            if f is not None:
                yield f
        paging = page.get("paging")
        nxt = paging.get("next") if isinstance(paging, dict) else None
        url = nxt if isinstance(nxt, str) and nxt else None


def _threat_update(item: JsonValue) -> Fetched | None:
    """One threat_updates record -> a signal (`skip` for an indicator type we do not bank), None if malformed."""
    if not isinstance(item, dict) or not isinstance(item.get("indicator"), str):
        return None
    updated = item.get("last_updated")
    when = int(updated) if isinstance(updated, int | str) and str(updated).isdigit() else 0
    mapped = TX_TYPES.get(str(item.get("type")))
    video_md5 = item.get("type") != "HASH_MD5" or "media_type_video" in _tags(item.get("tags"))
    if mapped is None or not video_md5:
        return Fetched(key=str(item.get("id")), signal_type="", value="", updated=when, skip=True)
    return Fetched(
        key=str(item.get("id")),
        signal_type=mapped[0],
        value=str(item["indicator"]),
        content_type=mapped[1],
        delete=bool(item.get("should_delete")) or "descriptors" not in item,
        updated=when,
    )


def _tags(tags: JsonValue) -> list[str]:
    if isinstance(tags, dict):
        tags = tags.get("data", [])
    if not isinstance(tags, list):
        return []
    return [str(t.get("text", "")) if isinstance(t, dict) else str(t) for t in tags]


# ---------------------------------------------------------------------------------------------- fetch


def _held(store: MatchStore, bank_id: int, exchange: str) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """What the bank already holds: {key from this exchange: entry id}, and every (signal type, value)."""
    by_key: dict[str, int] = {}
    pairs: set[tuple[str, str]] = set()
    after = 0
    while True:
        entries = store.entries(bank_id, after_id=after, limit=1000)
        if not entries:
            break
        sigs = store.entry_signals([e.id for e in entries])
        for e in entries:
            collab = (e.extra or {}).get("collab")
            keys = collab.get(exchange, []) if isinstance(collab, dict) else []
            for k in keys if isinstance(keys, list) else []:
                by_key[str(k)] = e.id
            pairs.update(sigs[e.id].items())
        after = entries[-1].id
    return by_key, pairs


def _bank_one(store: MatchStore, bank: str, f: Fetched, held: set[tuple[str, str]], exchange: str | None) -> bool:
    """Bank one fetched signal unless the bank holds it; `exchange` (HMA's collab provenance) or a file."""
    st = get_signal(f.signal_type)
    value = st.validate(f.value)
    if (st.name, value) in held:
        return False
    content_type = f.content_type or ("video" if f.signal_type == "video_md5" else None)
    meta = EntryMeta(
        source=f"exchange:{exchange}" if exchange else "signal file",
        added_by=f"exchange {exchange}" if exchange else None,
        content_type=content_type,
        extra={"collab": {exchange: [f.key]}} if exchange else None,
    )
    bank_svc.add_signals(store, bank, {st.name: value}, meta)
    held.add((st.name, value))
    return True


def _bank_all(store: MatchStore, bank: str, source: Iterator[Fetched], exchange: str | None) -> int:
    """Bank what a source gives (and drop what it withdraws); returns the signals added."""
    by_key, held = _held(store, bank_svc.bank_record(store, bank).id, exchange or "")
    added = 0
    for i, f in enumerate(source, 1):
        if f.skip:
            continue
        if f.delete:
            eid = by_key.pop(f.key, None)
            if eid is not None:
                bank_svc.remove_entry(store, eid)
            continue
        try:
            if f.key not in by_key and _bank_one(store, bank, f, held, exchange):
                added += 1
        except DeepshieldError:  # nothing of the line is echoed: a local file may be anything on the server
            known = f.signal_type in SIGNAL_TYPES.names() or f.signal_type in TX_NAMES
            what = f"{f.signal_type} signal" if known else "signal (unknown type)"
            raise InvalidExchange(f"signal {i}: not a valid {what}") from None
    return added


def import_signal_file(session: StoreLike, path: Path, bank: str, signal_type: str | None = None) -> int:
    """`deepshield bank import --format threatexchange`: a python-threatexchange signal file into a bank
    (created when missing); returns the signals added (those the bank holds already are skipped)."""
    store = as_store(session)
    if store.bank(bank) is None:
        bank_svc.create_bank(store, bank)
    return _bank_all(store, bank, read_signal_file(path, signal_type), None)


def fetch(
    session: StoreLike,
    name: str,
    get_json: Callable[[str, dict[str, str] | None], JsonObject] = _get_json,
    now: Callable[[], float] = time.time,
    *,
    home: Path,
) -> ExchangeRecord:
    """Fetch an exchange into its bank; returns its record with the outcome (a failure is recorded there,
    and nothing of that fetch is banked: the caller rolls back or commits the record). The recorded error
    never holds the token, whatever the failing library put in its message."""
    store = as_store(session)
    x = get_exchange(store, name)
    if not x.enabled:
        raise InvalidExchange(f'exchange {name!r} is disabled (PUT {{"enabled": true}} to fetch)')
    x.last_fetch_start_ts = int(now())
    token = ""
    try:
        newest = [x.checkpoint_ts]
        source: Iterator[Fetched] = iter(())
        if x.api == LOCAL_FILE:
            st = x.api_json.get("signal_type")
            path = local_file_path(home, str(x.api_json["filename"]))
            source = read_signal_file(path, str(st) if st else None, str(x.api_json["filename"]))
        elif x.api == THREATEXCHANGE:
            token = _token(store, x, ExchangeSecrets(home))
            updates = read_threat_updates(x.api_json, x.checkpoint_ts, get_json, token)
            source = _tracking(updates, newest)
        x.fetched_items = _bank_all(store, x.bank, source, x.name)
        x.error, x.last_fetch_succeeded = None, True
        x.checkpoint_ts = newest[0] if x.api == THREATEXCHANGE else int(now())
    except (DeepshieldError, OSError, ValueError, KeyError, http.client.HTTPException) as e:
        x.fetched_items, x.last_fetch_succeeded = 0, False  # the caller rolls the partial fetch back
        error = e.message if isinstance(e, DeepshieldError) else f"{type(e).__name__}: {e}"
        for shown in (token, urllib.parse.quote(token, safe=""), urllib.parse.quote_plus(token)) if token else ():
            error = error.replace(shown, "<token>")
        x.error = error
    x.last_fetch_complete_ts = int(now())
    return x


def _tracking(source: Iterator[Fetched], newest: list[int]) -> Iterator[Fetched]:
    """Pass the signals on, keeping the newest update time seen (the next fetch's checkpoint)."""
    for f in source:
        newest[0] = max(newest[0], f.updated)
        yield f


def record_fetch(session: StoreLike, x: ExchangeRecord) -> None:
    as_store(session).save_exchange(x)


# ---------------------------------------------------------------------------------------------- files


def signal_lines(session: StoreLike, bank: str) -> Iterator[str]:
    """A bank as python-threatexchange's signal file: `<type> <signal>` a line, by HMA's type names (the MD5
    of a video is `video_md5`), values exactly as stored, so they round-trip bit for bit."""
    store = as_store(session)
    b = bank_svc.bank_record(store, bank)
    after = 0
    while True:
        entries = store.entries(b.id, after_id=after, limit=1000)
        if not entries:
            return
        sigs = store.entry_signals([e.id for e in entries])
        for e in entries:
            for st, value in sigs[e.id].items():
                yield f"{hma_signal_name(st, e.content_type)} {value}"
        after = entries[-1].id
