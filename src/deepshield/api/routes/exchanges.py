"""HMA's curator configuration (`/c/signal_type*`, `/c/content_type`) and signal exchanges (`/c/exchanges*`,
`/c/exchange/<name>*`), behind the curate scope. Thin: `deepshield.matching.exchanges` holds the exchanges,
`deepshield.matching.hma` the answers' shapes; HMA's `{"message"}` errors come from `api.errors` by path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from starlette.convertors import Convertor, register_url_convertor

from deepshield.api.deps import SessionDep, SettingsDep
from deepshield.api.routes.matching import CuratePrincipal
from deepshield.matching import exchanges, fetcher, hma
from deepshield.matching.hma import BadRequest
from deepshield.matching.storage import as_store

router = APIRouter(tags=["matching"])


class _SignalTypeName(Convertor[str]):
    """A signal type's name in `/c/signal_type/<name>`, never `index`: that path is its own GET-only resource,
    so a PUT there is a 405 that advertises GET (not a PUT of a signal type called "index")."""

    regex = "(?!index$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("signal_type_name", _SignalTypeName())


# ---------------------------------------------------------------------------------------------- /c configuration


@router.get("/c/signal_type")
def signal_types(session: SessionDep, _p: CuratePrincipal) -> list[dict[str, Any]]:
    """[{name, enabled_ratio}]: every signal type, by our names and HMA's (`video_md5`)."""
    return hma.signal_types_answer(session)


@router.put("/c/signal_type/{signal_type_name:signal_type_name}")
def signal_type_update(
    session: SessionDep, _p: CuratePrincipal, signal_type_name: str, body: Annotated[Any, Body()]
) -> dict[str, Any]:
    """{"enabled_ratio": 0..1} -> {name, enabled_ratio}: the share of lookups the type takes part in (0: off).
    HMA's code answers 204 (so its body is dropped); 200 with the body, as its OpenAPI document declares."""
    answer = hma.set_signal_type(session, signal_type_name, body)
    session.commit()
    return answer


@router.get("/c/signal_type/index")
def signal_type_index(
    session: SessionDep, settings: SettingsDep, _p: CuratePrincipal, signal_type: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    """Per signal type: {db_size, index_size, index_out_of_date, newest_db_item, index_built_to}."""
    return hma.signal_type_index_answer(session, settings, signal_type)


@router.get("/c/content_type")
def content_types(_p: CuratePrincipal) -> list[dict[str, Any]]:
    return hma.content_types_answer()


# ---------------------------------------------------------------------------------------------- /c exchanges


@router.get("/c/exchanges/apis")
def exchange_apis(_p: CuratePrincipal) -> list[str]:
    return exchanges.exchange_types()


@router.get("/c/exchanges/api/{api_name}")
def exchange_api(session: SessionDep, _p: CuratePrincipal, api_name: str) -> dict[str, bool]:
    """Whether the exchange type takes credentials, and whether they are set (ThreatExchange: its token)."""
    return exchanges.api_auth_json(session, api_name)


@router.get("/c/exchanges/api/{api_name}/schema")
def exchange_api_schema(_p: CuratePrincipal, api_name: str) -> dict[str, Any]:
    """{config_schema: {fields}, credentials_schema}: what an exchange of this type takes, for a form."""
    return exchanges.api_schema(api_name)


@router.post("/c/exchanges/api/{api_name}")
def exchange_api_credentials(
    session: SessionDep, settings: SettingsDep, _p: CuratePrincipal, api_name: str, body: Annotated[Any, Body()]
) -> dict[str, bool]:
    """{"credential_json": {"api_token": ...}} sets the type's credentials (stored sealed, never shown), `{}`
    forgets them."""
    answer = exchanges.set_credentials(session, api_name, body, home=settings.home)
    session.commit()
    return answer


@router.get("/c/exchanges")
def exchange_list(session: SessionDep, _p: CuratePrincipal) -> list[str]:
    return [x.name for x in as_store(session).exchanges()]


@router.post("/c/exchanges", status_code=201)
def exchange_create(
    session: SessionDep, settings: SettingsDep, _p: CuratePrincipal, body: Annotated[Any, Body()]
) -> dict[str, str]:
    """{"bank", "api", "api_json"}: an exchange named after its bank (created when missing); a `local_file`
    exchange's `filename` names a file in `$DEEPSHIELD_HOME/exchange-files` (400 for any other)."""
    if not isinstance(body, dict):
        raise BadRequest("this endpoint expects a json object payload")
    for field in ("bank", "api"):
        if not isinstance(body.get(field), str):
            raise BadRequest(f"{field} is required")
    exchanges.create_exchange(session, body["bank"], body["api"], body.get("api_json", {}), home=settings.home)
    session.commit()
    return {"message": "Created successfully"}


@router.get("/c/exchange/{exchange_name}")
def exchange_show(session: SessionDep, _p: CuratePrincipal, exchange_name: str) -> dict[str, Any]:
    return exchanges.config_json(exchanges.get_exchange(session, exchange_name))


@router.put("/c/exchange/{exchange_name}")
def exchange_update(
    session: SessionDep, _p: CuratePrincipal, exchange_name: str, body: Annotated[Any, Body()]
) -> dict[str, Any]:
    """{"enabled"?}: turn an exchange's fetching on or off."""
    x = exchanges.set_enabled(session, exchange_name, body)
    session.commit()
    return exchanges.config_json(x)


@router.delete("/c/exchange/{exchange_name}")
def exchange_delete(session: SessionDep, _p: CuratePrincipal, exchange_name: str) -> dict[str, str]:
    """Forget an exchange (its bank stays); as HMA, 200 when there was none."""
    as_store(session).delete_exchange(exchange_name)
    session.commit()
    return {"message": "Exchange deleted"}


@router.get("/c/exchange/{exchange_name}/status")
def exchange_status(session: SessionDep, _p: CuratePrincipal, exchange_name: str) -> dict[str, Any]:
    """When the last fetch ran, whether it worked, how many signals it banked, its error; a fetch running now."""
    return fetcher.status(exchanges.get_exchange(session, exchange_name))


@router.post("/c/exchange/{exchange_name}/fetch")
def exchange_fetch(
    session: SessionDep, settings: SettingsDep, _p: CuratePrincipal, exchange_name: str
) -> dict[str, Any]:
    """Fetch now (our extension: the service also fetches on a timer) -> the fetch status; a failed fetch banks
    nothing; 409 while a fetch of the exchange is running."""
    return exchanges.status_json(fetcher.fetch_and_record(session, exchange_name, settings))
