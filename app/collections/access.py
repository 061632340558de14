"""Who may read and change which collection: private collections, groups and grants.

``access_for(session, user)`` answers once per request with an :class:`Access`: the
collection ids the user may read and write (None: every collection, for admins, and for
everyone while no collection is private, so the common case adds no SQL condition).
Every route that reaches a collection's content goes through it, and one that may not
see a collection answers as if it did not exist (404), so nothing tells an outsider that
a private collection, document or passage is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from app.auth import service as users
from app.auth.models import Role, User
from app.collections.models import Access as Level
from app.collections.models import Collection, CollectionGrant, Group, GroupMember
from app.collections.service import CollectionError, CollectionNotFound, get_by_name
from app.errors import Forbidden, NotFound


class GroupNotFound(NotFound, LookupError):
    """No group of that name."""


class UserNotFound(NotFound, LookupError):
    """No user of that name."""


class NoWriteAccess(Forbidden, PermissionError):
    """The user may read the collection but not change it."""


@dataclass(frozen=True)
class Access:
    """The collections one user may read and write; None means every one."""

    readable: frozenset[int] | None
    writable: frozenset[int] | None

    def can_read(self, collection_id: int) -> bool:
        return self.readable is None or collection_id in self.readable

    def can_write(self, collection_id: int) -> bool:
        return self.writable is None or collection_id in self.writable

    def restrict(self, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` the user may read, in their order."""
        return [i for i in ids if self.can_read(i)]


EVERYTHING = Access(readable=None, writable=None)


# Built once: every request that reads a collection asks.
_PRIVATE = select(Collection.id, Collection.private)


def access_for(
    session: Session, user: User, *, collections: Sequence[Collection] | None = None
) -> Access:
    """What ``user`` may read and write (their role decides *whether* they may write at
    all; this decides *where*). ``collections``: every collection, when the caller read
    them in this request already (one statement fewer)."""
    editor = user.can(Role.EDITOR)
    if user.can(Role.ADMIN):
        return EVERYTHING
    if collections is not None:
        rows = [(c.id, c.private) for c in collections]
    else:
        rows = [(cid, is_private) for cid, is_private in session.execute(_PRIVATE).all()]
    private = {cid for cid, is_private in rows if is_private}
    if not private:
        return Access(readable=None, writable=None if editor else frozenset())
    public = {cid for cid, is_private in rows if not is_private}
    groups = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    grants = session.execute(
        select(CollectionGrant.collection_id, CollectionGrant.access).where(
            or_(CollectionGrant.user_id == user.id, CollectionGrant.group_id.in_(groups))
        )
    ).all()
    granted = {cid for cid, _ in grants}
    write_granted = {cid for cid, level in grants if level == Level.WRITE}
    return Access(
        readable=frozenset(public | granted),
        writable=frozenset(public | write_granted) if editor else frozenset(),
    )


def readable_collection(session: Session, access: Access, name: str) -> Collection:
    """The named collection if the user may read it; otherwise as if it did not exist."""
    col = get_by_name(session, name)
    if not access.can_read(col.id):
        raise CollectionNotFound("no collection named {name!r}", name=name)
    return col


def check_write(access: Access, collection: Collection) -> None:
    if not access.can_read(collection.id):
        raise CollectionNotFound("no collection named {name!r}", name=collection.name)
    if not access.can_write(collection.id):
        raise NoWriteAccess(
            "you may read the collection {name!r} but not change it; ask an administrator "
            "for write access",
            name=collection.name,
        )


def readable(session: Session, access: Access) -> list[Collection]:
    """The collections the user may read, by name."""
    query = select(Collection).order_by(Collection.name)
    if access.readable is not None:
        query = query.where(Collection.id.in_(sorted(access.readable)))
    return list(session.scalars(query))


# -- administration (admins only: the routes and the CLI check the role) -----------------


def user_by_name(session: Session, username: str) -> User:
    user = users.by_username(session, username)
    if user is None:
        raise UserNotFound("no user named {name!r}", name=username.strip())
    return user


