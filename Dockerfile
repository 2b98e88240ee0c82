# QuickResponse production image: multi-stage, slim, non-root; migrations then start.
# Build: docker build -t quickresponse .   Run: see docker-compose.yml.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, so that code changes don't reinstall them.
COPY pyproject.toml README.md ./
COPY quickresponse/__init__.py quickresponse/__init__.py
RUN pip install --upgrade pip && pip install .  && pip uninstall -y quickresponse
COPY bot.py ./
COPY quickresponse ./quickresponse
COPY migrations ./migrations
COPY knowledge_base ./knowledge_base
COPY docker ./docker
RUN pip install --no-deps -e . && python -m compileall -q quickresponse

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    QR_DATABASE_URL=sqlite+aiosqlite:////data/quickresponse.db \
    QR_METRICS_PORT=8081 \
    QR_WEBHOOK_LISTEN=0.0.0.0 \
    QR_WEBHOOK_PORT=8080 \
    XDG_CACHE_HOME=/data/.cache
# A font that draws Chinese, so /stats charts are labelled in Chinese (without one they fall back
# to English labels).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home /app quickresponse \
    && mkdir /data && chown quickresponse /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
WORKDIR /app
USER quickresponse
VOLUME ["/data"]
EXPOSE 8080 8081
# /healthz answers on the webhook port in webhook mode and on QR_METRICS_PORT in polling mode.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os,sys,urllib.request as u; p=os.environ.get('QR_HEALTH_PORT') or os.environ['QR_METRICS_PORT']; sys.exit(0 if u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["/app/docker/start.sh"]
