"""The rules of docs/architecture.md that import-linter cannot see.

import-linter (`make lint`, pyproject.toml) checks that each app imports only the apps below
it, counting imports inside functions too. What it cannot tell is *where* an import sits: an
import of another app inside a function body is how a cycle used to be hidden, so none may
remain. An app's own modules may still be imported late (as Django's `AppConfig.ready` does),
but never one that imports the importing module back: that is a circle, hidden the same way.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "apps"


def app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "apps" else None


def imports_in_function_bodies(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `apps.*` import written inside a function of `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                found.append((inner.lineno, inner.module))
            elif isinstance(inner, ast.Import):
                found += [(inner.lineno, alias.name) for alias in inner.names]
    return sorted((line, module) for line, module in found if app_of(module))


def test_no_app_imports_another_app_inside_a_function():
    offenders = []
    for path in sorted(APPS.rglob("*.py")):
        own = path.relative_to(APPS).parts[0]
        for line, module in imports_in_function_bodies(path):
            if app_of(module) != own:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imported_modules(path: Path) -> set[str]:
    """Every `apps.*` module `path` imports, anywhere in it (`from m import name`: m, m.name)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {module for module in found if app_of(module)}


def test_no_module_imports_inside_a_function_one_that_imports_it_back():
    """A late import of an app's own module is allowed (Django's `AppConfig.ready`), but not to
    hide a circle: the module imported late must not import the one importing it."""
    circles = []
    for path in sorted(APPS.rglob("*.py")):
        for line, module in imports_in_function_bodies(path):
            target = ROOT.joinpath(*module.split(".")).with_suffix(".py")
            if target.exists() and module_of(path) in imported_modules(target):
                circles.append(f"{path.relative_to(ROOT)}:{line}: {module} imports it back")
    assert circles == []


def test_the_check_finds_an_import_inside_a_function(tmp_path):
    # The check itself: a late import of another app, nested in a method, is found.
    module = tmp_path / "late.py"
    module.write_text(
        "class A:\n"
        "    def f(self):\n"
        "        if True:\n"
        "            from apps.pools.services import ticket_queue\n"
        "        import apps.review.services\n"
    )
    assert imports_in_function_bodies(module) == [
        (4, "apps.pools.services"),
        (5, "apps.review.services"),
    ]


MODULE_MAX_LINES = 500


def test_no_app_module_is_over_500_lines():
    # Rooms a newcomer can read (issue 13): a module that outgrows this splits along its seams.
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "apps").rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MODULE_MAX_LINES
    }
    assert long == {}
