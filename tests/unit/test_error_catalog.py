"""The error catalog is the only place a code is spelled; README and API description follow it.

- The README's error table is :func:`tidings.core.errors.markdown_table`, between
  its markers: run this file (``python tests/unit/test_error_catalog.py``) to
  rewrite it after changing the catalog.
- The API description's error responses list, per status, exactly the catalog's
  codes of that status (the Schemathesis run then checks the server's answers
  against them), and its ``Error`` schema every HTTP code.
- An AST scan of the package: no error exception is given a code of its own, no
  kind is declared outside the catalog, and no string spelling a catalog code
  stands outside it (a dict key, or a known word that is no error code, aside).
"""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

from tidings.api.openapi import document
from tidings.core import errors

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "server" / "tidings"
README = ROOT / "README.md"
START = "<!-- error-table: made from tidings.core.errors.CATALOG;" \
        " tests/unit/test_error_catalog.py rewrites it -->\n"
END = "<!-- /error-table -->"
#: Strings that spell a catalog code but mean something else there (file: words).
NOT_ERROR_CODES = {
    "api/health.py": {"unavailable"},  # /readyz's status
    "api/openapi_schemas.py": {"unavailable"},  # /readyz's status in its schema
    "core/push.py": {"invalid_token"},  # a push outcome: the device is deactivated
}
ERROR_CLASSES = {"TidingsError", "ValidationError", "AuthError", "NotFound", "Conflict",
                 "TooLarge", "RateLimited", "Unavailable", "StoreUnavailable", "BusUnavailable"}


def _readme_parts() -> tuple[str, str, str]:
    text = README.read_text()
    assert START in text and END in text, f"README lost its error-table markers ({START!r})"
    head, _, rest = text.partition(START)
    table, _, tail = rest.partition(END)
    return head, table, tail


def test_readme_table_is_the_catalog() -> None:
    _, table, _ = _readme_parts()
    assert table == errors.markdown_table(), (
        "README's error table differs from the catalog: run"
        " `python tests/unit/test_error_catalog.py` to rewrite it")


def test_table_has_one_row_per_code() -> None:
    rows = errors.markdown_table().splitlines()[2:]
    assert [row.split(" | ")[1].strip("`") for row in rows] == list(errors.CATALOG)
    assert all(k.message and k.when and k.action for k in errors.CATALOG.values())


def test_api_description_lists_each_status_codes() -> None:
    doc = document()
    responses = doc["components"]["responses"]
    listed: set[int] = set()
    for path in doc["paths"].values():
        for op in path.values():
            for status, answer in op["responses"].items():
                if "$ref" in answer:
                    listed.add(int(status))
                    assert answer["$ref"].rsplit("/", 1)[1] in responses
    documented = set()
    for answer in responses.values():
        body = answer["content"]["application/json"]["schema"]
        codes = body["properties"]["error"]["properties"]["code"]["enum"]
        status = {k.status for k in errors.CATALOG.values() if k.code in codes}
        assert len(status) == 1, f"one response mixes statuses: {codes}"
        (only,) = status
        assert codes == [k.code for k in errors.http_kinds(only)]
        assert all(f"{code}: " in answer["description"] for code in codes)
        documented.add(only)
    assert listed <= documented, f"statuses with no response: {listed - documented}"
    every = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert every["enum"] == [k.code for k in errors.CATALOG.values() if not k.socket_only]


#: http_error and socket frames are never raised; 429 and 503 have classes of their own.
RAISED = [k for k in errors.CATALOG.values() if k.status not in (None, 429, 503)]


@pytest.mark.parametrize("kind", RAISED, ids=[k.code for k in RAISED])
def test_a_kind_raises_with_its_code_and_status(kind: errors.ErrorKind) -> None:
    exc = kind.error("told")
    assert (exc.code, exc.status, exc.message) == (kind.code, kind.status, "told")
    assert kind.error().message == kind.message
    expected = {400: errors.ValidationError, 401: errors.AuthError, 404: errors.NotFound,
                409: errors.Conflict, 413: errors.TooLarge}.get(kind.status, errors.TidingsError)
    assert type(exc) is expected


def test_a_class_default_kind_is_in_the_catalog() -> None:
    assert errors.NotFound("gone").code == "not_found"
    assert errors.RateLimited(2.5).status == 429 and errors.RateLimited(2.5).code == "rate_limited"
    assert errors.StoreUnavailable("down").kind is errors.UNAVAILABLE
    with pytest.raises(TypeError):
        errors.Conflict("which conflict?")  # a 409 names its kind


def _problems(relative: str, tree: ast.AST) -> list[str]:
    allowed = NOT_ERROR_CODES.get(relative, set())
    keys = {id(k) for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys}
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', '?')}"
        if (isinstance(node, ast.Constant) and node.value in errors.CATALOG
                and id(node) not in keys | docs and node.value not in allowed):
            found.append(f"{where}: the code {node.value!r} is spelled out")
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in ("ErrorKind", "_declare"):
                found.append(f"{where}: an error kind declared outside the catalog")
            if name in ERROR_CLASSES:
                found += [f"{where}: {name}({kw.arg}=...)" for kw in node.keywords
                          if kw.arg != "kind"]
    return found


def test_no_code_outside_the_catalog() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative != "core/errors.py":
            problems += _problems(relative, ast.parse(path.read_text(), str(path)))
    assert not problems, "\n".join(problems)


def test_the_scan_catches_an_invented_code() -> None:
    source = ('raise TidingsError("no", code="made_up")\n'
              'body = {"error": {"code": "not_found", "message": "x"}}\n'
              'k = ErrorKind("x", 400, "m", "w", "a")\n')
    assert len(_problems("api/x.py", ast.parse(source))) == 3


if __name__ == "__main__":  # rewrite README's table from the catalog
    head, _, tail = _readme_parts()
    README.write_text(head + START + errors.markdown_table() + END + tail)
    sys.exit(0)
