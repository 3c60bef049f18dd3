"""What the browser suite checks on every page: no horizontal overflow, and axe-core.

axe-core is a test-time tool: `.ci/run` installs it from the npm registry into the gitignored
`.cache/axe/` folder (`npm install --no-save --prefix .cache/axe axe-core@4`); it is never part of
the repository nor served by the app. The tests inject the file into the page they check.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import ROOT, missing_service

AXE = Path(os.environ.get("TRUSTDESK_AXE", ROOT / ".cache/axe/node_modules/axe-core/axe.min.js"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def axe_path() -> Path:
    """The axe-core script; skip without it (fail under TRUSTDESK_REQUIRE_SERVICES=1)."""
    if not AXE.is_file():
        missing_service(f"axe-core at {AXE} (npm install --no-save --prefix .cache/axe axe-core@4)")
    return AXE


def axe_violations(page) -> list[str]:
    """Every axe-core violation on the page as it stands, one line per rule and element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_path()))
    result = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
            }));
        }"""
    )
    return [f"{v['id']} ({v['help']}): {', '.join(v['nodes'])}" for v in result]


def horizontal_overflow(page) -> str:
    """'' when the document fits the viewport's width, else what is wider than it."""
    widths = page.evaluate(
        """() => {
            const root = document.documentElement;
            if (root.scrollWidth <= root.clientWidth) return null;
            const wide = [];
            for (const el of document.body.querySelectorAll("*")) {
                const box = el.getBoundingClientRect();
                if (box.right > root.clientWidth + 1 && box.width > 0) {
                    let inside = el.parentElement;
                    let clipped = false;
                    while (inside && inside !== document.body) {
                        const style = getComputedStyle(inside);
                        if (style.overflowX !== "visible") { clipped = true; break; }
                        inside = inside.parentElement;
                    }
                    if (!clipped) {
                        const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                            + (el.className && typeof el.className === "string"
                               ? "." + el.className.trim().split(/\\s+/).join(".") : "");
                        wide.push(name + " right=" + Math.round(box.right));
                    }
                }
            }
            return {scroll: root.scrollWidth, client: root.clientWidth, wide: wide.slice(0, 8)};
        }"""
    )
    if widths is None:
        return ""
    return (
        f"document {widths['scroll']} px wide in a {widths['client']} px viewport; "
        f"widest: {'; '.join(widths['wide'])}"
    )


def wait_until_true(page, expression: str, *, timeout: float = 3.0) -> None:
    """Poll a JavaScript expression with `page.evaluate` until it is true.

    Playwright's `wait_for_function` compiles its string with `eval` once it has to poll, which the
    app's Content-Security-Policy (no 'unsafe-eval') refuses: it then fails only when the page is
    slow. `page.evaluate` is not subject to the page's CSP."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(50)
