"""`{% table rows "class" %}<thead>…</thead><tbody>…</tbody>{% empty %}…{% endtable %}`
(`{% load tables %}`): a list shown as a table in its `.table-wrap` box (the box that scrolls
sideways on a narrow screen and that static/js/trustdesk.js makes focusable while it does:
docs/accessibility.md), or, when `rows` is empty, what the `{% empty %}` part says. The class is
optional.

A paginated list names its page: `{% table rows page=page target="#results" noun="agent" %}`
puts templates/_pagination.html (with those values) under the table."""

from __future__ import annotations

from django import template
from django.template.base import token_kwargs
from django.utils.html import format_html

register = template.Library()


class TableNode(template.Node):
    child_nodelists = ("body", "empty")

    def __init__(self, rows, css, pagination: dict, body, empty):
        self.rows, self.css, self.pagination = rows, css, pagination
        self.body, self.empty = body, empty

    def render(self, context) -> str:
        if not self.rows.resolve(context):
            return self.empty.render(context)
        css = self.css.resolve(context) if self.css is not None else ""
        html = format_html(
            '<div class="table-wrap">\n<table{}>{}</table>\n</div>',
            format_html(' class="{}"', css) if css else "",
            self.body.render(context),
        )
        if not self.pagination:
            return html
        values = {name: value.resolve(context) for name, value in self.pagination.items()}
        with context.push(**values):
            bar = context.template.engine.get_template("_pagination.html").render(context)
        return html + "\n" + bar


@register.tag
def table(parser, token) -> TableNode:
    bits = token.split_contents()[1:]
    pagination = token_kwargs([b for b in bits if "=" in b], parser)
    plain = [b for b in bits if "=" not in b]
    if len(plain) not in (1, 2) or (pagination and "page" not in pagination):
        raise template.TemplateSyntaxError(
            'Use {% table rows ["class"] [page=page target=... noun=...] %}.'
        )
    rows = parser.compile_filter(plain[0])
    css = parser.compile_filter(plain[1]) if len(plain) == 2 else None
    body = parser.parse(("empty", "endtable"))
    empty = template.NodeList()
    if parser.next_token().contents == "empty":
        empty = parser.parse(("endtable",))
        parser.delete_first_token()
    return TableNode(rows, css, pagination, body, empty)
