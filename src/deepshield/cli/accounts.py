"""`deepshield apikey ...` and `deepshield user ...`."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from deepshield.accounts.service import SCOPES, create_api_key, create_user, list_api_keys, revoke_api_key, set_password
from deepshield.store.db import session_scope, upgrade_schema

apikey_app = typer.Typer(help="API keys with scopes (printed once, stored only as a hash).", no_args_is_help=True)
user_app = typer.Typer(help="Web console users.", no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(
    scope: Annotated[list[str], typer.Option("--scope", help=f"repeatable: {', '.join(SCOPES)}")],
    name: Annotated[str, typer.Option(help="a label for the key")] = "key",
) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    upgrade_schema()
    scopes = [s.strip() for item in scope for s in item.split(",") if s.strip()]
    with session_scope() as s:
        key, rec = create_api_key(s, scopes, name)
        typer.echo(key)
        typer.echo(f"id {rec.id}, scopes {rec.scopes} (store this key now: it is not shown again)", err=True)


@apikey_app.command("list")
def apikey_list() -> None:
    upgrade_schema()
    with session_scope() as s:
        for k in list_api_keys(s):
            state = "revoked" if k.revoked_at else "active"
            typer.echo(f"{k.id}\t{k.prefix}…\t{k.name}\t{k.scopes}\t{state}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: int) -> None:
    upgrade_schema()
    with session_scope() as s:
        if not revoke_api_key(s, key_id):
            typer.echo(f"error: no active key with id {key_id}", err=True)
            raise typer.Exit(2)
    typer.echo(f"revoked key {key_id}")


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin or reviewer")] = "reviewer",
    password: Annotated[str | None, typer.Option(help="omit to be asked")] = None,
) -> None:
    upgrade_schema()
    pw = password or getpass.getpass("password: ")
    with session_scope() as s:
        create_user(s, username, pw, role)
    typer.echo(f"created {role} {username}")


@user_app.command("passwd")
def user_passwd(username: str, password: Annotated[str | None, typer.Option()] = None) -> None:
    upgrade_schema()
    pw = password or getpass.getpass("new password: ")
    with session_scope() as s:
        set_password(s, username, pw)
    typer.echo(f"password changed for {username}")


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(user_app, name="user")
