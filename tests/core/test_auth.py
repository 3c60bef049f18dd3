import pytest
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from trustdesk.core.decorators import role_required
from trustdesk.core.roles import ROLES

pytestmark = pytest.mark.django_db


def test_the_four_role_groups_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def test_login_with_the_right_password_shows_name_and_role(client, make_user):
    make_user("risk", username="rita", password="correct horse")
    response = client.post(reverse("login"), {"username": "rita", "password": "correct horse"})
    assert response.status_code == 302
    page = client.get(response.url)
    assert page.status_code == 200
    assert b"rita" in page.content
    assert b"Risk" in page.content


def test_wrong_password_gives_a_message_not_a_500(client, make_user):
    make_user("operator", username="olivia", password="right")
    response = client.post(reverse("login"), {"username": "olivia", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_ends_the_session(client, make_user):
    user = make_user("viewer")
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def _view(request):
    return HttpResponse("ok")


def test_role_required_sends_anonymous_users_to_login():
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/secret/")
    request.user = AnonymousUser()
    response = role_required("risk")(_view)(request)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login")) and "next=/secret/" in response.url


def test_role_required_refuses_the_wrong_role_and_admits_the_right_one(make_user):
    from django.core.exceptions import PermissionDenied

    view = role_required("risk", "incident_manager")(_view)
    request = RequestFactory().get("/secret/")
    request.user = make_user("operator")
    with pytest.raises(PermissionDenied):
        view(request)
    request.user = make_user("incident_manager")
    assert view(request).content == b"ok"


def test_wrong_role_gets_the_friendly_403_page(client_for):
    response = client_for("viewer").get("/admin/")  # staff-only: a redirect, not our page
    assert response.status_code == 302
    from django.core.exceptions import PermissionDenied

    from trustdesk.core.views import permission_denied

    request = RequestFactory().get("/x/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    page = permission_denied(request, PermissionDenied("Only risk may activate a pact."))
    assert page.status_code == 403
    assert b"Only risk may activate a pact." in page.content


def test_unknown_url_gets_the_friendly_404(client_for):
    response = client_for("viewer").get("/no/such/page/")
    assert response.status_code == 404
    assert b"Nothing here" in response.content


def test_pages_carry_csp_and_csrf_header_for_htmx(client_for):
    response = client_for("viewer").get(reverse("dashboard"))
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    body = response.content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in body
    assert "/static/django_htmx/htmx-2.min.js" in body
    assert "<script>" not in body and " style=" not in body
