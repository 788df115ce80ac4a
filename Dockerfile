# ketamine-cds: CDS Hooks service image (non-root).
#   docker build -t ketamine-cds .
#   docker run -p 8080:8080 -e KETAMINE_CDS_ALLOWED_FHIR_SERVERS=https://ehr.example/fhir ketamine-cds
# Development mode (no JWT) is refused inside the container because it binds 0.0.0.0.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY hooks ./hooks
COPY fhir_mappers ./fhir_mappers
COPY ehr ./ehr
COPY examples ./examples
RUN pip install .

FROM base AS runtime
RUN useradd --create-home --uid 10001 cds
USER cds
EXPOSE 8080
ENV KETAMINE_CDS_BIND_HOST=0.0.0.0
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
CMD ["ketamine-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
