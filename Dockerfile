# One linewatch image for the simulator, edge and dashboard services of docker-compose.yml
# (each runs a different `linewatch` subcommand). Build: docker compose build
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The packages first, the plant configs last: editing a config does not reinstall.
COPY pyproject.toml README.md ./
COPY linewatch ./linewatch
COPY collectors ./collectors
COPY edge ./edge
COPY dashboard ./dashboard
COPY simulator ./simulator
RUN pip install .

COPY config ./config

# Not root; /app/data holds the edge's spool (a volume in docker-compose.yml).
RUN useradd --create-home --uid 10001 linewatch \
    && mkdir -p /app/data \
    && chown linewatch:linewatch /app/data
USER linewatch

ENTRYPOINT ["linewatch"]
CMD ["--help"]
