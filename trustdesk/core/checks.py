from django.conf import settings
from django.core.checks import Tags, Warning, register


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
