"""Python conventions (issue 16 item 6): every public class, function, method and property
has a docstring beyond pybind11's signature line; inspect.signature works on every public
constructor, function and method, with the bindings' parameter names and defaults; the stubs use Literal types for the string options."""
import ast
import inspect
import os
import re

import recalign
import recalign.hooks
import recalign.sklearn

MODULES = [(recalign, recalign.__all__), (recalign.hooks, recalign.hooks.__all__),
           (recalign.sklearn, recalign.sklearn.__all__)]


def prose(doc):
    """The docstring without pybind11's generated signature lines."""
    lines = [ln.strip() for ln in (doc or "").splitlines() if ln.strip()]
    return " ".join(ln for ln in lines if ln != "Overloaded function." and
                    not (ln.split("(")[0].lstrip("0123456789. ").isidentifier() and "->" in ln))


def public():
    for mod, names in MODULES:
        for name in names:
            yield name, getattr(mod, name)


def test_everything_public_is_documented():
    missing = []
    for name, obj in public():
        if not prose(obj.__doc__):
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        extension = obj.__module__ == "recalign._recalign"
        for attr, val in vars(obj).items():
            # Python classes document their constructor's parameters in the class docstring
            if (attr.startswith("_") and attr != "__init__") or (attr == "__init__" and not extension):
                continue
            if not prose(getattr(val, "__doc__", None)):
                missing.append(f"{name}.{attr}")
    assert not missing, missing


def test_constructor_signatures():
    for name, obj in public():
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        init = vars(obj).get("__init__")
        if init is None or "Initialize self" in (init.__doc__ or ""):
            continue  # results: made by the library, not constructed from Python
        sig = inspect.signature(obj)
        assert "self" not in sig.parameters, name
    sig = inspect.signature(recalign.MomentAccumulator)
    assert list(sig.parameters) == ["dim", "classes", "targets", "float32_kernels"]
    assert sig.parameters["classes"].default == 0 and sig.parameters["targets"].default is None
    mc = inspect.signature(recalign.MonteCarloNoise).parameters
    assert mc["draws"].kind is inspect.Parameter.KEYWORD_ONLY and mc["draws"].default is None  # the spec's, else 16
    assert list(inspect.signature(recalign.sklearn.StreamingPCA).parameters)[:3] == ["n_components", "method", "whiten"]


def callables():
    for name, obj in public():
        if not inspect.isclass(obj):
            yield name, obj
            continue
        for attr, val in vars(obj).items():
            if not attr.startswith("_") and not isinstance(val, property) and callable(getattr(obj, attr)):
                yield f"{name}.{attr}", getattr(obj, attr)


def test_every_public_callable_has_a_signature():
    failing, checked = [], 0
    for name, fn in callables():
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as e:
            failing.append(f"{name}: {e}")
            continue
        # pybind11's own line ("f(self: X, a: int, b: Tuple[int, int] = (0, 0)) -> T"): the names
        first = (fn.__doc__ or "").strip().split("\n")[0]
        if not first.startswith(fn.__name__ + "("):
            continue
        checked += 1
        names = [n for n in re.findall(r"(\w+): ", first[:first.rfind(") ->")]) if n != "self"]
        if [n for n in sig.parameters if n != "self"] != names:
            failing.append(f"{name}: {sig} against {first}")
    assert not failing, failing
    assert checked >= 50, checked  # the extension's functions and methods were all looked at
    curve = inspect.signature(recalign.alignment_curve).parameters
    assert list(curve) == ["statistics", "measure", "rel_tol"] and curve["measure"].default == "paper"
    assert inspect.signature(recalign.decode_image).parameters["crop"].default == (0, 0)
    update = inspect.signature(recalign.MomentAccumulator(2).update).parameters
    assert list(update) == ["x", "y", "first_row"] and update["first_row"].default == 0
    assert inspect.signature(recalign.MonteCarloNoise.update).parameters["first_row"].default is None
    assert list(inspect.signature(recalign.MomentAccumulator.from_bytes).parameters) == ["data"]


def test_stubs_use_literal_types():
    stubs = os.path.join(os.path.dirname(recalign.__file__), "_recalign.pyi")
    tree = ast.parse(open(stubs, encoding="utf-8").read())
    plain = []
    for node in ast.walk(tree):
        args = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
        for a in args:
            if a.arg in ("center", "measure", "part", "layout", "targets") and ast.unparse(a.annotation) == "str":
                plain.append(f"{node.name}({a.arg})")
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in ("center", "measure", "part", "layout", "status", "method") and \
                    ast.unparse(node.annotation) == "str":
                plain.append(node.target.id)
    assert not plain, plain
    assert "Center = Literal[" in open(stubs, encoding="utf-8").read()


def test_stubs_name_every_public_member_of_the_extension():
    """_recalign.pyi (what type checkers and editors read) lists every public function, constant,
    class and class member the extension has (a stub class's members include its stub bases')."""
    stubs = os.path.join(os.path.dirname(recalign.__file__), "_recalign.pyi")
    tree = ast.parse(open(stubs, encoding="utf-8").read())

    def names(body):
        out = set()
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                out.add(node.target.id)
            elif isinstance(node, ast.Assign):
                out.update(t.id for t in node.targets if isinstance(t, ast.Name))
        return out

    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def members(name):
        node = classes.get(name)
        if node is None:
            return set()
        out = names(node.body)
        for base in node.bases:
            if isinstance(base, ast.Name):
                out |= members(base.id)
        return out

    top = names(tree.body)
    ext = recalign._recalign
    missing = []
    for name in dir(ext):
        if name.startswith("_"):
            continue
        if name not in top:
            missing.append(name)
            continue
        obj = getattr(ext, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            have = members(name)
            missing += [f"{name}.{a}" for a in vars(obj) if not a.startswith("_") and a not in have]
    assert not missing, missing
