from django.db import migrations, models

ROLES = ("operator", "incident_manager", "risk", "viewer")


def create_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    initial = True

    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
                ("last_seen", models.DateTimeField()),
            ],
        ),
        # Groups are data, not schema; never removed on reverse (nothing is hard-deleted).
        migrations.RunPython(create_role_groups, migrations.RunPython.noop),
    ]
