"""Shared command-line parsing: ``k=v`` by Hyper spec, points, run specs, objectives, limits, JSON.

Every command parses user values through this module, so the rules are the same everywhere:

- ``--set NAME=VALUE`` (repeatable): the value is read by the kind of the declared
  :class:`~gdlab.core.hyper.Hyper`: ``real`` (``0.01``, ``1e-3``), ``int`` (``100``), ``bool``
  (``true/false``, ``yes/no``, ``1/0``, ``on/off``), ``pair`` (``0.9,0.999`` or ``0.9/0.999``),
  ``choice`` (one of the listed words), integer lists (``30,60`` or ``30/60``); ``none`` unsets an
  optional value. Then the object's own validation checks ranges.
- points: ``X[,Y,...]``; a negative first coordinate needs ``=``: ``--start=-1.5,2``.
- run specs (``gdlab compare --optimizer``): ``[LABEL=]NAME[:k=v,k=v...][+SCHEDULE[:k=v,...]]``,
  pairs inside written with ``/`` (``adam:lr=0.1,betas=0.9/0.99``).

Mistakes raise :class:`~gdlab.cli.errors.UsageError` (or ``ValueError``) naming the option, which
``gdlab`` prints as one line with exit code 2. The limits are :data:`gdlab.core.limits.LIMITS`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab.cli.errors import usage
from gdlab.core.hyper import Hyper, suggest
from gdlab.core.limits import LIMITS

#: Most steps a command accepts (``--steps``).
MAX_STEPS = LIMITS.max_steps
#: Most runs × steps of one command.
MAX_WORK = LIMITS.max_work
#: Largest |LO| and |HI| of a range (``--xlim``): squares, distances and the divergence box
#: (1000·|x|) of points inside it stay far from overflowing a double.
MAX_RANGE = 1e100

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
_NONE = {"none", "null"}


# ------------------------------------------------------------------------------------------------
# values by Hyper spec
# ------------------------------------------------------------------------------------------------
def parse_number(text: str, option: str, integer: bool = False) -> float | int:
    """A finite number from ``text``; the error names ``option``."""
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        raise usage(f"{option}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise usage(f"{option}: {text!r} is not a finite number")
    if integer:
        if not value.is_integer():
            raise usage(f"{option}: {text!r} is not an integer")
        return int(value)
    return value


def parse_value(spec: Hyper, text: str, option: str) -> Any:
    """Read ``text`` as a value of the kind of ``spec`` (not range-checked; the owner validates)."""
    t = text.strip()
    label = f"{option} {spec.name}={text}"
    if t.lower() in _NONE and spec.optional:
        return None
    kind = spec.kind
    if kind == "bool":
        low = t.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise usage(f"{label}: expected true or false")
    if kind == "int":
        return parse_number(t, label, integer=True)
    if kind == "real":
        return parse_number(t, label)
    if kind == "pair":
        parts = [p for p in re.split(r"[,/]", t)]
        if len(parts) != spec.size:
            example = ",".join(str(v) for v in spec.default) if spec.size != 2 else "0.9,0.999 (or 0.9/0.999)"
            raise usage(f"{label}: expected {'two' if spec.size == 2 else spec.size} numbers like {example}")
        return tuple(None if i == 0 and spec.none_first and p.strip().lower() in _NONE else parse_number(p, label)
                     for i, p in enumerate(parts))
    if kind == "function":
        return parse_function(t, label)
    if kind == "schedules":
        return parse_schedules(t, label)
    if kind == "choice":
        for choice in spec.choices:
            if str(choice) == t:
                return choice
        raise usage(f"{label}: not allowed{suggest(t, [str(c) for c in spec.choices])}; "
                    f"expected one of {', '.join(str(c) for c in spec.choices)}")
    # integer lists (milestones) and any other kind: a list of integers
    parts = [p for p in re.split(r"[,/]", t) if p.strip()]
    if not parts:
        raise usage(f"{label}: expected a list of integers like 30,60,90")
    return [parse_number(p, label, integer=True) for p in parts]


def parse_function(text: str, label: str) -> Any:
    """A formula in ``t`` (``0.95**t``) as a function of the step, read by the safe expression parser."""
    from gdlab.landscapes.formula import ExpressionError, parse_formula

    try:
        return parse_formula(text)
    except ExpressionError as err:
        raise usage(f"{label}: {err}") from None


_PART = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def parse_schedules(text: str, label: str) -> list[Any]:
    """``linear(start_factor=0.1;total_iters=10)|cosine(T_max=90)``: schedules separated by ``|``,
    each a name with its assignments in parentheses separated by ``;`` (sequential's and chained's
    ``schedulers``)."""
    from gdlab.core.schedules import make_schedule, schedule_class

    out = []
    for part in text.split("|"):
        match = _PART.match(part)
        if match is None:
            raise usage(f"{label}: expected schedules like linear(total_iters=10)|cosine(T_max=90), got {part!r}")
        name, inner = match.group(1), match.group(2) or ""
        try:
            cls = schedule_class(name)
        except ValueError as err:
            raise usage(f"{label}: {err}") from None
        items = [i.strip() for i in inner.split(";") if i.strip()]
        hp = parse_assignments(items, tuple(cls.hyperparams), name, label)
        try:
            out.append(make_schedule(name, **hp))
        except (TypeError, ValueError) as err:
            raise usage(f"{label}: {err}") from None
    return out


def parse_assignments(
    items: Iterable[str] | None, specs: Sequence[Hyper], owner: str, option: str = "--set",
    reserved: Sequence[str] = (),
) -> dict[str, Any]:
    """``["k=v", ...]`` → ``{k: value}`` read by the spec named k.

    Unknown names raise with a close-match suggestion and the valid names; ``reserved`` names are
    accepted as numbers-or-words and returned as raw strings (the caller interprets them).
    """
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise usage(f"{option} {item!r}: expected NAME=VALUE")
        key, _, text = item.partition("=")
        key = key.strip()
        if key in reserved:
            out[key] = text.strip()
            continue
        if key not in by_name:
            valid = list(by_name) + list(reserved)
            raise usage(f"{option}: unknown parameter {key!r} for {owner}{suggest(key, valid)}; "
                        f"valid: {', '.join(valid) or '(none)'}")
        if key in out:
            raise usage(f"{option}: {key} given twice")
        out[key] = parse_value(by_name[key], text, option)
    return out


def parse_point(text: str, option: str, dim: int | None = None) -> np.ndarray:
    """``"1.5,-2"`` → ``array([1.5, -2.0])``; checks the number of coordinates against ``dim``."""
    parts = [p for p in text.strip().split(",")]
    if not text.strip() or any(not p.strip() for p in parts):
        raise usage(f"{option}: {text!r} is not a point; expected numbers separated by commas, e.g. 1.5,-2")
    values = [parse_number(p, f"{option} {text!r}") for p in parts]
    if dim is not None and len(values) != dim:
        raise usage(f"{option}: {text!r} has {len(values)} coordinate(s), but the objective has {dim}")
    return np.array(values, dtype=np.float64)


def parse_range(text: str, option: str, points: int | None = None) -> tuple[float, float]:
    """``"LO,HI"`` with LO < HI, both within ±:data:`MAX_RANGE`; with ``points``, also wide enough
    for that many distinct grid points from LO to HI."""
    lo, hi = parse_point(text, option, 2)
    if not lo < hi:
        raise usage(f"{option}: expected LO,HI with LO < HI, got {text!r}")
    if max(abs(lo), abs(hi)) > MAX_RANGE:
        raise usage(f"{option}: the range {text!r} is too wide; LO and HI must be between {-MAX_RANGE:g} and "
                    f"{MAX_RANGE:g}")
    if points is not None and not np.all(np.diff(np.linspace(lo, hi, points)) > 0):
        raise usage(f"{option}: the range {text!r} is too narrow for {points} distinct grid points")
    return float(lo), float(hi)


def parse_list(text: str, option: str) -> list[float]:
    """``"0.01,0.05,0.1"`` → floats."""
    return [float(v) for v in parse_point(text, option)]


# ------------------------------------------------------------------------------------------------
# limits
# ------------------------------------------------------------------------------------------------
def parse_noise(text: str | None, option: str = "--noise") -> Any:
    """The :class:`~gdlab.core.noise.Noise` of ``SIGMA[,B[,SEED]]`` or ``sigma=S,batch=B,seed=N`` (None: no noise)."""
    if text is None:
        return None
    from gdlab.core.noise import Noise

    try:
        return Noise.parse(text)
    except (TypeError, ValueError) as exc:
        raise usage(f"{option}: {exc}") from None


def add_noise_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noise", metavar="SIGMA[,B[,SEED]]",
                   help="stochastic gradients: add (SIGMA/sqrt(B))*N(0, I) noise to every gradient, drawn from "
                        "SEED (default B=1, SEED=0); also sigma=S,batch=B,seed=N")


def check_steps(steps: int, option: str = "--steps", low: int = 1) -> int:
    if not low <= steps <= MAX_STEPS:
        raise usage(f"{option} must be between {low} and {MAX_STEPS}, got {steps}")
    return steps


def check_tol(tol: float | None, option: str = "--tol") -> float | None:
    if tol is None:
        return None
    if not (math.isfinite(tol) and tol >= 0):
        raise usage(f"{option} must be a finite number >= 0, got {tol:g}")
    return tol


def check_positive(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise usage(f"{option} must be a finite number > 0, got {value:g}")
    return value


def check_work(runs: int, steps: int) -> None:
    if runs * steps > MAX_WORK:
        raise usage(f"{runs} runs x {steps} steps is more than the limit of {MAX_WORK:,} run-steps; "
                    "use fewer runs or steps")


def finite_float(option: str) -> Any:
    """An argparse ``type=`` for finite floats whose error names the option."""
    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        return v

    convert.__name__ = option
    return convert


# ------------------------------------------------------------------------------------------------
# optimizers and schedules
# ------------------------------------------------------------------------------------------------
def optimizer_specs(name: str, raw: dict[str, str] | None = None) -> tuple[Hyper, ...]:
    """The Hyper specs a user may set for optimizer ``name`` (SAM: its own, ``base`` and the base's)."""
    from gdlab.core.optimizers import OPTIMIZERS, optimizer_class
    from gdlab.core.optimizers.sam import can_wrap

    cls = optimizer_class(name)
    specs = tuple(cls.hyperparams)
    if name == "sam":
        base = (raw or {}).get("base", "sgd")
        base_specs = tuple(s for s in optimizer_class(base).hyperparams if s.name not in {s.name for s in specs})
        specs = (Hyper("base", "sgd", kind="choice", choices=tuple(n for n, c in OPTIMIZERS.items() if can_wrap(c)),
                       doc="the optimizer SAM wraps"),) + specs + base_specs
    return specs


def _raw_pairs(items: Iterable[str] | None) -> dict[str, str]:
    return {i.partition("=")[0].strip(): i.partition("=")[2].strip() for i in items or () if "=" in i}


def build_optimizer(name: str, sets: Iterable[str] | None, option: str = "--set") -> Any:
    """Optimizer ``name`` with ``--set k=v`` values parsed by its specs and validated."""
    from gdlab.core.optimizers import make_optimizer, optimizer_class

    items = list(sets or ())
    if ":" in name:  # torch:pkg.Class or pkg.module:RuleClass
        from gdlab.foreign import ForeignError, make_foreign, parse_foreign_sets

        try:
            hp = parse_foreign_sets(items, option)
            opt = make_foreign(name, **hp)
        except ForeignError as exc:
            raise usage(str(exc)) from None
        if not getattr(type(opt), "batched", True):
            print(f"note: {name} takes one run at a time; batched runs are looped", file=sys.stderr)
        return opt, hp
    optimizer_class(name)  # unknown names: error with suggestion
    hp = parse_assignments(items, optimizer_specs(name, _raw_pairs(items)), name, option)
    return make_optimizer(name, **hp), hp


def schedule_specs(name: str) -> tuple[Hyper, ...]:
    from gdlab.core.schedules import schedule_class

    return tuple(schedule_class(name).hyperparams)


def build_schedule(name: str | None, sets: Iterable[str] | None, option: str = "--schedule-set") -> Any:
    """Schedule ``name`` (or None) with ``--schedule-set k=v`` values."""
    if name is None:
        if sets:
            raise usage(f"{option} needs --schedule NAME")
        return None
    from gdlab.core.schedules import make_schedule

    hp = parse_assignments(sets, schedule_specs(name), name, option)
    return make_schedule(name, **hp)


@dataclass
class ParsedSpec:
    """A parsed ``--optimizer`` spec of ``gdlab compare``."""

    label: str
    optimizer: str
    hyperparams: dict[str, Any]
    schedule: str | None
    schedule_params: dict[str, Any]
    training: dict[str, str]  # reserved keys for learning problems (batch_size, accumulate)
    text: str


#: Per-spec keys of ``gdlab compare --problem`` that are training settings, not hyperparameters.
TRAINING_KEYS = ("batch_size", "accumulate")


def split_spec_items(text: str) -> list[str]:
    """``"lr=0.1,betas=0.9/0.99"`` → ``["lr=0.1", "betas=0.9/0.99"]`` (commas separate assignments)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_run_spec(text: str, option: str = "--optimizer", training: bool = False) -> ParsedSpec:
    """Parse ``[LABEL=]NAME[:k=v,...][+SCHEDULE[:k=v,...]]`` (see the module docstring)."""
    from gdlab.core.optimizers import optimizer_class
    from gdlab.core.schedules import schedule_class

    raw = text.strip()
    if not raw:
        raise usage(f"{option}: empty optimizer spec")
    parts = re.split(r"\+(?=[A-Za-z_])", raw)
    if len(parts) > 2:
        raise usage(f"{option} {text!r}: at most one +SCHEDULE per spec")
    head = parts[0]
    label = ""
    before_colon = head.split(":", 1)[0]
    if "=" in before_colon:
        label, _, head = head.partition("=")
        label = label.strip()
        if not label:
            raise usage(f"{option} {text!r}: empty label before '='")
    name, _, assigns = head.partition(":")
    name = name.strip()
    second = assigns.split(":", 1)[0]
    reserved = TRAINING_KEYS if training else ()
    if assigns and "=" not in second and "=" not in name:  # a foreign name: torch:pkg.Class[:k=v,...]
        from gdlab.foreign import ForeignError, make_foreign, parse_foreign_sets

        name = f"{name}:{second.strip()}"
        items = split_spec_items(assigns[len(second) + 1:])
        try:
            hp = parse_foreign_sets([i for i in items if i.partition("=")[0].strip() not in reserved],
                                    f"{option} {text!r}")
            make_foreign(name, **hp)
        except ForeignError as err:
            raise usage(f"{option} {text!r}: {err}") from None
        hp.update({k: v for k, v in _raw_pairs(items).items() if k in reserved})
    else:
        try:
            optimizer_class(name)
        except ValueError as err:
            raise usage(f"{option} {text!r}: {err}") from None
        items = split_spec_items(assigns)
        hp = parse_assignments(items, optimizer_specs(name, _raw_pairs(items)), name, f"{option} {text!r}",
                               reserved=reserved)
    train_kw = {k: hp.pop(k) for k in list(hp) if k in reserved}
    sched, sparams = None, {}
    if len(parts) == 2:
        sname, _, sassign = parts[1].partition(":")
        sname = sname.strip()
        try:
            schedule_class(sname)
        except ValueError as err:
            raise usage(f"{option} {text!r}: {err}") from None
        sched = sname
        sparams = parse_assignments(split_spec_items(sassign), schedule_specs(sname), sname, f"{option} {text!r}")
    return ParsedSpec(label, name, hp, sched, sparams, train_kw, raw)


# ------------------------------------------------------------------------------------------------
# objectives: --landscape / --expr
# ------------------------------------------------------------------------------------------------
def allow_negative_values(p: argparse.ArgumentParser) -> None:
    """Let option values start with a minus sign: ``--start -1.5,2`` as well as ``--start=-1.5,2``.

    argparse treats an argument starting with ``-`` as an option unless it looks like a negative
    number (its private ``_negative_number_matcher``); this widens that pattern to negative
    numbers followed by more comma-separated values. None of our options look like numbers.
    """
    p._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,.*)?$")  # type: ignore[attr-defined]


def add_objective_arguments(p: argparse.ArgumentParser, problem: bool = False) -> None:
    """``--landscape NAME [--landscape-set k=v ...] | --expr EXPR`` (and ``--problem`` if asked)."""
    allow_negative_values(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--landscape", metavar="NAME", help="a built-in landscape (see `gdlab list landscapes`)")
    group.add_argument("--expr", metavar="EXPR",
                       help='a custom function of x (and y), e.g. "x^4 - 3*x^2 + 2" or "x^2 + 10*y^2"; '
                            "a formula starting with '-' is written --expr=-x^2")
    if problem:
        group.add_argument("--problem", metavar="NAME", help="a learning problem (see `gdlab list problems`)")
        p.add_argument("--problem-set", action="append", metavar="K=V", default=[],
                       help="a parameter of the problem (repeatable)")
    p.add_argument("--landscape-set", action="append", metavar="K=V", default=[],
                   help="a parameter of the landscape, e.g. --landscape-set b=10 (repeatable)")


def resolve_objective(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The objective chosen by ``--landscape``/``--expr`` and a JSON description of it."""
    from gdlab import landscapes

    if getattr(args, "landscape", None) is not None:
        name = args.landscape
        registry = landscapes.LANDSCAPES
        if name not in registry:
            raise usage(f"unknown landscape {name!r}{suggest(name, registry)}; valid: {', '.join(registry)}")
        specs = tuple(registry[name].hyperparams)
        params = parse_assignments(args.landscape_set, specs, name, "--landscape-set")
        obj = landscapes.make_landscape(name, **params)
        info = {"kind": "landscape", "name": name, "params": _plain(obj.get_params())}
        return obj, info
    if args.landscape_set:
        raise usage("--landscape-set needs --landscape NAME")
    try:
        obj = landscapes.parse_expression(args.expr)
    except landscapes.ExpressionError as err:
        raise usage(f"--expr: {err}") from None
    return obj, {"kind": "expression", "expr": args.expr, "name": getattr(obj, "name", "expression")}


def objective_title(info: dict[str, Any]) -> str:
    if info["kind"] == "expression":
        return f"f = {info['expr']}"
    params = ", ".join(f"{k}={v}" for k, v in info.get("params", {}).items())
    return f"landscape {info['name']}" + (f" ({params})" if params else "")


def start_point(args: argparse.Namespace, objective: Any, option: str = "--start") -> np.ndarray:
    """``--start`` or the landscape's default start; checks the dimension and that f is finite there."""
    dim = getattr(objective, "dim", None)
    text = getattr(args, option.lstrip("-").replace("-", "_"), None)
    if text is None:
        default = getattr(objective, "default_start", None)
        if default is None:
            raise usage(f"{option} is required for this objective")
        x = np.asarray(default, dtype=np.float64)
    else:
        x = parse_point(text, option, dim)
    with np.errstate(all="ignore"):
        f, g = objective.value_and_grad(x)
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(g))):
        raise usage(f"{option}: the objective is not finite at {fmt_point(x)}")
    return x


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------
def emit_json(obj: Any) -> None:
    """Print one JSON object (strict: NaN/inf are never written)."""
    from gdlab.engine.result import jsonable

    sys.stdout.write(json.dumps(jsonable(obj), allow_nan=False) + "\n")


def fmt_num(v: Any, digits: int = 6) -> str:
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}"


def fmt_point(x: Any, digits: int = 6) -> str:
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    return "(" + ", ".join(fmt_num(v, digits) for v in arr) + ")"


def fmt_hyper(hp: dict[str, Any]) -> str:
    """``name=value`` pairs for a label, values as the engine's run labels write them."""
    from gdlab.engine.result import format_hyperparam

    return " ".join(f"{k}={format_hyperparam(v)}" for k, v in hp.items())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table; ``align`` has one ``l``/``r`` per column (default: first left, rest right)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(values: Sequence[str]) -> str:
        out = [v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, align, strict=True)]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple) else v)
            for k, v in params.items()}
