"""Every Markdown call of the pages renders people's text as text (issue 23 item 3).

Streamlit renders Markdown in st.markdown/write/caption/info/warning/error/success/toast/headers and in
widget labels, progress texts, expanders and tabs: a script title `![x](http://…/x.png)` there made an
admin's browser fetch that URL. Each such call's text must be a literal, a number, or go through the one
helper (`support.markdown_text`, `common.escape_markdown` in the pages); this test reads the pages' code
and names every call that does not.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

MARKDOWN_CALLS = {
    "markdown", "write", "caption", "info", "warning", "error", "success", "toast", "subheader", "header",
    "title", "expander", "button", "download_button", "form_submit_button", "link_button", "page_link", "tabs",
    "radio", "checkbox", "toggle", "progress", "status", "metric", "popover", "exception", "text_input",
    "selectbox", "multiselect", "number_input", "slider", "select_slider", "text_area", "file_uploader",
    "pills", "segmented_control", "feedback", "badge",
}
TEXT_KEYWORDS = ("label", "body", "text", "help", "caption", "placeholder")
HELPERS = {"escape_markdown", "markdown_text", "page_thumbnails_html"}
NUMBERS = {"int", "float", "len", "round", "sum", "abs", "min", "max", "bool"}


def _constant_name(node: ast.AST) -> bool:
    """A module constant (UPPER_CASE), a table of them, or an entry of one."""
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.Attribute):
        return node.attr.isupper()
    if isinstance(node, ast.Subscript):
        return _constant_name(node.value)
    return False


def safe(node: ast.AST) -> bool:
    """True when the expression cannot carry Markdown someone typed."""
    if isinstance(node, ast.Constant) or _constant_name(node):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(safe(value) for value in node.values)
    if isinstance(node, ast.FormattedValue):
        return node.format_spec is not None or safe(node.value)
    if isinstance(node, ast.BinOp):
        return safe(node.left) and safe(node.right)
    if isinstance(node, ast.IfExp):
        return safe(node.body) and safe(node.orelse)
    if isinstance(node, ast.BoolOp):
        return all(safe(value) for value in node.values)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in HELPERS or name in NUMBERS:
            return True
        if name == "get" and isinstance(func, ast.Attribute) and _constant_name(func.value):
            return True
        if name == "join" and isinstance(func, ast.Attribute) and node.args \
                and isinstance(node.args[0], (ast.GeneratorExp, ast.ListComp)):
            return safe(func.value) and safe(node.args[0].elt)
    return False


def _markdown_call(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in MARKDOWN_CALLS:
        return func.attr
    if isinstance(func, ast.IfExp) and all(isinstance(f, ast.Attribute) and f.attr in MARKDOWN_CALLS
                                           for f in (func.body, func.orelse)):
        return func.body.attr
    return None


def unescaped_in(path: Path) -> list[tuple[int, str]]:
    """(line, call) of every Markdown call in the file whose text is not literal, numeric or escaped."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or (name := _markdown_call(node)) is None:
            continue
        texts = list(node.args[:1] if name != "progress" else []) + [  # progress: the first is a number
            k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
        found += [(node.lineno, f"{name}({ast.unparse(text)[:80]})") for text in texts if not safe(text)]
    return sorted(found)


def test_every_markdown_call_with_changing_text_goes_through_the_helper():
    pages = sorted((REPO / "app_pages").glob("*.py")) + [REPO / "streamlit_app.py"]
    found = [f"{path.relative_to(REPO)}:{line}: {call}" for path in pages for line, call in unescaped_in(path)]
    assert found == []


def test_the_check_catches_what_it_is_for(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        "st.caption(f'{title} · {int(n)} lines')\n"
        "st.progress(0.5, text=view.text)\n"
        "(st.warning if x else st.success)(view.text)\n"
        "row[3].markdown('**' + name + '**')\n"
        "st.caption(f'{common.escape_markdown(title)} · {share:.0%} · {len(rows)}')\n"
        "st.button(LABEL_TITLES[label], help=HELP)\n"
        "st.toast('Saved')\n", encoding="utf-8")
    assert [line for line, _ in unescaped_in(page)] == [1, 2, 3, 4]
