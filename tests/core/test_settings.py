import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from trustdesk.env import env_bool, env_list, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


def test_sqlite_url_relative_and_absolute(tmp_path):
    rel = parse_database_url("sqlite:///db.sqlite3", base_dir=tmp_path)
    assert rel == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    absolute = parse_database_url("sqlite:////var/data/td.db", base_dir=tmp_path)
    assert absolute["NAME"] == "/var/data/td.db"


def test_postgres_url_parts():
    db = parse_database_url(
        "postgres://td:s%40cret@db.internal:5433/trustdesk?sslmode=require", base_dir=Path("/")
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "td",
        "s@cret",
        "db.internal",
        "5433",
        "trustdesk",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/x", "unsupported scheme 'mysql'"),
        ("postgres://localhost:5432/", "needs a database name"),
        ("postgres://localhost:notaport/db", "port is not a number"),
        ("sqlite://", "needs a file path"),
        ("not a url", "unsupported scheme '(none)'"),
    ],
)
def test_bad_database_url_is_refused_with_a_clear_message(url, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_database_url(url, base_dir=Path("/"))


def test_bad_database_url_stops_the_start_with_its_reason():
    env = {**os.environ, "DATABASE_URL": "mongodb://localhost/trustdesk"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DATABASE_URL='mongodb://localhost/trustdesk'" in result.stderr
    assert "unsupported scheme 'mongodb'" in result.stderr


def test_env_bool_and_list(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="not a boolean"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_HOSTS", "a.example, b.example,,")
    assert env_list("X_HOSTS", []) == ["a.example", "b.example"]


def _settings_in_subprocess(env_overrides: dict[str, str], expression: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "REDIS_URL"}}
    env.update(env_overrides)
    code = (
        f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "trustdesk.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_environment_variables_reach_the_settings():
    out = _settings_in_subprocess(
        {
            "SECRET_KEY": "k" * 60,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "td.example,localhost",
            "REDIS_URL": "redis://cache:6379/2",
            "DATABASE_URL": "sqlite:///x.db",
        },
        "s.SECRET_KEY == 'k'*60, s.DEBUG, s.ALLOWED_HOSTS, s.CELERY_BROKER_URL, "
        "s.CELERY_TASK_ALWAYS_EAGER, s.EMBEDDED, s.SESSION_COOKIE_SECURE",
    )
    assert out == ("True False ['td.example', 'localhost'] redis://cache:6379/2 False False True")


def test_no_redis_url_means_eager_tasks_and_no_secret_key_means_embedded():
    out = _settings_in_subprocess(
        {"DATABASE_URL": "sqlite:///x.db"},
        "s.CELERY_TASK_ALWAYS_EAGER, s.EMBEDDED, s.SESSION_COOKIE_SECURE, s.DEBUG",
    )
    assert out == "True True False False"


def test_postgres_connections_are_persistent():
    out = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/whatever"},
        "s.DATABASES['default']['CONN_MAX_AGE'] > 0, s.DATABASES['default']['CONN_HEALTH_CHECKS']",
    )
    assert out == "True True"


def test_check_deploy_with_production_settings_reports_nothing(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "a-real-production-secret-key-" + "x9Z!" * 12,
            "ALLOWED_HOSTS": "trustdesk.example",
            "DATABASE_URL": f"sqlite:///{tmp_path}/prod-check.db",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
