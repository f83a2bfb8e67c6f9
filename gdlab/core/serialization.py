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
runs again on load. Archives are read with ``allow_pickle=False``: object arrays are refused.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gdlab._version import __version__
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.transforms import Chain

FORMAT = "gdlab-optimizer-state"
FORMAT_VERSION = 1
_META = "__meta__"
_TAGS = ("__array__", "__scalar__", "__tuple__")


def save_state(path: str | os.PathLike[str], optimizer: Optimizer, state: State) -> None:
    """Write ``optimizer`` (name and hyperparameters) and ``state`` to the ``.npz`` file ``path``.

    The file is written whole or not at all (through a temporary file in the same directory, then
    renamed; mode 0644).
    Raises ``TypeError`` for values that cannot be stored without pickle (naming where they are).
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"save_state: optimizer must be a gdlab Optimizer, got {type(optimizer).__name__}")
    if not isinstance(state, dict) or "step" not in state:
        raise TypeError("save_state: state must be an optimizer state dict (with a 'step' entry)")
    arrays: dict[str, np.ndarray] = {}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gdlab_version": __version__,
        "optimizer": optimizer.name,
        "step": _encode(state["step"], arrays, "state['step']"),
        "hyperparams": _encode(optimizer.get_params(), arrays, "hyperparams"),
        "state": _encode(state, arrays, "state"),
    }
    arrays[_META] = np.array(json.dumps(meta, allow_nan=True))
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | os.PathLike[str]) -> tuple[Optimizer, State]:
    """Read a file written by :func:`save_state`: ``(optimizer, state)``.

    Raises ``ValueError`` naming the problem for a file that is not such an archive, is corrupt,
    holds pickled objects, was written by another format version or names an unknown optimizer.
    """
    from gdlab.core.optimizers import make_optimizer, optimizer_class

    where = str(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{where}: not a gdlab state file (cannot read it as an .npz archive: {err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: not a gdlab state file (a single .npy array, not an .npz archive)")
    with archive:
        arrays = _read_arrays(archive, where)
    meta = _read_meta(arrays.pop(_META, None), where)
    name = meta.get("optimizer")
    if not isinstance(name, str):
        raise ValueError(f"{where}: corrupt gdlab state file: the optimizer name is missing")
    if name != Chain.name:
        try:
            optimizer_class(name)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    hyper = _decode(meta.get("hyperparams"), arrays, where)
    state = _decode(meta.get("state"), arrays, where)
    if not isinstance(hyper, dict) or not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise ValueError(f"{where}: corrupt gdlab state file: hyperparams or state (with an integer step) missing")
    try:
        optimizer = Chain.from_params(hyper) if name == Chain.name else make_optimizer(name, **hyper)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{where}: the stored hyperparameters of {name!r} are not valid: {err}") from None
    return optimizer, state


# -- encoding ------------------------------------------------------------------------------------
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


def _read_arrays(archive: Any, where: str) -> dict[str, np.ndarray]:
    out = {}
    for key in archive.files:
        try:
            out[key] = archive[key]
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise ValueError(
                    f"{where}: refused: entry {key!r} holds pickled Python objects (gdlab state files never do)"
                ) from None
            raise ValueError(f"{where}: corrupt gdlab state file: entry {key!r} is unreadable ({err})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{where}: corrupt gdlab state file: entry {key!r} is unreadable ({err})") from None
    return out


def _read_meta(raw: np.ndarray | None, where: str) -> dict[str, Any]:
    if raw is None:
        raise ValueError(f"{where}: not a gdlab state file (no {_META!r} entry)")
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{where}: corrupt gdlab state file: {_META!r} is not a JSON string")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: corrupt gdlab state file: its metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{where}: not a gdlab state file (format is not {FORMAT!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{where}: unsupported gdlab state format version {version!r} (written by gdlab "
            f"{meta.get('gdlab_version', '?')}); this gdlab {__version__} reads version {FORMAT_VERSION}"
        )
    return meta


def _decode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, dict):
        tags = [t for t in _TAGS if t in value]
        if tags:
            if len(value) != 1:
                raise ValueError(f"{where}: corrupt gdlab state file: malformed tagged value {value!r}")
            tag, ref = tags[0], value[tags[0]]
            if tag == "__tuple__":
                if not isinstance(ref, list):
                    raise ValueError(f"{where}: corrupt gdlab state file: malformed tuple {value!r}")
                return tuple(_decode(v, arrays, where) for v in ref)
            if not isinstance(ref, str) or ref not in arrays:
                raise ValueError(f"{where}: corrupt gdlab state file: the array {ref!r} is missing")
            arr = arrays[ref]
            return arr[()] if tag == "__scalar__" else arr
        return {k: _decode(v, arrays, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, where) for v in value]
    return value