def grant_by_names(
    session: Session, collection: Collection, *, level: str, user: str = "", group: str = ""
) -> CollectionGrant:
    """:func:`grant` with the grantee named (exactly one of ``user`` and ``group``)."""
    if level not in (Level.READ, Level.WRITE):
        raise CollectionError("access is read or write, not {level!r}", level=level)
    who, team = _grantee_by_names(session, user, group)
    return grant(session, collection, level=Level(level), user=who, group=team)


def revoke_by_names(
    session: Session, collection: Collection, *, user: str = "", group: str = ""
) -> bool:
    who, team = _grantee_by_names(session, user, group)
    return revoke(session, collection, user=who, group=team)


def _grantee_by_names(session: Session, user: str, group: str) -> tuple[User | None, Group | None]:
    if bool(user.strip()) == bool(group.strip()):
        raise CollectionError("name one user or one group")
    if user.strip():
        return user_by_name(session, user), None
    return None, group_by_name(session, group.strip())


def set_private(session: Session, collection: Collection, private: bool) -> None:
    collection.private = private
    session.flush()


def group_by_name(session: Session, name: str) -> Group:
    group = session.scalars(select(Group).where(Group.name == name)).first()
    if group is None:
        raise GroupNotFound("no group named {name!r}", name=name)
    return group


def create_group(session: Session, name: str) -> Group:
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise CollectionError("a group name needs 1 to 100 characters")
    if session.scalars(select(Group).where(Group.name == name)).first() is not None:
        raise CollectionError("the group {name!r} exists already", name=name)
    group = Group(name=name)
    session.add(group)
    session.flush()
    return group


def delete_group(session: Session, group: Group) -> None:
    session.delete(group)
    session.flush()


def add_member(session: Session, group: Group, user: User) -> None:
    if session.get(GroupMember, (group.id, user.id)) is None:
        session.add(GroupMember(group_id=group.id, user_id=user.id))
        session.flush()


def remove_member(session: Session, group: Group, user: User) -> None:
    session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.user_id == user.id)
    )
    session.flush()


def members(session: Session, group: Group) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(GroupMember, GroupMember.user_id == User.id)
            .where(GroupMember.group_id == group.id)
            .order_by(User.username)
        )
    )


def groups(session: Session) -> list[Group]:
    return list(session.scalars(select(Group).order_by(Group.name)))


def _grantee(user: User | None, group: Group | None) -> ColumnElement[bool]:
    if user is not None and group is None:
        return CollectionGrant.user_id == user.id
    if group is not None and user is None:
        return CollectionGrant.group_id == group.id
    raise CollectionError("name one user or one group")


def grant(
    session: Session,
    collection: Collection,
    *,
    level: Level,
    user: User | None = None,
    group: Group | None = None,
) -> CollectionGrant:
    """Give ``user`` or ``group`` (exactly one) ``level`` access; replaces an earlier grant."""
    found = session.scalars(
        select(CollectionGrant).where(
            CollectionGrant.collection_id == collection.id, _grantee(user, group)
        )
    ).first()
    if found is None:
        found = CollectionGrant(
            collection_id=collection.id,
            user_id=user.id if user is not None else None,
            group_id=group.id if group is not None else None,
        )
        session.add(found)
    found.access = Level(level).value
    session.flush()
    return found


def revoke(
    session: Session,
    collection: Collection,
    *,
    user: User | None = None,
    group: Group | None = None,
) -> bool:
    """Remove the grant of ``user`` or ``group``; True when there was one."""
    result = session.execute(
        delete(CollectionGrant).where(
            CollectionGrant.collection_id == collection.id, _grantee(user, group)
        )
    )
    session.flush()
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class GrantView:
    collection: str
    grantee: str
    kind: str  # "user" or "group"
    access: str


def grants(session: Session, collection: Collection) -> list[GrantView]:
    rows = session.execute(
        select(CollectionGrant, User.username, Group.name)
        .outerjoin(User, User.id == CollectionGrant.user_id)
        .outerjoin(Group, Group.id == CollectionGrant.group_id)
        .where(CollectionGrant.collection_id == collection.id)
    ).all()
    out = [
        GrantView(
            collection=collection.name,
            grantee=username or group_name or "",
            kind="user" if username else "group",
            access=g.access,
        )
        for g, username, group_name in rows
    ]
    return sorted(out, key=lambda v: (v.kind, v.grantee))
