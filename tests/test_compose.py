"""docker-compose.yml is checked against the app: the services exist, the app's settings
resolve from its environment, and vLLM gets the flags the embedding client relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
ENV = {"KB_SECRET_KEY": "s" * 40}


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} forms."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] != "":
            return env[name]
        if op == ":-":
            return arg or ""
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", sub, value)


def _resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, env) for v in node]
    return _interpolate(node, env) if isinstance(node, str) else node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _resolve(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), ENV)  # type: ignore[no-any-return]


def test_services_present(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"vllm", "postgres", "web", "worker"} <= set(services)
    assert services["web"]["build"] == services["worker"]["build"] == "."  # one image
    assert services["worker"]["command"] == ["kb", "worker"]
    assert "--no-worker" in services["web"]["command"]  # workers run apart from the web


def test_vllm_serves_qwen3_embedding_with_the_flags_the_client_needs(
    compose: dict[str, Any],
) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    args = vllm["command"]
    assert args[0] == "Qwen/Qwen3-Embedding-4B"
    assert args[args.index("--runner") + 1] == "pooling"
    assert json.loads(args[args.index("--hf-overrides") + 1]) == {"is_matryoshka": True}
    gpu = vllm["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert any(v.endswith(":/root/.cache/huggingface") for v in vllm["volumes"])
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert (
        args[args.index("--api-key") + 1]
        == compose["services"]["web"]["environment"]["KB_EMBEDDING_API_KEY"]
    )


@pytest.mark.parametrize("service", ["web", "worker"])
def test_app_settings_resolve_from_the_compose_environment(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose["services"][service]["environment"]
    for key in [k for k in __import__("os").environ if k.startswith("KB_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    vllm_args = compose["services"]["vllm"]["command"]
    assert settings.embedder == "openai"
    assert settings.embedding_url == "http://vllm:8000/v1"
    assert settings.embedding_model == vllm_args[0]
    assert settings.embedding_dimensions is not None and 32 <= settings.embedding_dimensions <= 2560
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://kb:")
    assert settings.secret_key is not None
    depends = compose["services"][service]["depends_on"]
    assert depends["postgres"]["condition"] == depends["vllm"]["condition"] == "service_healthy"


def test_a_missing_secret_key_is_refused() -> None:
    with pytest.raises(KeyError, match="KB_SECRET_KEY"):
        _resolve(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), {})
