# The full-stack image: web (gunicorn), worker and beat all run from it (docker-compose.yml).
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TRUSTDESK_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY trustdesk ./trustdesk
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 trustdesk \
    && mkdir -p /data && chown trustdesk /data
USER trustdesk
EXPOSE 8000
CMD ["gunicorn", "trustdesk.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
