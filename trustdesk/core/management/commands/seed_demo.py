"""`manage.py seed_demo`: a realistic demo data set, built through the domain functions.

Each app contributes `trustdesk/<app>/demo.py` with `seed(stdout)`; they run in the order data
flows (docs/design.md section 2). Every seed is idempotent, so running the command twice keeps the
data.
"""

from __future__ import annotations

import importlib

from django.core.management.base import BaseCommand

from trustdesk.core import demo as core_demo

# An entry with a dot names its module under trustdesk/ (a second demo of an app that needs the
# apps after it seeded first); the others are trustdesk/<app>/demo.py.
SEED_ORDER = (
    "core",
    "pacts",
    "incidents",
    "reviews",
    "incidents.ownership_demo",
    "metrics",
    "diligence",
)


class Command(BaseCommand):
    help = "Load the demo data set (idempotent) and print the demo logins."

    def handle(self, *args, **options) -> None:
        for app in SEED_ORDER:
            module_name = f"trustdesk.{app}" if "." in app else f"trustdesk.{app}.demo"
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                continue
            module.seed(self.stdout)
        core_demo.print_logins(self.stdout)
