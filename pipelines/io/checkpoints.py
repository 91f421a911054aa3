"""Orbax checkpoints of a whole stage state (one pytree) plus JSON metadata.

Saves are atomic (orbax writes to a temporary directory, then renames), so a
kill at any moment leaves the last complete checkpoint intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
    """Thin wrapper around ``ocp.CheckpointManager`` for one stage directory."""

    def __init__(self, directory: str | Path, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._mngr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
            item_names=("state", "meta", "policy"),
        )

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def save(
        self, step: int, state: Any, meta: dict[str, Any], policy: dict[str, Any] | None = None
    ) -> None:
        """Saves ``state`` (any pytree of arrays) and ``meta`` (JSON) at ``step``; blocks until done.

        The state is stored as a flat ``{leaf index: array}`` dict of its non-empty
        leaves (MJX data has zero-size arrays, which orbax refuses); the structure
        comes back from the template given to :meth:`restore`. ``policy`` (a dict of
        arrays, e.g. a student's parameters) is saved as an item of its own, so that it
        can be restored without the stage state's template (:meth:`restore_item`).
        """
        items = {"state": ocp.args.StandardSave(_flat(state)), "meta": ocp.args.JsonSave(meta)}
        if policy is not None:
            items["policy"] = ocp.args.StandardSave(policy)
        self._mngr.save(step, args=ocp.args.Composite(**items), force=True)
        self._mngr.wait_until_finished()

    def has_item(self, name: str, step: int | None = None) -> bool:
        """Whether the checkpoint at ``step`` (default: the latest) holds item ``name``."""
        step = self.latest_step() if step is None else step
        return step is not None and (self.directory / str(step) / name).is_dir()

    def restore_item(self, name: str, template: Any, step: int | None = None) -> Any:
        """Restores item ``name`` alone into the structure and dtypes of ``template``."""
        step = self.latest_step() if step is None else step
        if step is None or not self.has_item(name, step):
            raise FileNotFoundError(f"no {name!r} item in the checkpoint of {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        args = ocp.args.Composite(**{name: ocp.args.StandardRestore(abstract)})
        return self._mngr.restore(step, args=args)[name]

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores the state into the structure, dtypes and shardings of ``template``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _flat(template))
        out = self._mngr.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
        leaves, treedef = jax.tree.flatten(template)
        restored = [out["state"].get(str(i), leaf) for i, leaf in enumerate(leaves)]
        return jax.tree.unflatten(treedef, restored), out["meta"]

    def restore_leading(self, head: Any, step: int | None = None) -> Any:
        """Restores only the first leaves of the saved state, those of ``head``.

        ``head`` is a prefix of the stage state's fields (a teacher's ``(params, opt_state,
        normalizer)``): loading a policy then does not depend on the fields after it, such
        as the env state, whose layout may differ between versions.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        out = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
        leaves, treedef = jax.tree.flatten(head)  # the saved tree as written, then its head
        restored = [
            np.asarray(out["state"].get(str(i), leaf), leaf.dtype) for i, leaf in enumerate(leaves)
        ]
        for i, (got, want) in enumerate(zip(restored, leaves, strict=True)):
            if got.shape != want.shape:
                raise ValueError(
                    f"checkpoint {self.directory}: leaf {i} has shape {got.shape}, expected "
                    f"{want.shape} (a different architecture?)"
                )
        return jax.tree.unflatten(treedef, restored)

    def restore_meta(self, step: int | None = None) -> dict[str, Any]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]

    def close(self) -> None:
        self._mngr.close()


def _flat(tree: Any) -> dict[str, Any]:
    """``{str(leaf index): leaf}`` for the leaves of ``tree`` that hold data."""
    return {str(i): x for i, x in enumerate(jax.tree.leaves(tree)) if getattr(x, "size", 1) > 0}
