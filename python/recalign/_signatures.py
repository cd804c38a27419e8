"""inspect.signature for the extension's classes, functions and methods: pybind11 writes each
signature as the first line of the docstring ("update(self: X, x: handle, first_row: int = 0)
-> None") but gives the objects no __text_signature__, and its function objects take no
attributes. One mechanism: that line is parsed (names and kinds as the bindings' py::arg
define them, annotations as text, literal defaults evaluated) into a __signature__ set on each
class (its constructor's parameters) and on a thin Python forwarder that replaces each public
function and method (the call itself is the extension's, unchanged). Overloaded callables
(several signature lines) keep pybind11's objects."""
import ast
import functools
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


def parse(line, keep_self=False):
    """An inspect.Signature from a pybind11 signature line (self dropped unless keep_self), or None."""
    start = line.find("(")
    end = line.rfind(") ->") if ") ->" in line else line.rfind(")")
    if start < 0 or end < start:
        return None
    P = inspect.Parameter
    kind = P.POSITIONAL_OR_KEYWORD
    params = []
    for p in _split(line[start + 1:end]):
        if p == "*":
            kind = P.KEYWORD_ONLY
            continue
        if p == "/":  # py::pos_only(): everything before is positional-only
            params = [q.replace(kind=P.POSITIONAL_ONLY) for q in params]
            continue
        name, _, rest = p.partition(":")
        annotation, _, default = rest.partition("=")
        name = name.strip()
        if name.startswith("**") or name.startswith("*"):
            star = P.VAR_KEYWORD if name.startswith("**") else P.VAR_POSITIONAL
            params.append(P(name.lstrip("*"), star))
            kind = P.KEYWORD_ONLY
            continue
        if (name == "self" and not keep_self) or not name.isidentifier():
            continue
        value = inspect.Parameter.empty
        if default.strip():
            try:
                value = ast.literal_eval(default.strip())
            except (ValueError, SyntaxError):
                value = _Default(default.strip())
        params.append(inspect.Parameter(name, kind, default=value,
                                        annotation=annotation.strip() or inspect.Parameter.empty))
    returns = line[end + 4:].strip() if line.startswith(") ->", end) else ""
    return inspect.Signature(params, return_annotation=returns or inspect.Signature.empty)


def _line(fn):
    """pybind11's signature line of `fn`, or "" (no docstring, or overloads)."""
    doc = (getattr(fn, "__doc__", None) or "").strip()
    first = doc.splitlines()[0] if doc else ""
    name = getattr(fn, "__name__", "")
    return first if name and first.startswith(name + "(") else ""


def _forwarder(fn, sig):
    """A Python function calling `fn` unchanged, with `sig` as its signature."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*args, **kwargs)
    call.__signature__ = sig
    return call


def _methods(cls):
    """Every public pybind11 method and static method of `cls` gets a forwarder."""
    for attr, val in list(vars(cls).items()):
        if attr.startswith("_"):
            continue
        static = isinstance(val, staticmethod)
        fn = val.__func__ if static or type(val).__name__ == "instancemethod" else val
        if not inspect.isbuiltin(fn) or not _line(fn):
            continue
        sig = parse(_line(fn), keep_self=not static)
        if sig is not None:
            wrapped = _forwarder(fn, sig)
            wrapped.__qualname__ = f"{cls.__name__}.{attr}"
            setattr(cls, attr, staticmethod(wrapped) if static else wrapped)


def install(namespace):
    """Sets __signature__ on every extension class in `namespace` with a single constructor,
    replaces its public functions and its classes' public methods by forwarders with one."""
    for key, obj in list(namespace.items()):
        if key.startswith("_"):
            continue
        if inspect.isbuiltin(obj) and _line(obj):
            sig = parse(_line(obj))
            if sig is not None:
                namespace[key] = _forwarder(obj, sig)
                namespace[key].__qualname__ = key  # pybind11's is "PyCapsule.<name>" (pickle)
            continue
        if not isinstance(obj, type):
            continue
        _methods(obj)
        init = getattr(obj, "__init__", None)
        doc = getattr(init, "__doc__", None) or ""
        first = doc.strip().splitlines()[0] if doc.strip() else ""
        if not first.startswith("__init__(self"):
            continue  # no constructor from Python, or overloads
        sig = parse(first)
        if sig is not None:
            sig = sig.replace(return_annotation=inspect.Signature.empty)
            try:
                obj.__signature__ = sig
            except (AttributeError, TypeError):  # pragma: no cover - immutable type
                pass
