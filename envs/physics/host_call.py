"""A numpy function of a batch of rows as an XLA CPU custom call: ``[*B, I] -> [*B, O]``.

``jax.pure_callback`` would do the same, but XLA programs holding a Python callback are
never written to JAX's persistent compilation cache, so every process (every stage of a
pipeline, every resumed run, every test) would compile its MuJoCo C programs again. A
custom call names its host function by a string instead of a pointer, so the programs
are cached like any other: the function is looked up in a registry at run time, under a
key that is the same in every process for the same model (see
:func:`envs.physics.MujocoPhysics`).

How: one ``ctypes`` function with the legacy CPU custom-call signature
``void(void* out, const void** in, const char* opaque, size_t len, status*)`` is
registered once as the target ``dexdistill_host_call``; the opaque string carries
``key:rows:in_width:out_width``. The batch size is only known under ``vmap``, so
:func:`call` is a ``custom_vmap`` whose rule emits the call for the whole batch (as
``vmap_method="broadcast_all"`` does for ``pure_callback``). Under SPMD partitioning
XLA does not split a custom call it does not know: every device calls it on the whole
(gathered) batch, as with ``pure_callback``.

A host function that raises fills its output with NaN (non-finite losses then stop the
stage) and prints the traceback; :func:`last_error` returns it.
"""

from __future__ import annotations

import ctypes
import threading
import traceback
from collections.abc import Callable

import jax
import jax.numpy as jp
import numpy as np

TARGET = "dexdistill_host_call"
_LEGACY_UNIFIED = 3
"""Custom-call API version: status-returning, with the opaque string (XLA's numbering)."""

_registry: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
_lock = threading.Lock()
_errors: list[str] = []

_SIGNATURE = ctypes.CFUNCTYPE(
    None,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
)


def _handler(out: int, ins: ctypes.Array, opaque: bytes, length: int, status: int) -> None:
    """The custom call: views XLA's buffers as numpy, runs the registered function."""
    key, rows, width_in, width_out = opaque[:length].decode().split(":")
    shape_in, shape_out = (int(rows), int(width_in)), (int(rows), int(width_out))
    x = np.ctypeslib.as_array(ctypes.cast(ins[0], ctypes.POINTER(ctypes.c_float)), shape_in)
    y = np.ctypeslib.as_array(ctypes.cast(out, ctypes.POINTER(ctypes.c_float)), shape_out)
    try:
        y[...] = _registry[key](x)
    except Exception:  # noqa: BLE001 - an exception must not cross into XLA
        y[...] = np.nan
        _errors.append(traceback.format_exc())
        print(f"host call {key} failed:\n{_errors[-1]}", flush=True)


_HANDLER = _SIGNATURE(_handler)  # kept alive for the process's lifetime


def _register_target() -> None:
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    pointer = ctypes.cast(_HANDLER, ctypes.c_void_p).value
    capsule = new_capsule(pointer, b"xla._CUSTOM_CALL_TARGET", None)
    jax.ffi.register_ffi_target(TARGET, capsule, platform="cpu", api_version=0)


_register_target()


def register(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Makes ``fn`` (float32 ``[N, I] -> [N, O]``) callable as ``key``; returns False (and
    keeps the first) when ``key`` is taken: equal keys must mean equal functions."""
    with _lock:
        if key in _registry:
            return False
        _registry[key] = fn
        return True


def registered(key: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function registered as ``key``, if any."""
    return _registry.get(key)


def last_error() -> str | None:
    """The traceback of the last host function that raised, if any."""
    return _errors[-1] if _errors else None


def _emit(key: str, rows: jax.Array, out_width: int) -> jax.Array:
    lead = rows.shape[:-1]
    n = int(np.prod(lead)) if lead else 1
    opaque = f"{key}:{n}:{rows.shape[-1]}:{out_width}"
    return jax.ffi.ffi_call(
        TARGET,
        jax.ShapeDtypeStruct((*lead, out_width), jp.float32),
        custom_call_api_version=_LEGACY_UNIFIED,
        legacy_backend_config=opaque,
    )(rows.astype(jp.float32))


def call(key: str, rows: jax.Array, out_width: int) -> jax.Array:
    """``registered(key)(rows)`` inside a traced program: ``[*B, I] -> [*B, out_width]``
    float32, one host call for the whole batch under any number of ``vmap``\\ s."""

    @jax.custom_batching.custom_vmap
    def f(x: jax.Array) -> jax.Array:
        return _emit(key, x, out_width)

    @f.def_vmap
    def _batched(axis_size: int, in_batched: list[bool], x: jax.Array) -> tuple:
        return f(x), in_batched[0]

    return f(rows)
