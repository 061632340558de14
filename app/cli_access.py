"""``kb collection`` and ``kb group``: collections, who may read them, and groups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from app.db import transaction
from app.errors import AppError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.runtime import Runtime

collection_cli = typer.Typer(
    help="Create collections and share private ones.", no_args_is_help=True
)
group_cli = typer.Typer(
    help="Groups of users that private collections are shared with.", no_args_is_help=True
)

User = Annotated[str, typer.Option("--user", help="a username")]
Group = Annotated[str, typer.Option("--group", help="a group name")]


@contextmanager
def _writing() -> Iterator[tuple[Runtime, Session]]:
    """One command's transaction; an error a person can act on (no such user, a name
    taken, an unknown embedder) is printed and ends the command with status 2."""
    from app.cli import open_runtime
    from app.embedding.registry import UnknownEmbedder

    with open_runtime() as rt:
        try:
            with transaction(rt.sessions) as s:
                yield rt, s
        except (AppError, UnknownEmbedder) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None


@collection_cli.command("create")
def collection_create(
    name: str,
    private: Annotated[bool, typer.Option(help="only admins and those granted see it")] = False,
    description: Annotated[str, typer.Option(help="what it holds")] = "",
    embedder: Annotated[str | None, typer.Option(help="default: KB_EMBEDDER")] = None,
) -> None:
    """Create a collection (``--private``: visible to admins and grantees only)."""
    from app.collections import access, service

    with _writing() as (rt, s):
        spec = rt.embedders.spec(embedder or rt.settings.embedder)
        col = service.create(s, name=name, description=description, spec=spec)
        access.set_private(s, col, private)
    typer.echo(f"created {name}" + (" (private)" if private else ""))


@collection_cli.command("list")
def collection_list() -> None:
    """Collections, whether private, and their grants."""
    from app.cli import open_runtime
    from app.collections import access, service

    with open_runtime() as rt, rt.sessions() as s:
        for col in service.list_all(s):
            shared = ", ".join(f"{g.kind} {g.grantee} ({g.access})" for g in access.grants(s, col))
            state = "private" if col.private else "everyone"
            typer.echo(f"{col.name:24s} {state:8s} {shared}".rstrip())


@collection_cli.command("private")
def collection_private(
    name: str, off: Annotated[bool, typer.Option("--off", help="visible to everyone again")] = False
) -> None:
    """Make an existing collection private (or, with --off, visible to everyone)."""
    from app.collections import access, service

    with _writing() as (_rt, s):
        access.set_private(s, service.get_by_name(s, name), not off)
    typer.echo(f"{name}: {'everyone' if off else 'private'}")


@collection_cli.command("grant")
def collection_grant(
    name: str,
    user: User = "",
    group: Group = "",
    access_level: Annotated[str, typer.Option("--access", help="read or write")] = "read",
) -> None:
    """Let a user or a group read (or also change) a private collection."""
    from app.collections import access, service

    with _writing() as (_rt, s):
        col = service.get_by_name(s, name)
        access.grant_by_names(s, col, level=access_level, user=user, group=group)
    typer.echo(f"{name}: {user or group} may {access_level}")


@collection_cli.command("revoke")
def collection_revoke(name: str, user: User = "", group: Group = "") -> None:
    """Take a user's or a group's access to a private collection away."""
    from app.collections import access, service

    with _writing() as (_rt, s):
        had = access.revoke_by_names(s, service.get_by_name(s, name), user=user, group=group)
    who = user or group
    typer.echo(f"{name}: {who} revoked" if had else f"{name}: {who} had no grant")


@group_cli.command("create")
def group_create(name: str) -> None:
    from app.collections import access

    with _writing() as (_rt, s):
        access.create_group(s, name)
    typer.echo(f"created group {name}")


@group_cli.command("add")
def group_add(name: str, username: str) -> None:
    """Add a user to a group."""
    from app.collections import access

    with _writing() as (_rt, s):
        access.add_member(s, access.group_by_name(s, name), access.user_by_name(s, username))
    typer.echo(f"{username} is in {name}")


@group_cli.command("remove")
def group_remove(name: str, username: str) -> None:
    """Take a user out of a group."""
    from app.collections import access

    with _writing() as (_rt, s):
        access.remove_member(s, access.group_by_name(s, name), access.user_by_name(s, username))
    typer.echo(f"{username} left {name}")


@group_cli.command("list")
def group_list() -> None:
    """Groups and their members."""
    from app.cli import open_runtime
    from app.collections import access

    with open_runtime() as rt, rt.sessions() as s:
        for g in access.groups(s):
            typer.echo(
                f"{g.name:24s} {', '.join(u.username for u in access.members(s, g))}".rstrip()
            )
