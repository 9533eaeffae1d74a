"""A restricted unpickler for torch zip checkpoints: it resolves only allow-listed globals and
maps every `ultralytics.*` class to an inert stub, so nothing in the file is ever executed
(spec §3.3, §3.5)."""

from __future__ import annotations

import collections
import pathlib
import pickle
import types
from typing import Any

import torch
from torch import nn

from edge_yolo.errors import UnsafeCheckpointError, UnsupportedModelError

SAFE_METHODS = frozenset({"forward", "forward_fuse", "forward_split"})


class StubModule(nn.Module):
    """Inert stand-in for any pickled `ultralytics.nn.*` module: it only holds the pickled state
    (`_modules`, `_parameters`, `_buffers` and plain attributes) and can never run."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} is a checkpoint stub and cannot run")

    forward_fuse = forward
    forward_split = forward


class StubObject:
    """Inert stand-in for a non-module `ultralytics.*` class (namespaces, losses, assigners)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict-subclass pickles use SETITEMS
        self.__dict__[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def append(self, item: Any) -> None:  # list-subclass pickles use APPENDS
        self.__dict__.setdefault("_items", []).append(item)

    def extend(self, items: Any) -> None:
        self.__dict__.setdefault("_items", []).extend(items)


def safe_getattr(obj: Any, name: str, *default: Any) -> Any:
    """`builtins.getattr` as pickled bound methods use it (fused checkpoints pickle
    `Conv.forward = Conv.forward_fuse`): only forward methods of modules are handed out."""
    if isinstance(obj, nn.Module) and name in SAFE_METHODS:
        return getattr(obj, name, *default)
    raise UnsafeCheckpointError(
        f"it asks for attribute {name!r} of a {type(obj).__name__}, which is not on the allow-list"
    )


def safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """copyreg._reconstructor limited to plain `object` bases (protocol 0/1 pickles)."""
    if base is not object:
        raise UnsafeCheckpointError(f"it reconstructs {cls.__name__} from {base.__name__}, which is not on the allow-list")
    return object.__new__(cls)


_TORCH_NN = {
    "torch.nn.modules.conv": ("Conv2d",),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.activation": ("SiLU", "ReLU", "LeakyReLU", "Sigmoid", "Hardswish", "GELU"),
    "torch.nn.modules.linear": ("Identity",),
    "torch.nn.modules.upsampling": ("Upsample",),
    "torch.nn.modules.pooling": ("MaxPool2d",),
    "torch.nn.modules.container": ("Sequential", "ModuleList", "ModuleDict"),
}

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("copyreg", "_reconstructor"): safe_reconstructor,
    ("copy_reg", "_reconstructor"): safe_reconstructor,
    ("pathlib", "PosixPath"): pathlib.PurePosixPath,
    ("pathlib", "WindowsPath"): pathlib.PureWindowsPath,
    ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
    ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
    ("pathlib._local", "PosixPath"): pathlib.PurePosixPath,
    ("pathlib._local", "WindowsPath"): pathlib.PureWindowsPath,
    ("types", "SimpleNamespace"): types.SimpleNamespace,
    ("argparse", "Namespace"): types.SimpleNamespace,
}
for _mod, _names in _TORCH_NN.items():
    for _name in _names:
        _ALLOWED[(_mod, _name)] = getattr(nn, _name)
for _b in ("builtins", "__builtin__"):
    for _name in ("set", "frozenset", "dict", "list", "tuple", "slice", "complex", "bytearray", "range",
                  "int", "float", "bool", "str", "bytes"):
        _ALLOWED[(_b, _name)] = __import__("builtins").__dict__[_name]
    _ALLOWED[(_b, "getattr")] = safe_getattr


def _numpy_global(module: str, name: str) -> Any | None:
    """numpy scalars, dtypes and plain arrays (training metrics), nothing else from numpy."""
    import numpy as np

    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("scalar", "_reconstruct"):
        return getattr(np._core.multiarray if hasattr(np, "_core") else np.core.multiarray, name)
    if module == "numpy" and name in ("dtype", "ndarray"):
        return getattr(np, name)
    if module == "numpy.dtypes" and name.endswith("DType"):
        return getattr(np.dtypes, name, None)
    return None


# Ultralytics packages whose classes are nn.Modules (layers, DetectionModel, the YOLO() wrapper).
_MODULE_PACKAGES = ("ultralytics.nn.", "ultralytics.engine.model", "ultralytics.models.")


class _StubRegistry:
    """One stub class per pickled `ultralytics.*` global, named like the original."""

    def __init__(self) -> None:
        self.classes: dict[tuple[str, str], type] = {}

    def get(self, module: str, name: str) -> type:
        key = (module, name)
        if key not in self.classes:
            base = StubModule if module.startswith(_MODULE_PACKAGES) else StubObject
            self.classes[key] = type(name, (base,), {"__module__": f"edge_yolo_stub.{module}"})
        return self.classes[key]


def make_pickle_module() -> types.ModuleType:
    """A `pickle_module` for torch.load whose Unpickler refuses anything outside the allow-list.

    Each call has its own stub registry, so `seen_globals` lists what one load referenced.
    """
    registry = _StubRegistry()
    seen: list[str] = []

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            seen.append(f"{module}.{name}")
            if module == "ultralytics" or module.startswith("ultralytics."):
                return registry.get(module, name)
            if (module, name) in _ALLOWED:
                return _ALLOWED[(module, name)]
            if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
                return getattr(torch, name)
            if module.startswith("numpy"):
                obj = _numpy_global(module, name)
                if obj is not None:
                    return obj
            if module.startswith("torch.nn.modules."):   # a plain torch model: say what it is
                raise UnsupportedModelError(f"not a YOLOv12 checkpoint (found: torch {name} layers)")
            raise UnsafeCheckpointError(
                f"it references {module}.{name}, which is not on the allow-list"
            )

    mod = types.ModuleType("edge_yolo_restricted_pickle")
    mod.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    mod.__dict__["seen_globals"] = seen
    return mod
