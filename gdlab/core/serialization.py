"""Save and load an optimizer with its state: one ``.npz`` archive, no pickle.

The archive holds the state's arrays (``a0``, ``a1``, ...) and one JSON document, ``__meta__``,
stored as a unicode string array::

    {"format": "gdlab-optimizer-state", "format_version": 1, "gdlab_version": "0.1.0",
     "optimizer": "adam", "step": 10, "hyperparams": {...}, "state": {...}}

Values are encoded recursively, keeping their Python/NumPy type so that a loaded run continues bit
for bit: dicts (string keys) stay JSON objects (nested states such as SAM's base state);
``bool``, ``int``, ``float`` (exact by JSON's shortest round-trip form, also ``NaN``/``±Infinity``),
``str`` and ``None`` stay JSON values; lists stay lists; and tagged objects mark the rest:
``{"__array__": "a3"}`` (an array of the archive, including array-valued hyperparameters),
``{"__scalar__": "a4"}`` (a NumPy scalar, stored as a 0-d array) and ``{"__tuple__": [...]}``.
Keys starting with ``__`` are reserved for these tags. The optimizer is rebuilt with
:func:`gdlab.core.optimizers.make_optimizer` from its name and hyperparameters, so its validation
runs again on load.

**A file is not trusted.** :func:`load_state` reads the archive's directory and the header of every
array (dtype and shape, a few bytes each) first, and refuses before reading any array data: an
entry the metadata does not use (or uses twice), an object (pickled) or string array, arrays
declaring more than :attr:`~gdlab.core.limits.Limits.max_state_bytes` together, metadata longer or
nested deeper than its limits. It reads the hyperparameters' arrays and rebuilds the optimizer, then
checks the state against the optimizer's :meth:`state_spec` (:mod:`gdlab.core.statespec`): every
entry present and none more, counts that are integers ≥ 0, floats, dtypes, and shapes that agree
with each other (buffers share the params' shape, per-run arrays its batch shape, L-BFGS's history
has ``history_size`` rows). Only then are the state's arrays read. Every problem is one
``ValueError`` naming it. :func:`save_state` runs the same check, so it never writes a file that
:func:`load_state` would refuse.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._version import __version__
from gdlab.core.atomic import atomic_path
from gdlab.core.limits import LIMITS
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.statespec import Array, Count, Each, Maybe, Pattern, Real, RunScalar, ShapeBinding, StateSpec
from gdlab.core.transforms import Chain

FORMAT = "gdlab-optimizer-state"
FORMAT_VERSION = 1
_META = "__meta__"
_TAGS = ("__array__", "__scalar__", "__tuple__")
#: Array dtypes a hyperparameter may have: booleans, integers, floats.
_NUMERIC = "biuf"
#: Errors of reading a damaged archive member.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def save_state(path: str | os.PathLike[str], optimizer: Optimizer, state: State) -> None:
    """Write ``optimizer`` (name and hyperparameters) and ``state`` to the ``.npz`` file ``path``.

    The file is written whole or not at all (:func:`gdlab.core.atomic.atomic_path`: a temporary
    file beside it, then one rename; the usual permissions, 0666 less the umask). Raises
    ``TypeError`` for values that cannot be stored without pickle (naming where they are),
    ``ValueError`` for a state that does not match the optimizer's :meth:`state_spec`, and
    :class:`~gdlab.core.atomic.WriteError` (an ``OSError`` naming ``path``) when the file cannot be
    written: a missing folder, a full disk, or a symbolic link, folder or device node at ``path``.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"save_state: optimizer must be a gdlab Optimizer, got {type(optimizer).__name__}")
    if not isinstance(state, dict) or "step" not in state:
        raise TypeError("save_state: state must be an optimizer state dict (with a 'step' entry)")
    arrays: dict[str, np.ndarray] = {}
    encoded = _encode(state, arrays, "state")
    hyperparams = _encode(optimizer.get_params(), arrays, "hyperparams")
    spec = _spec(optimizer)
    try:
        layout = _Layout({key: _Header(key, value.dtype, value.shape) for key, value in arrays.items()})
        layout.check(spec, encoded)
        layout.check_counts(arrays)
    except ValueError as err:
        raise ValueError(f"save_state: the state does not fit {optimizer.name}'s: {err}") from None
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gdlab_version": __version__,
        "optimizer": optimizer.name,
        "step": int(state["step"]),
        "hyperparams": hyperparams,
        "state": encoded,
    }
    blocks = getattr(optimizer, "layout", None)  # a matrix optimizer's blocks (Adafactor, Muon)
    if blocks is not None:
        meta["layout"] = [[name, list(shape)] for name, shape in blocks]
    arrays[_META] = np.array(json.dumps(meta, allow_nan=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_state(path: str | os.PathLike[str]) -> tuple[Optimizer, State]:
    """Read a file written by :func:`save_state`: ``(optimizer, state)``.

    Raises ``ValueError`` naming the problem for a file that is not such an archive, is corrupt,
    holds pickled objects or anything the optimizer's state does not have, was written by another
    format version or names an unknown optimizer (see the module docstring for what is checked,
    and in which order). ``FileNotFoundError``, ``PermissionError`` and ``IsADirectoryError`` pass
    through.
    """
    where = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{where}: not a gdlab state file (cannot read it as an .npz archive: {err})") from None
    with archive:
        reader = _Reader(archive, where)
        return reader.load()


# -- loading ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Header:
    """What an archive entry declares: its dtype and shape (its data is not read)."""

    key: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    member: zipfile.ZipInfo | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class _Reader:
    """One :func:`load_state` call: headers, then metadata, then checks, then the arrays."""

    def __init__(self, archive: zipfile.ZipFile, where: str) -> None:
        self.archive = archive
        self.where = where

    def fail(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: corrupt gdlab state file: {problem}")

    def load(self) -> tuple[Optimizer, State]:
        from gdlab.core.optimizers import make_optimizer, optimizer_class

        headers = self.headers()
        meta = self.meta(headers.pop(_META, None))
        name = meta.get("optimizer")
        if not isinstance(name, str):
            raise self.fail("the optimizer name is missing")
        if name != Chain.name:
            try:
                optimizer_class(name)
            except ValueError as err:
                raise ValueError(f"{self.where}: {err}") from None
        hyper_json, state_json = meta.get("hyperparams"), meta.get("state")
        if not isinstance(hyper_json, dict) or not isinstance(state_json, dict):
            raise self.fail("hyperparams or state missing")
        hyper_refs = self.references(hyper_json, state_json, headers)
        for key in hyper_refs:
            if headers[key].dtype.kind not in _NUMERIC:
                raise self.fail(f"entry {key!r} of the hyperparameters has dtype {headers[key].dtype}, not a number")
        arrays = {key: self.array(headers[key]) for key in hyper_refs}
        hyper = _decode(hyper_json, arrays, self.where)
        try:
            optimizer = Chain.from_params(hyper) if name == Chain.name else make_optimizer(name, **hyper)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{self.where}: the stored hyperparameters of {name!r} are not valid: {err}") from None
        if "layout" in meta:
            try:
                optimizer = optimizer.with_layout(meta["layout"])  # type: ignore[attr-defined]
            except (AttributeError, TypeError, ValueError) as err:
                raise self.fail(f"the stored layout of {name!r} is not valid: {err}") from None
        layout = _Layout(headers)
        try:
            layout.check(_spec(optimizer), state_json)
        except ValueError as err:
            raise self.fail(str(err)) from None
        arrays.update({key: self.array(headers[key]) for key in headers if key not in arrays})
        try:
            layout.check_counts(arrays)
        except ValueError as err:
            raise self.fail(str(err)) from None
        return optimizer, _decode(state_json, arrays, self.where)

    def headers(self) -> dict[str, _Header]:
        """Every entry's dtype and shape (only the ``.npy`` headers are read), bytes within the limit."""
        headers: dict[str, _Header] = {}
        for info in self.archive.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{self.where}: not a gdlab state file (unexpected entry {info.filename!r})")
            key = info.filename[: -len(".npy")]
            if key in headers:
                raise self.fail(f"entry {key!r} appears twice")
            headers[key] = self.header(key, info)
        total = sum(h.nbytes for key, h in headers.items() if key != _META)  # the metadata has its own limit
        if total > LIMITS.max_state_bytes:
            raise ValueError(f"{self.where}: refused: its arrays declare {total:,} bytes, more than the limit of "
                             f"{LIMITS.max_state_bytes:,}")
        return headers

    def header(self, key: str, info: zipfile.ZipInfo) -> _Header:
        """The header of one ``.npy`` member: dtype and shape, checked against the member's size."""
        try:
            with self.archive.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
                data_at = handle.tell()
        except _READ_ERRORS as err:
            raise self.fail(f"entry {key!r} is unreadable ({err})") from None
        if dtype.hasobject:
            raise ValueError(f"{self.where}: refused: entry {key!r} holds pickled Python objects "
                             "(gdlab state files never do)")
        if any(size < 0 for size in shape):
            raise self.fail(f"entry {key!r} declares the shape {shape}")
        header = _Header(key, dtype, tuple(shape), info)
        if info.file_size != data_at + header.nbytes:
            raise self.fail(f"entry {key!r} declares {header.nbytes:,} bytes of data but holds "
                            f"{info.file_size - data_at:,}")
        return header

    def meta(self, header: _Header | None) -> dict[str, Any]:
        """The JSON metadata, within its length and depth limits, of this format and version."""
        if header is None:
            raise ValueError(f"{self.where}: not a gdlab state file (no {_META!r} entry)")
        if header.dtype.kind != "U" or header.shape != ():
            raise self.fail(f"{_META!r} is not a JSON string")
        chars = header.dtype.itemsize // 4
        if chars > LIMITS.max_state_meta_chars:
            raise ValueError(f"{self.where}: refused: its metadata has {chars:,} characters, more than the limit "
                             f"of {LIMITS.max_state_meta_chars:,}")
        try:
            meta = json.loads(str(self.array(header)))
        except RecursionError:
            raise self.fail(f"its metadata is nested deeper than {LIMITS.max_state_depth} levels") from None
        except ValueError as err:
            raise self.fail(f"its metadata is not valid JSON ({err})") from None
        if _depth_exceeds(meta, LIMITS.max_state_depth):
            raise self.fail(f"its metadata is nested deeper than {LIMITS.max_state_depth} levels")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{self.where}: not a gdlab state file (format is not {FORMAT!r})")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{self.where}: unsupported gdlab state format version {version!r} (written by gdlab "
                f"{meta.get('gdlab_version', '?')}); this gdlab {__version__} reads version {FORMAT_VERSION}"
            )
        return meta

    def references(self, hyper: Any, state: Any, headers: Mapping[str, _Header]) -> list[str]:
        """Check that the metadata uses every entry exactly once; the entries the hyperparameters use."""
        used: set[str] = set()
        hyper_refs: list[str] = []
        for part, value in (("hyperparams", hyper), ("state", state)):
            for ref in _references(value, self.where):
                if ref not in headers:
                    raise self.fail(f"the array {ref!r} is missing")
                if ref in used:
                    raise self.fail(f"the array {ref!r} is used twice")
                used.add(ref)
                if part == "hyperparams":
                    hyper_refs.append(ref)
        unused = sorted(set(headers) - used)
        if unused:
            raise ValueError(f"{self.where}: refused: entry {unused[0]!r} is not part of the optimizer's "
                             "hyperparameters or state")
        return hyper_refs

    def array(self, header: _Header) -> np.ndarray:
        """The data of one entry (its header was checked)."""
        try:
            with self.archive.open(header.member) as handle:  # type: ignore[arg-type]
                return np.lib.format.read_array(handle, allow_pickle=False)
        except MemoryError:
            raise ValueError(f"{self.where}: entry {header.key!r} needs {header.nbytes:,} bytes, more memory than "
                             "is available") from None
        except _READ_ERRORS as err:
            raise self.fail(f"entry {header.key!r} is unreadable ({err})") from None


class _Layout:
    """The JSON form of a state (values and tagged references to entries) checked against a spec.

    ``headers`` gives each entry's dtype and shape; shapes are matched in one :class:`ShapeBinding`
    after the walk (buffers first, then the carries that broadcast against their batch shape).
    Counts stored as NumPy scalars are checked by :meth:`check_counts` once their values are read.
    """

    def __init__(self, headers: Mapping[str, _Header]) -> None:
        self.headers = headers
        self.shaped: list[tuple[str, Pattern, _Header]] = []
        self.carried: list[tuple[str, _Header]] = []
        self.counts: list[tuple[str, Count, str]] = []

    def check(self, spec: StateSpec, value: Any) -> None:
        self.entry(spec, value, "state")
        binding = ShapeBinding()
        for where, pattern, header in self.shaped:
            problem = binding.match(pattern, header.shape, where)
            if problem is not None:
                raise ValueError(f"{where} {problem}")
        for where, header in self.carried:
            problem = binding.broadcasts(header.shape)
            if problem is not None:
                raise ValueError(f"{where} {problem}")

    def check_counts(self, arrays: Mapping[str, np.ndarray]) -> None:
        for where, spec, ref in self.counts:
            _check_count(spec, int(arrays[ref][()]), where)

    def entry(self, spec: Any, value: Any, where: str) -> None:
        if isinstance(spec, StateSpec):
            self.state(spec, value, where)
        elif isinstance(spec, Each):
            if not isinstance(value, list) or len(value) != len(spec.items):
                raise ValueError(f"{where} is not a list of {len(spec.items)} state(s)")
            for i, (item_spec, item) in enumerate(zip(spec.items, value, strict=True)):
                self.state(item_spec, item, f"{where}[{i}]")
        elif isinstance(spec, Maybe):
            if value is not None:
                self.entry(spec.entry, value, where)
        elif isinstance(spec, Count):
            self.count(spec, value, where)
        elif isinstance(spec, Real):
            self.real(value, where)
        elif isinstance(spec, RunScalar):
            self.run_scalar(value, where)
        elif isinstance(spec, Array):
            header = self.tagged(value, "__array__", where, "an array")
            self.dtype(header, spec.kinds, where)
            self.shaped.append((where, spec.shape, header))
        else:
            raise TypeError(f"{where}: unknown state spec {spec!r}")

    def state(self, spec: StateSpec, value: Any, where: str) -> None:
        if not isinstance(value, dict) or any(key in value for key in _TAGS):
            raise ValueError(f"{where} is not a state (a dict of entries)")
        for key in spec.entries:
            if key not in value:
                raise ValueError(f"{where}[{key!r}] is missing")
        for key in value:
            if key not in spec.entries:
                raise ValueError(f"{where} has an entry {key!r}, which this optimizer's state does not have")
        for key, entry in spec.entries.items():
            self.entry(entry, value[key], f"{where}[{key!r}]")

    def count(self, spec: Count, value: Any, where: str) -> None:
        if isinstance(value, dict):
            header = self.tagged(value, "__scalar__", where, f"an integer from 0 to {spec.high}")
            self.dtype(header, "iu", where)
            self.scalar_shape(header, where)
            self.counts.append((where, spec, header.key))
        elif isinstance(value, int) and not isinstance(value, bool):
            _check_count(spec, value, where)
        else:
            raise ValueError(f"{where} must be an integer from 0 to {spec.high}, got {_show(value)}")

    def real(self, value: Any, where: str) -> None:
        if isinstance(value, dict):
            header = self.tagged(value, "__scalar__", where, "a number")
            self.dtype(header, "f", where)
            self.scalar_shape(header, where)
        elif not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{where} must be a number, got {_show(value)}")

    def run_scalar(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            self.real(value, where)
            return
        tag = "__scalar__" if "__scalar__" in value else "__array__"
        header = self.tagged(value, tag, where, "a number or an array of runs")
        self.dtype(header, "f", where)
        if tag == "__scalar__":
            self.scalar_shape(header, where)
        else:
            self.carried.append((where, header))

    def tagged(self, value: Any, tag: str, where: str, what: str) -> _Header:
        """The entry ``value`` refers to with ``tag`` (``{"__array__": "a3"}``)."""
        if not (isinstance(value, dict) and len(value) == 1 and value.get(tag) in self.headers):
            raise ValueError(f"{where} must be {what}, got {_show(value)}")
        return self.headers[value[tag]]

    @staticmethod
    def dtype(header: _Header, kinds: str, where: str) -> None:
        if header.dtype.kind not in kinds:
            raise ValueError(f"{where} has dtype {header.dtype}, expected {_KIND_NAMES[kinds]}")

    @staticmethod
    def scalar_shape(header: _Header, where: str) -> None:
        if header.shape != ():
            raise ValueError(f"{where} has shape {header.shape}, expected a scalar")


_KIND_NAMES = {"f": "a floating-point dtype", "iu": "an integer dtype", "i": "a signed integer dtype",
               "b": "bool"}


def _check_count(spec: Count, value: int, where: str) -> None:
    if not 0 <= value <= spec.high:
        raise ValueError(f"{where} must be an integer from 0 to {spec.high}, got {value}")


def _show(value: Any) -> str:
    text = json.dumps(value, allow_nan=True) if not isinstance(value, np.ndarray) else "an array"
    return text if len(text) <= 60 else text[:57] + "..."


def _spec(optimizer: Optimizer) -> StateSpec:
    """The optimizer's :meth:`state_spec` (``TypeError`` for an optimizer without one)."""
    describe = getattr(optimizer, "state_spec", None)
    if describe is None:
        raise TypeError(f"optimizer {optimizer.name!r} does not declare what its state holds (state_spec), so its "
                        "state cannot be saved or loaded")
    return describe()


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests containers deeper than ``limit`` (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _references(value: Any, where: str) -> Iterator[str]:
    """The entry names ``value`` (decoded JSON, depth already bounded) refers to, in order."""
    if isinstance(value, dict):
        for tag in ("__array__", "__scalar__"):
            if tag in value:
                ref = value[tag]
                if len(value) != 1 or not isinstance(ref, str):
                    raise ValueError(f"{where}: corrupt gdlab state file: malformed tagged value {_show(value)}")
                yield ref
                return
        for item in value.values():
            yield from _references(item, where)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item, where)


# -- encoding --------------------------------------------------------------------------------------
def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"save_state: {where} is an object array, which cannot be stored without pickle")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, np.generic):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        if arrays[key].dtype.hasobject:
            raise TypeError(f"save_state: {where} is a NumPy object scalar, which cannot be stored")
        return {"__scalar__": key}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"save_state: {where} has a non-string key {key!r}")
            if key.startswith("__"):
                raise TypeError(f"save_state: {where} has the key {key!r}; keys starting with '__' are reserved")
            out[key] = _encode(item, arrays, f"{where}[{key!r}]")
        return out
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"save_state: {where} is a {type(value).__name__}, which cannot be stored without pickle")


def _decode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, dict):
        tags = [t for t in _TAGS if t in value]
        if tags:
            if len(value) != 1:
                raise ValueError(f"{where}: corrupt gdlab state file: malformed tagged value {_show(value)}")
            tag, ref = tags[0], value[tags[0]]
            if tag == "__tuple__":
                if not isinstance(ref, list):
                    raise ValueError(f"{where}: corrupt gdlab state file: malformed tuple {_show(value)}")
                return tuple(_decode(v, arrays, where) for v in ref)
            if not isinstance(ref, str) or ref not in arrays:
                raise ValueError(f"{where}: corrupt gdlab state file: the array {ref!r} is missing")
            arr = arrays[ref]
            return arr[()] if tag == "__scalar__" else arr
        return {k: _decode(v, arrays, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, where) for v in value]
    return value
