"""inspect.signature for the extension's classes and functions: pybind11 writes each
signature as the first line of the docstring ("__init__(self: X, dim: int, ...) -> None") but
gives the objects no __text_signature__. The classes get a __signature__ parsed from that
line (their constructors' parameters, annotations as text, literal defaults evaluated)."""
import ast
import inspect


class _Default:
    """A default value shown by its pybind11 text (not a Python literal)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def _split(params):
    """Top-level comma split (brackets and quotes respected)."""
    out, depth, quote, cur = [], 0, None, ""
    for ch in params:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse(line):
    """An inspect.Signature (without self) from a pybind11 signature line, or None."""
    start, end = line.find("("), line.rfind(")")
    if start < 0 or end < start:
        return None
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = []
    for p in _split(line[start + 1:end]):
        if p == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        name, _, rest = p.partition(":")
        annotation, _, default = rest.partition("=")
        name = name.strip()
        if name == "self" or not name.isidentifier():
            continue
        value = inspect.Parameter.empty
        if default.strip():
            try:
                value = ast.literal_eval(default.strip())
            except (ValueError, SyntaxError):
                value = _Default(default.strip())
        params.append(inspect.Parameter(name, kind, default=value,
                                        annotation=annotation.strip() or inspect.Parameter.empty))
    return inspect.Signature(params)


def install(namespace):
    """Sets __signature__ on every extension class in `namespace` with a single constructor."""
    for obj in list(namespace.values()):
        init = getattr(obj, "__init__", None) if isinstance(obj, type) else None
        doc = getattr(init, "__doc__", None) or ""
        first = doc.strip().splitlines()[0] if doc.strip() else ""
        if not first.startswith("__init__(self"):
            continue  # no constructor from Python, or overloads
        sig = parse(first)
        if sig is not None:
            try:
                obj.__signature__ = sig
            except (AttributeError, TypeError):  # pragma: no cover - immutable type
                pass
