"""On PostgreSQL, refuse UPDATE and DELETE of the reviews records that are written once:
decisions, attestations, sign-offs, operating-model changes and meeting notes.

A row trigger, so TRUNCATE (Django's test teardown) still works. On SQLite the models refuse it
(reviews.models.WriteOnceModel) and the event chain records every one of them anyway.
"""

from django.db import migrations

from trustdesk.core.dbtriggers import on_postgresql, write_once_guard

FORWARD, BACKWARD = write_once_guard(
    "reviews_refuse_change",
    "review records are written once",
    (
        "reviews_recoverydecision",
        "reviews_attestation",
        "reviews_signoff",
        "reviews_operatingmodelchange",
        "reviews_meetingnote",
    ),
    suffix="write_once",
)


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [
        migrations.RunPython(on_postgresql(FORWARD), on_postgresql(BACKWARD), elidable=False)
    ]
