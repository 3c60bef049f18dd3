"""`manage.py export_incidents` names every unknown agent or incident key and exits 2."""

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_incident

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("option", "message"),
    [("--agent", "No agent ghost, nobody."), ("--incident", "No incident INC-404, ghost.")],
)
def test_unknown_keys_are_all_named(option, message, tmp_path):
    incident = make_incident()
    known = incident.agent.key if option == "--agent" else incident.key
    unknown = ["nobody", "ghost"] if option == "--agent" else ["INC-404", "ghost"]
    arguments = [a for key in [known, *unknown] for a in (option, key)]
    with pytest.raises(CommandError) as refused:
        call_command("export_incidents", str(tmp_path / "out.json"), *arguments)
    assert str(refused.value) == message
    assert refused.value.returncode == 2
    assert not (tmp_path / "out.json").exists()
