import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from trustdesk.incidents import models as incidents_models
from trustdesk.reviews import models as reviews_models


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    # Exits non-zero (SystemExit) when a model changed without a migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _changes_against_the_migrations() -> dict:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    autodetector = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(apps), questioner=None
    )
    return autodetector.changes(graph=loader.graph)


@pytest.mark.parametrize(
    ("module", "choices_class", "model", "field"),
    [
        (incidents_models, "EventType", incidents_models.Event, "type"),
        (reviews_models, "ConditionKind", reviews_models.ReentryCondition, "kind"),
    ],
)
def test_a_new_choice_needs_no_migration(monkeypatch, module, choices_class, model, field):
    """The field's choices are a function of the TextChoices: one more member is one more choice
    on the field, and the migrations, which name the function, see no change."""
    current = getattr(module, choices_class)
    members = {member.name: (member.value, member.label) for member in current}
    grown = models.TextChoices(choices_class, {**members, "ADDED_LATER": ("added_later", "Later")})
    monkeypatch.setattr(module, choices_class, grown)
    assert ("added_later", "Later") in list(model._meta.get_field(field).choices)
    assert _changes_against_the_migrations() == {}
