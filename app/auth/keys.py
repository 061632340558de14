"""The key that signs session cookies."""

from __future__ import annotations

import os
import secrets

from app.filemodes import private_dir
from app.settings import Settings


def secret_key(settings: Settings) -> str:
    """``KB_SECRET_KEY``, or a key generated once and kept (mode 600) in the data folder,
    so sessions survive restarts without anyone having to configure a secret."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    private_dir(settings.data_dir)
    path = settings.data_dir / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
