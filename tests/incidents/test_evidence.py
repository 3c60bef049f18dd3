"""Evidence: content-addressed, hashed while streaming, never overwritten."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.builders import walk
from tests.factories import upload
from tests.incidents.backend_helpers import fresh, incident_in
from trustdesk.incidents import evidence as store
from trustdesk.incidents import journal, lifecycle
from trustdesk.incidents.errors import GateError
from trustdesk.incidents.models import Event, Evidence

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def add(incident, **kw):
    incident = fresh(incident)
    kw.setdefault("kind", "transcript")
    kw.setdefault("description", "Chat transcript")
    return lifecycle.add_evidence(incident, by=None, expected_version=incident.version, **kw)


def files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "evidence").rglob("*") if p.is_file())


def test_a_file_is_stored_content_addressed_with_its_hash_and_size(settings):
    content = b"user: refund 450 EUR\nbot: done\n"
    incident = incident_in("contained")
    item = add(incident, upload=upload(content, "chat.txt"))
    sha = hashlib.sha256(content).hexdigest()
    assert (item.sha256, item.size, item.content_type) == (sha, len(content), "file")
    assert item.storage_path == f"evidence/{sha[:2]}/{sha}"
    path = Path(settings.MEDIA_ROOT) / item.storage_path
    assert path.read_bytes() == content
    assert not str(path.resolve()).startswith(str(Path(settings.STATIC_ROOT).resolve()))
    assert item.original_name == "chat.txt" and item.media_type == "text/plain"
    event = Event.objects.get(pk=item.event_id)
    assert (event.type, event.data) == (
        "evidence_added",
        {"kind": "transcript", "sha256": sha, "description": "Chat transcript"},
    )
    assert store.content_bytes(item) == content


def test_a_file_above_the_limit_is_refused_and_nothing_is_kept(settings):
    settings.EVIDENCE_MAX_BYTES = 10
    incident = incident_in("contained")
    with pytest.raises(GateError, match="at most 10 bytes"):
        add(incident, upload=upload(b"x" * 11, "big.log"))
    assert files(Path(settings.MEDIA_ROOT)) == []
    assert not Evidence.objects.exists() and fresh(incident).version == 2


class LyingUpload(SimpleUploadedFile):
    """A client that declares a small size and sends more."""

    @property
    def size(self):
        return 1

    @size.setter
    def size(self, value):
        pass


def test_the_limit_is_enforced_while_streaming_not_on_the_declared_size(settings):
    settings.EVIDENCE_MAX_BYTES = 100
    incident = incident_in("contained")
    with pytest.raises(GateError, match="larger than 100 bytes"):
        add(incident, upload=LyingUpload("x.bin", b"y" * 500))
    assert files(Path(settings.MEDIA_ROOT)) == []


@pytest.mark.parametrize(
    "content",
    [{"upload": "empty-file"}, {"text": "   \n"}, {"url": " "}],
    ids=["file", "text", "url"],
)
def test_empty_content_is_refused(content, settings):
    incident = incident_in("contained")
    if "upload" in content:
        content = {"upload": upload(b"", "empty.txt")}
    with pytest.raises(GateError) as info:
        add(incident, **content)
    assert any("empty" in p or "nothing was given" in p for p in info.value.problems)
    assert not Evidence.objects.exists()


def test_duplicate_content_in_the_same_incident_names_the_existing_item(settings):
    incident = incident_in("contained")
    first = add(incident, upload=upload(b"same bytes", "a.txt"), description="First copy")
    with pytest.raises(GateError) as info:
        add(incident, upload=upload(b"same bytes", "b.txt"), kind="other", description="Again")
    (problem,) = info.value.problems
    assert "already attached" in problem and "'First copy'" in problem
    assert first.sha256[:12] in problem
    assert Evidence.objects.count() == 1
    # the stored file of the first item survives the refused second upload
    assert (Path(settings.MEDIA_ROOT) / first.storage_path).read_bytes() == b"same bytes"
    # the same content in another incident is fine and shares the file
    other = add(incident_in("contained"), upload=upload(b"same bytes", "c.txt"))
    assert other.storage_path == first.storage_path
    assert len(files(Path(settings.MEDIA_ROOT))) == 1


def test_a_correction_supersedes_and_overwrites_nothing():
    incident = incident_in("contained")
    old = add(incident, text="transcript v1", description="Transcript")
    new = add(incident, text="transcript v2", description="Transcript, full", supersedes=old)
    old.refresh_from_db()
    assert (old.text, new.supersedes_id, old.superseded_by) == ("transcript v1", old.pk, new)
    assert Event.objects.get(pk=new.event_id).data["supersedes"] == old.sha256
    with pytest.raises(GateError, match="already superseded"):
        add(incident, text="transcript v3", supersedes=old)
    foreign = add(incident_in("contained"), text="elsewhere")
    with pytest.raises(GateError, match="same incident"):
        add(incident, text="v4", supersedes=foreign)


def test_a_kind_superseded_away_no_longer_counts_as_present():
    incident = incident_in("contained", evidence_required=["transcript"])
    wrong = add(incident, text="this was a tool log", kind="transcript")
    add(incident, text="this was a tool log.", kind="tool_calls", supersedes=wrong)
    with pytest.raises(GateError, match="'transcript' is required"):
        lifecycle.mark_evidence_preserved(
            fresh(incident), by=None, expected_version=fresh(incident).version
        )


def test_exactly_one_kind_of_content_and_a_known_kind():
    incident = incident_in("contained")
    with pytest.raises(GateError) as info:
        add(incident, text="a", url="https://example.com/a", kind="selfie", description="")
    text = " | ".join(info.value.problems)
    assert (
        "exactly one of a file, a text or a URL as the evidence content (got a text and a URL)"
        in text
    )
    assert "Choose an evidence kind" in text and "Describe the evidence" in text


def test_urls_must_be_http():
    incident = incident_in("contained")
    with pytest.raises(GateError, match="not a valid http"):
        add(incident, url="javascript:alert(1)")
    item = add(incident, url="https://logs.example.com/run/42")
    assert item.content_type == "url"
    assert item.sha256 == hashlib.sha256(b"https://logs.example.com/run/42").hexdigest()


def test_a_file_named_like_html_is_kept_as_inert_bytes_under_its_hash(settings):
    incident = incident_in("contained")
    item = add(
        incident,
        upload=upload(b"<script>alert(1)</script>", '../../static/evil".html', "text/html"),
    )
    assert item.original_name == "evil.html"
    assert item.storage_path.endswith(item.sha256) and ".html" not in item.storage_path
    assert (Path(settings.MEDIA_ROOT) / item.storage_path).stat().st_mode & 0o111 == 0


def test_evidence_after_the_decision_is_accepted_and_marked_late(settings):
    incident = walk(incident_in("repaired"), "recovered")
    item = add(incident, upload=upload(b"late bytes"))
    assert item.event.data["late"] is True
    assert fresh(incident).state == "recovered"


def test_refused_evidence_discards_its_upload(settings):
    incident = incident_in("repaired")
    with pytest.raises(GateError, match="Describe the evidence"):
        add(incident, upload=upload(b"undescribed bytes"), description="")
    assert files(Path(settings.MEDIA_ROOT)) == []


def test_evidence_may_arrive_before_containment():
    incident = incident_in("detected")
    add(incident, text="the alert text", kind="alert")
    assert fresh(incident).state == "detected"


def test_media_inside_static_root_is_refused(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    with pytest.raises(RuntimeError, match="never static"):
        store.root()


def test_content_already_recorded_by_imported_history_is_a_duplicate():
    incident = incident_in("contained")
    sha = hashlib.sha256(b"imported chat").hexdigest()
    with journal.locked_incident(incident) as inc:
        journal.append_event(
            inc,
            type="evidence_added",
            by=None,
            data={"kind": "transcript", "sha256": sha, "description": "Imported chat"},
        )
    with pytest.raises(GateError, match="already recorded on .* 'Imported chat' \\(event 3"):
        add(incident, text="imported chat")
