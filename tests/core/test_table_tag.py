"""`{% table %}` (core/templatetags/tables.py): every list table in its scrolling box, or what the
page says when the list is empty, and a paginated list's bar under it."""

from __future__ import annotations

import pytest
from django.core.paginator import Paginator
from django.template import Context, RequestContext, Template, TemplateSyntaxError
from django.test import RequestFactory

TABLE = (
    '{% load tables %}{% table rows "small" %}<tbody>{% for r in rows %}<tr><td>{{ r }}</td></tr>'
    "{% endfor %}</tbody>{% empty %}<p>None yet.</p>{% endtable %}"
)


def test_rows_are_a_table_in_its_box():
    html = Template(TABLE).render(Context({"rows": ["a", "b"]}))
    assert html.startswith('<div class="table-wrap">\n<table class="small"><tbody>')
    assert "<td>a</td>" in html and "<td>b</td>" in html
    assert html.endswith("</tbody></table>\n</div>")
    assert "None yet." not in html


def test_no_rows_show_the_empty_part_only():
    assert Template(TABLE).render(Context({"rows": []})) == "<p>None yet.</p>"


def test_a_paginated_list_gets_the_pagination_bar_under_its_table():
    page = Paginator(list(range(30)), 10).get_page(2)
    template = Template(
        '{% load tables %}{% table page.object_list page=page noun="row" %}'
        "<tbody></tbody>{% endtable %}"
    )
    request = RequestFactory().get("/rows/", {"page": "2", "q": "x"})
    html = template.render(RequestContext(request, {"page": page}))
    assert html.index("</table>") < html.index('<nav class="pagination"')
    assert "11–20 of 30" in html
    assert 'href="?page=3&amp;q=x"' in html or 'href="?q=x&amp;page=3"' in html


def test_a_malformed_tag_is_refused_when_the_template_is_read():
    with pytest.raises(TemplateSyntaxError):
        Template("{% load tables %}{% table %}{% endtable %}")
    with pytest.raises(TemplateSyntaxError):
        Template('{% load tables %}{% table rows noun="row" %}{% endtable %}')
