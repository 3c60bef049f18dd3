from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from trustdesk.core.roles import primary_role_label, user_roles

NAVIGATION = (
    ("dashboard", "Dashboard"),
    ("my_work", "My work"),
    ("agents", "Agents"),
    ("pacts", "Pacts"),
    ("incidents", "Incidents"),
    ("reviews", "Reviews"),
    ("diligence", "Diligence"),
    ("webhooks", "Webhooks"),
)


def _nav(path: str) -> list[dict]:
    items = []
    for name, label in NAVIGATION:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        active = path == url if url == "/" else path.startswith(url)
        items.append({"name": name, "url": url, "label": label, "active": active})
    return items


# Each app keeps its own styles in static/css/<app>.css, after the shared trustdesk.css.
APP_STYLESHEETS = tuple(
    f"css/{app}.css" for app in ("pacts", "incidents", "reviews", "metrics", "diligence", "notify")
)


def shell(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {
            "nav_items": [],
            "user_roles": frozenset(),
            "user_role_label": "",
            "app_stylesheets": APP_STYLESHEETS,
        }
    return {
        "app_stylesheets": APP_STYLESHEETS,
        "nav_items": _nav(request.path),
        "user_roles": user_roles(user),
        "user_role_label": primary_role_label(user),
    }
