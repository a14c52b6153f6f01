"""Modules: every model is a tree of modules, every parameter array has exactly one owner.

    class Affine(Module):
        def __init__(self, n_in, n_out, rng):
            super().__init__()
            self.add_param("weight", rng.uniform(-1, 1, (n_out, n_in)))   # owned here
            self.add_param("bias", np.zeros(n_out))

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.out = Affine(3, 2, rng)          # a child: registered by assignment

    dict(Net().named_parameters())  # {"out.weight": ..., "out.bias": ...}

Rules that keep one array in one place:

* a parameter is registered once (``add_param``) and read as an attribute (``net.out.weight``);
* assigning to a parameter's attribute copies the values INTO the registered array (shape checked,
  cast to its dtype), so every view of it -- an optimizer, a derived dict, a cell's weights --
  sees the change; ``load_state_dict`` does the same. Rebinding the array itself is impossible;
* gradients live beside the parameters: ``module.grads`` maps a module's own parameter names to
  arrays of the same shape, filled by its backward; ``named_grads()`` collects them with dotted
  names like ``named_parameters()``;
* ``freeze(name)`` marks a parameter as not trained (an echo-state reservoir, a fixed embedding):
  ``trainable_names()`` leaves it out, and so does the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .errors import RnnkitError


class Module:
    """Base class of every layer and model: named parameters, children, state dicts, freezing."""

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_frozen", set())
        object.__setattr__(self, "grads", {})
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register ``value`` (a float array, used as it is, not copied) as parameter ``name``."""
        if "_params" not in self.__dict__:
            raise RnnkitError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if not name or "." in name or name in self._params or name in self._modules:
            raise RnnkitError(f"bad or duplicate parameter name {name!r} in {type(self).__name__}")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise RnnkitError(f"parameter {name} must be a float numpy array")
        self._params[name] = value
        return value

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a child (``self.name = module`` does the same)."""
        if module is not None and not isinstance(module, Module):
            raise RnnkitError(f"{name} must be a Module, got {type(module).__name__}")
        if not name or "." in name or name in self._params:
            raise RnnkitError(f"bad module name {name!r} in {type(self).__name__}")
        self._modules[name] = module

    def __getattr__(self, name: str):
        d = self.__dict__
        if "_params" in d and name in d["_params"]:
            return d["_params"][name]
        if "_modules" in d and name in d["_modules"]:
            return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if "_params" in d and name in d["_params"]:
            self._assign(name, d["_params"][name], value)
        elif isinstance(value, Module):
            if "_modules" not in d:
                raise RnnkitError(
                    f"{type(self).__name__}.__init__ must call super().__init__() first"
                )
            if name in d["_modules"]:
                d["_modules"][name] = value
            else:
                self.add_module(name, value)
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise RnnkitError(f"{name} is a child module; assign a Module or None")
            d["_modules"][name] = None
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _assign(name: str, p: np.ndarray, value) -> None:
        v = np.asarray(value)
        if v.shape != p.shape:
            raise RnnkitError(
                f"{name} has shape {p.shape}; cannot assign an array of shape {v.shape}"
            )
        if v.dtype.kind not in "fiu":
            raise RnnkitError(f"{name} needs numeric values, got dtype {v.dtype}")
        p[...] = v

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" at the root) and every descendant."""
        yield prefix, self
        for n, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{n}" if prefix else n)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) for every parameter of the tree, children after own ones."""
        for mp, m in self.named_modules(prefix):
            for n, p in m._params.items():
                yield (f"{mp}.{n}" if mp else n), p

    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable parameters by dotted name (the arrays themselves: update in place)."""
        keep = self.trainable_names()
        return {n: p for n, p in self.named_parameters() if n in keep}

    def named_grads(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The gradients the last backward left in each module's ``grads``, by dotted name,
        for the trainable parameters."""
        keep = self.trainable_names()
        out = {}
        for mp, m in self.named_modules(prefix):
            for n, g in m.grads.items():
                full = f"{mp}.{n}" if mp else n
                if full in keep:
                    out[full] = g
        return out

    # -- freezing -------------------------------------------------------------------------------
    def freeze(self, *names: str) -> None:
        """Stop training the named parameters (dotted names below this module; none: all)."""
        own = dict(self.named_parameters())
        for n in names or tuple(own):
            if n not in own:
                raise RnnkitError(f"no parameter named {n!r}")
            mod, _, leaf = n.rpartition(".")
            self._module_at(mod)._frozen.add(leaf)

    def unfreeze(self, *names: str) -> None:
        own = dict(self.named_parameters())
        for n in names or tuple(own):
            if n not in own:
                raise RnnkitError(f"no parameter named {n!r}")
            mod, _, leaf = n.rpartition(".")
            self._module_at(mod)._frozen.discard(leaf)

    def trainable_names(self) -> set[str]:
        """Dotted names of the parameters that the training loop updates."""
        out = set()
        for mp, m in self.named_modules():
            for n in m._params:
                if n not in m._frozen:
                    out.add(f"{mp}.{n}" if mp else n)
        return out

    def _module_at(self, dotted: str) -> Module:
        m: Module = self
        for part in filter(None, dotted.split(".")):
            child = m._modules.get(part)
            if child is None:
                raise RnnkitError(f"no module named {dotted!r}")
            m = child
        return m

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter (frozen ones too), by dotted name."""
        return {n: p.copy() for n, p in self.named_parameters()}

    def load_state_dict(self, d: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters (cast to each one's dtype). With ``strict`` the keys
        must match exactly; shapes always must. Nothing is changed when a check fails."""
        own = dict(self.named_parameters())
        missing, extra = sorted(set(own) - set(d)), sorted(set(d) - set(own))
        if strict and (missing or extra):
            raise RnnkitError(f"state dict keys differ: missing {missing}, unexpected {extra}")
        vals = {}
        for n, p in own.items():
            if n not in d:
                continue
            v = np.asarray(d[n])
            if v.shape != p.shape:
                raise RnnkitError(f"{n} has shape {v.shape}, expected {p.shape}")
            if v.dtype.kind not in "fiu":
                raise RnnkitError(f"{n} has dtype {v.dtype}; expected numbers")
            vals[n] = v
        for n, v in vals.items():
            own[n][...] = v

    def extra_state(self) -> dict:
        """JSON-able state beside the parameters that a checkpoint must keep for an exact resume
        (e.g. a dropout random stream); none by default."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` returned."""

    def named_extra_states(self) -> dict:
        """{dotted module name: extra_state} for every module that has some."""
        return {n: st for n, m in self.named_modules() if (st := m.extra_state())}

    def load_named_extra_states(self, states: dict) -> None:
        for n, st in states.items():
            self._module_at(n).load_extra_state(st)

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout on) or, with False, evaluation mode, for the whole tree."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def num_parameters(self) -> int:
        return sum(p.size for _, p in self.named_parameters())

    def __repr__(self) -> str:
        kids = ", ".join(f"{n}={type(m).__name__}" for n, m in self._modules.items())
        return f"{type(self).__name__}({kids})"
