from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder


@register(Tags.security, deploy=True)
def check_secret_key_is_set(app_configs, **kwargs):
    if getattr(settings, "EMBEDDED", False):
        return [
            Warning(
                "SECRET_KEY is not set, so TrustDesk runs with its embedded development key.",
                hint="Set SECRET_KEY (and DEBUG=0, ALLOWED_HOSTS) in the environment.",
                id="trustdesk.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_ssl_redirect_behind_a_proxy(app_configs, **kwargs):
    # Behind a TLS-terminating proxy every request arrives as http: without the proxy's
    # X-Forwarded-Proto being trusted, SECURE_SSL_REDIRECT would redirect forever.
    if settings.SECURE_SSL_REDIRECT and not settings.SECURE_PROXY_SSL_HEADER:
        return [
            Warning(
                "SECURE_SSL_REDIRECT is on but X-Forwarded-Proto is not trusted.",
                hint="Behind a TLS-terminating proxy that sets it, set "
                "TRUSTDESK_TRUST_X_FORWARDED_PROTO=1 (docs/operations.md).",
                id="trustdesk.W002",
            )
        ]
    return []


@register(Tags.database)
def check_no_release_is_half_applied(app_configs, databases=None, **kwargs):
    """A database that ran some of a release's original migrations but not all of them cannot
    take that release's squashed migration: Django would leave the squash out of the plan and
    `migrate` would apply nothing (docs/adr/0007-squash-migrations-at-each-release.md). Run by
    `migrate` and `check --database`, so the upgrade stops with the way out instead."""
    problems = []
    for alias in databases or ():
        recorder = MigrationRecorder(connections[alias])
        if not recorder.has_table():
            continue
        applied = set(recorder.applied_migrations())
        for key, migration in MigrationLoader(None, ignore_no_migrations=True).replacements.items():
            done = [name for app, name in migration.replaces if (app, name) in applied]
            if key in applied or not done or len(done) == len(migration.replaces):
                continue
            missing = [name for app, name in migration.replaces if (app, name) not in applied]
            problems.append(
                Error(
                    f"Database {alias!r} ran {len(done)} of the {len(migration.replaces)} "
                    f"migrations that {key[0]}.{key[1]} replaces; still to run: "
                    f"{', '.join(missing)}.",
                    hint="Run `manage.py migrate` first on the commit that carries the squashed "
                    "migration beside the originals (docs/operations.md, Upgrading), then on "
                    "this release.",
                    id="trustdesk.E001",
                )
            )
    return problems
