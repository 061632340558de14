# One image for the web server and the workers.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY ingest ./ingest
COPY migrations ./migrations
COPY web ./web
COPY scripts/fetch_assets.py ./scripts/fetch_assets.py
RUN pip install --no-cache-dir -e . && python scripts/fetch_assets.py
ENV KB_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
CMD ["kb", "serve", "--host", "0.0.0.0", "--port", "8000"]
