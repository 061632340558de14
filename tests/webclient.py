"""Helpers for page tests: log in through the real form, read CSRF tokens from the DOM."""

from __future__ import annotations

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.auth import service as auth
from app.auth.models import Role
from app.db import transaction
from app.runtime import Runtime

PASSWORD = "correct-horse-1"


def make_user(rt: Runtime, username: str, role: Role, password: str = PASSWORD) -> None:
    with transaction(rt.sessions) as s:
        auth.create_user(s, username=username, password=password, role=role)


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    r = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def dom(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def csrf(client: TestClient, path: str = "/") -> str:
    field = dom(client.get(path).text).find("input", attrs={"name": "csrf_token"})
    assert field is not None, f"no CSRF field on {path}"
    return str(field["value"])


def post_upload(c: TestClient, *files: tuple[str, bytes], collection: str = "default") -> list:
    """Upload through the /upload form (HTTP, logged-in client); its result list items."""
    r = c.post(
        "/upload",
        data={"csrf_token": csrf(c, "/upload"), "collection": collection},
        files=[("files", f) for f in files],
    )
    assert r.status_code == 200, r.text
    return dom(r.text).select(".upload-results li")
