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
