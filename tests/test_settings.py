"""config/settings.py reads the environment: each test loads the settings in a fresh Python process with a
chosen environment, because settings are read once per process."""

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.system  # its tests start processes (tests/tiers.py)

# Everything settings.py reads; a test starts from none of them so the developer's shell cannot leak in.
CONFIG_VARIABLES = {
    *("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "CSRF_TRUSTED_ORIGINS"),
    *("CHANNEL_PREFIX", "MEDIA_ROOT", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "LOG_LEVEL", "TOKEN_THROTTLE_RATE"),
    "RQ_API_TOKEN", "PYTEST_XDIST_WORKER",
}

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "runwatch.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://runwatch.example.org",
    "DATABASE_URL": "postgres://runwatch:secret@db.example.org:5432/runwatch",
    "REDIS_URL": "redis://redis.example.org:6379/0",
}


@pytest.fixture
def environ(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in CONFIG_VARIABLES and not k.startswith(("RUNWATCH_", "AWS_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", RUNWATCH_STATE_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    return env


def run(environ, args, **env):
    return subprocess.run(
        args, cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def load(environ, *names, **env):
    """The named settings as the process with this environment sees them."""
    code = (
        "import json, sys; from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n) for n in sys.argv[1:]}, default=str))"
    )
    result = run(environ, [sys.executable, "-c", code, *names], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def shell(environ, code, **env):
    return run(environ, [sys.executable, "manage.py", "shell", "-c", code], **env)


def test_it_defaults_to_sqlite_in_wal_mode_with_a_busy_timeout(environ, tmp_path):
    db = load(environ, "DATABASES", DEBUG="1")["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "db.sqlite3")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert db["TEST"]["NAME"] == str(tmp_path / "test.sqlite3")

    # What a real connection gets, not only what the dict says.
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    for pragma in ('journal_mode', 'busy_timeout'):\n"
        "        c.execute(f'PRAGMA {pragma}'); print(pragma, c.fetchone()[0])\n"
    )
    result = shell(environ, code, DEBUG="1")
    assert result.returncode == 0, result.stderr
    # Django 5.2's shell also prints how many objects it imported: keep only our lines.
    pragmas = dict(line.split() for line in result.stdout.splitlines() if line.startswith(("journal_mode", "busy")))
    assert pragmas["journal_mode"] == "wal"
    assert int(pragmas["busy_timeout"]) >= 5000


def test_it_uses_postgres_from_database_url(environ):
    url = "postgres://runwatch:s3cret@db.example.org:5433/runwatch_prod"
    db = load(environ, "DATABASES", DEBUG="1", DATABASE_URL=url)["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("runwatch_prod", "runwatch", "s3cret")
    assert (db["HOST"], db["PORT"]) == ("db.example.org", 5433)
    assert db["CONN_HEALTH_CHECKS"] is True
    assert "transaction_mode" not in db.get("OPTIONS", {})


def test_it_puts_redis_url_into_the_queue_and_the_channel_layer(environ):
    url = "redis://127.0.0.1:6379/7"
    s = load(environ, "RQ_QUEUES", "CHANNEL_LAYERS", DEBUG="1", REDIS_URL=url)
    assert s["RQ_QUEUES"]["default"]["URL"] == url
    layer = s["CHANNEL_LAYERS"]["default"]
    assert layer["CONFIG"]["hosts"] == [url]
    # Pub/sub ignores database numbers, so the prefix must differ per database.
    assert layer["CONFIG"]["prefix"] == "runwatch7"


def test_it_defaults_to_the_private_redis_and_never_the_standard_port(environ):
    assert load(environ, "REDIS_URL", DEBUG="1")["REDIS_URL"] == "redis://127.0.0.1:6389/0"
    moved = load(environ, "RQ_QUEUES", DEBUG="1", RUNWATCH_REDIS_PORT="6401")
    assert moved["RQ_QUEUES"]["default"]["URL"] == "redis://127.0.0.1:6401/0"


def test_it_uses_the_redis_port_make_run_recorded_unless_told_otherwise(environ, tmp_path):
    (tmp_path / "redis-port").write_text("6402\n")  # scripts/private_redis.py --record-port, in the state dir

    assert load(environ, "REDIS_URL", DEBUG="1")["REDIS_URL"] == "redis://127.0.0.1:6402/0"
    assert load(environ, "REDIS_URL", DEBUG="1", RUNWATCH_REDIS_PORT="6401")["REDIS_URL"] == "redis://127.0.0.1:6401/0"
    url = "redis://redis.example.org:6379/2"
    assert load(environ, "REDIS_URL", DEBUG="1", REDIS_URL=url)["REDIS_URL"] == url
    (tmp_path / "redis-port").write_text("not a port")
    assert load(environ, "REDIS_URL", DEBUG="1")["REDIS_URL"] == "redis://127.0.0.1:6389/0"


def test_it_really_queues_on_the_redis_of_redis_url(environ, redis_client):
    from django.conf import settings

    code = "import django_rq; django_rq.get_connection('default').set('runwatch-settings-probe', 'queued here')"
    result = shell(environ, code, DEBUG="1", REDIS_URL=settings.REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert redis_client.get("runwatch-settings-probe") == b"queued here"


def test_it_reads_allowed_hosts_and_csrf_trusted_origins(environ):
    env = {
        **PRODUCTION,
        "ALLOWED_HOSTS": "runwatch.example.org, .example.net ,",
        "CSRF_TRUSTED_ORIGINS": "https://runwatch.example.org,https://*.example.net",
    }
    s = load(environ, "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", **env)
    assert s["ALLOWED_HOSTS"] == ["runwatch.example.org", ".example.net"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://runwatch.example.org", "https://*.example.net"]


def test_it_allows_only_local_hosts_by_default(environ):
    assert set(load(environ, "ALLOWED_HOSTS", DEBUG="1")["ALLOWED_HOSTS"]) >= {"127.0.0.1", "localhost"}
    assert load(environ, "ALLOWED_HOSTS", **{**PRODUCTION, "ALLOWED_HOSTS": ""})["ALLOWED_HOSTS"] == []


@pytest.mark.parametrize(
    "value, expected",
    [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("false", False), ("off", False)],
)
def test_it_parses_debug(environ, value, expected):
    assert load(environ, "DEBUG", **{**PRODUCTION, "DEBUG": value})["DEBUG"] is expected


def test_it_turns_debug_off_by_default(environ):
    env = {k: v for k, v in PRODUCTION.items() if k != "DEBUG"}
    s = load(environ, "DEBUG", "SESSION_COOKIE_SECURE", **env)
    assert s == {"DEBUG": False, "SESSION_COOKIE_SECURE": True}


def test_it_rejects_a_debug_value_it_cannot_read(environ):
    result = run(environ, [sys.executable, "manage.py", "check"], DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_it_refuses_to_start_without_secret_key_when_debug_is_off(environ):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run(environ, [sys.executable, "manage.py", "check"], **env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "DEBUG=1" in result.stderr  # The message says how to fix it.


def test_it_reads_run_timings(environ):
    s = load(environ, "RUNWATCH", DEBUG="1", RUNWATCH_CANCEL_GRACE="3.5", RUNWATCH_WORKER_LOST="20")
    assert s["RUNWATCH"]["CANCEL_GRACE_SECONDS"] == 3.5
    assert s["RUNWATCH"]["WORKER_LOST_SECONDS"] == 20.0
    result = run(environ, [sys.executable, "manage.py", "check"], DEBUG="1", RUNWATCH_HEARTBEAT="often")
    assert result.returncode != 0 and "RUNWATCH_HEARTBEAT must be a number" in result.stderr


S3 = {
    "RUNWATCH_S3_BUCKET": "runwatch-files",
    "AWS_S3_ENDPOINT_URL": "https://objects.example.org",
    "AWS_S3_REGION_NAME": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "runwatch",
    "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
}


def test_it_keeps_files_under_media_root_by_default(environ, tmp_path):
    s = load(environ, "STORAGES", "MEDIA_ROOT", DEBUG="1")
    assert s["STORAGES"]["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert s["MEDIA_ROOT"] == str(tmp_path / "media")


def test_it_keeps_files_in_an_s3_bucket_when_one_is_given(environ):
    code = (
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__module__, s.bucket_name, s.endpoint_url, s.region_name, s.access_key, s.file_overwrite)"
    )
    result = shell(environ, code, DEBUG="1", **S3)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-6:] == [
        "storages.backends.s3", "runwatch-files", "https://objects.example.org", "eu-west-1", "runwatch", "False"]


@pytest.mark.parametrize("extra", [{}, S3], ids=["media-root", "s3"])
def test_it_passes_the_deploy_check_with_production_values(environ, extra):
    args = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    result = run(environ, args, **PRODUCTION, **extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_fails_the_deploy_check_with_debug_on(environ):
    # The check above is meaningful: the same command does flag an unsafe configuration.
    args = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    result = run(environ, args, **{**PRODUCTION, "DEBUG": "1"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG should not be True in deployment.


def test_it_refuses_to_serve_with_debug_off_before_the_static_files_are_collected(environ, tmp_path):
    local = {**PRODUCTION, "DATABASE_URL": "", "REDIS_URL": ""}
    load_app = [sys.executable, "-c", "import config.asgi"]  # what daphne does first
    refused = run(environ, load_app, **local)
    assert refused.returncode != 0
    assert "The static files are not collected" in refused.stderr
    assert "manage.py collectstatic --noinput" in refused.stderr
    collected = run(environ, [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], **local)
    assert collected.returncode == 0, collected.stderr
    started = run(environ, load_app, **local)
    assert started.returncode == 0, started.stderr
