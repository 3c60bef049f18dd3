# This release's reviews migrations (0004-0005) squashed by Django (docs/adr/0007-squash-migrations-at-each-release.md):
# the re-entry condition kinds are a function's choices from now on.

import trustdesk.reviews.models
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('reviews', '0004_actions_done_condition'), ('reviews', '0005_condition_kind_choices_callable')]

    dependencies = [
        ('reviews', '0003_decision_agent_scope'),
    ]

    operations = [
        migrations.AlterField(
            model_name='reentrycondition',
            name='kind',
            field=models.CharField(choices=trustdesk.reviews.models.condition_kind_choices, max_length=40),
        ),
    ]
