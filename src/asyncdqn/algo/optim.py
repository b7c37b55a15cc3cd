"""Shared-memory optimizers for Hogwild asynchronous training.

Asynchronous one-step / n-step Q-learning (Mnih et al. 2016, "Asynchronous
Methods for Deep Reinforcement Learning") runs several worker processes that
all apply gradient updates to ONE Q-network living in shared memory, without
locks ("Hogwild!", Recht et al. 2011). The paper found that sharing the
optimizer statistics between workers (its "shared RMSProp") is more robust than
giving every worker its own statistics. The two classes here provide that:

* :class:`SharedAdam` -- Adam whose first/second moment buffers are shared.
* :class:`SharedRMSprop` -- RMSProp (non-centered, no momentum) whose running
  average of squared gradients is shared.
* :class:`SharedRAdam` -- rectified Adam (Liu et al. 2020; PQN's optimizer) with
  Adam's shared moments.

Design
------
Every per-element tensor of optimizer state (``exp_avg``, ``exp_avg_sq``,
``square_avg``) is allocated with ``torch.zeros_like(p).share_memory_()``, so
after the optimizer is handed to spawn-started worker processes all of them
read and write the same memory. The elementwise updates of those moments and of
the parameters are done **lock-free**, exactly like Hogwild: two workers may
interleave their read-modify-write of the same element and one contribution may
be partially lost or mixed. That is the accepted Hogwild trade-off -- such
collisions are rare, their effect is a small amount of noise in an already
noisy stochastic update, and locking the whole update would serialise the
workers and remove the speed-up that is the point of asynchronous training.

The **step counter** is different. Adam's bias correction uses the number of
updates ``t`` that have been folded into the moments: ``m_hat = m / (1 -
beta1**t)`` and ``v_hat = v / (1 - beta2**t)``. If ``t`` is incremented with an
uncoordinated ``t += 1`` in each process (or kept per process), increments are
lost or double-counted, ``t`` drifts away from the true number of moment
updates, and the bias correction becomes wrong -- early in training a too small
``t`` divides by ``1 - beta2**t`` that is far too small and blows up the step
size. So the counter is a 1-element ``int64`` shared tensor that is incremented
*and* read under a ``multiprocessing`` lock, with exactly one lock acquisition
per :meth:`step` call; the value read is the ``t`` used by that call and is
returned to the caller. Every call therefore gets a distinct ``t`` and the
counter equals the total number of ``step()`` calls across all processes. The
critical section is a few hundred nanoseconds, negligible next to the forward /
backward pass of each worker.

With a single process the updates are identical (same sequence of floating
point operations) to ``torch.optim.Adam`` (``amsgrad=False, maximize=False``,
L2 ``weight_decay`` added to the gradient) and ``torch.optim.RMSprop``
(``centered=False, momentum=0``). One exception: when the parameters, their
gradients and the state are each one flat buffer (every worker's case),
SharedAdam runs torch's fused CPU Adam kernel (``torch._fused_adam_``, the one
behind ``torch.optim.Adam(fused=True)``) over the whole buffer in one vectorised
pass, 11-13 µs instead of 31-35 µs for a dozen numpy ufuncs on 18k floats; it is
identical to ``torch.optim.Adam(fused=True)`` and within float32 rounding of the
unfused update.

Differences from ``torch.optim``
--------------------------------
* One global step counter per optimizer instead of one per parameter: a
  ``step()`` call counts as a step even for parameters whose ``grad`` is
  ``None`` (they are skipped). This only matters if some parameters receive
  gradients on some steps but not others.
* No param groups; a per-call learning rate can be passed to ``step(lr=...)``
  (for annealing schedules, as in the paper) and the default is the ``lr``
  attribute.
* Dense gradients only.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["SharedAdam", "SharedRAdam", "SharedRMSprop"]


def _default_lock() -> Any:
    """A lock that can be handed to spawn-started processes."""
    return multiprocessing.get_context("spawn").Lock()


def split_flat(flat: torch.Tensor, like: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    """Consecutive views of `flat` shaped like the tensors `like`."""
    out, offset = [], 0
    for p in like:
        n = p.numel()
        out.append(flat[offset:offset + n].view(p.shape))
        offset += n
    return out


def flat_of(tensors: list[torch.Tensor]) -> np.ndarray | None:
    """A 1-D numpy view spanning `tensors` if they are contiguous, of one dtype, and laid
    out one after the other in the same storage; else None."""
    first = tensors[0]
    storage = first.untyped_storage()
    expected = first.data_ptr()
    for t in tensors:
        if (t.dtype != first.dtype or not t.is_contiguous() or t.data_ptr() != expected
                or t.untyped_storage().data_ptr() != storage.data_ptr()):
            return None
        expected += t.numel() * t.element_size()
    total = sum(t.numel() for t in tensors)
    flat = torch.empty(0, dtype=first.dtype).set_(storage, first.storage_offset(), (total,), (1,))
    view: np.ndarray = flat.detach().numpy()
    return view


class _SharedOptimizer:
    """Common machinery: parameter list, shared step counter, scratch buffers,
    flat (de)serialisation of state and pickling rules.

    Subclasses set ``_state_names`` (names of the per-parameter shared state
    tensors, in checkpoint order) and implement ``_update(t, lr)``.
    """

    _state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, lock: Any) -> None:
        plist: list[torch.nn.Parameter] = list(params)
        if not plist:
            raise ValueError("optimizer got an empty parameter list")
        for i, p in enumerate(plist):
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"parameter {i} is a {type(p).__name__}, expected a torch.Tensor")
            if not p.is_floating_point():
                raise TypeError(f"parameter {i} has non-floating dtype {p.dtype}")
        if len({id(p) for p in plist}) != len(plist):
            raise ValueError("optimizer got the same parameter more than once")
        if not lr >= 0.0:
            raise ValueError(f"invalid learning rate: {lr}")
        if not weight_decay >= 0.0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        self._params: list[torch.nn.Parameter] = plist
        self.lr: float = float(lr)
        self.weight_decay: float = float(weight_decay)
        self._lock: Any = _default_lock() if lock is None else lock
        # Global step counter: 1-element int64 tensor in shared memory, only
        # ever touched while holding self._lock.
        self._step: torch.Tensor = torch.zeros(1, dtype=torch.int64).share_memory_()  # type: ignore[no-untyped-call]
        # Per-parameter shared state, one list per name in _state_names. When every
        # parameter has the same dtype, each name's tensors are consecutive views of one
        # flat shared tensor (`_flat_state`), so that the update can run as a dozen
        # ufuncs over all parameters at once when the parameters and gradients are flat
        # too (see `_flat_views`); otherwise one update per parameter, same math.
        self._flat_state: dict[str, torch.Tensor] = {}
        if len({p.dtype for p in plist}) == 1:
            total = sum(p.numel() for p in plist)
            self._flat_state = {name: torch.zeros(total, dtype=plist[0].dtype).share_memory_()  # type: ignore[no-untyped-call]
                                for name in self._state_names}
            self._state = {name: split_flat(flat, plist) for name, flat in self._flat_state.items()}
        else:
            self._state = {
                name: [torch.zeros_like(p, memory_format=torch.contiguous_format).share_memory_()  # type: ignore[no-untyped-call]
                       for p in plist]
                for name in self._state_names
            }
        self._alloc_scratch()

    # ------------------------------------------------------------------ pickling
    def _alloc_scratch(self) -> None:
        """Per-process scratch buffers (denominator, decayed gradient).

        They must NOT be shared between processes (two workers would overwrite
        each other's temporaries), so they are excluded from pickling and
        re-created in every process. Pickling a normal tensor through
        multiprocessing would otherwise silently move it to shared memory.
        """
        self._buf: list[torch.Tensor] = [torch.empty_like(p, memory_format=torch.contiguous_format)
                                         for p in self._params]
        self._wd_buf: list[torch.Tensor] | None = (
            [torch.empty_like(p, memory_format=torch.contiguous_format) for p in self._params]
            if self.weight_decay != 0.0
            else None
        )
        # numpy views of the same memory (shared state, local scratch): the update is a
        # dozen tiny elementwise ops per parameter, and a numpy ufunc call costs a fraction
        # of a torch op's dispatch at these sizes. Parameters are viewed at each step (their
        # storage may move, e.g. model.share_memory() after the optimizer was built).
        self._np_state = {name: [t.numpy() for t in ts] for name, ts in self._state.items()}
        self._np_buf = [b.numpy() for b in self._buf]
        self._np_step = self._step.numpy()  # view of the shared counter: cheaper than torch ops
        # The flat fast path: the state's flat arrays, a flat scratch buffer, and a cache of
        # the flat views of the current parameters / gradients (rebuilt when they change).
        self._np_flat_state = {name: t.numpy() for name, t in self._flat_state.items()}
        total = sum(p.numel() for p in self._params)
        self._np_flat_buf = np.empty(total, dtype=self._np_buf[0].dtype) if self._flat_state else None
        self._np_flat_wd = np.empty_like(self._np_flat_buf) if self._flat_state and self.weight_decay else None
        self._flat_key: tuple[Any, ...] | None = None
        self._flat_pg: tuple[np.ndarray, np.ndarray] | None = None
        self._flat_grads_ref: list[torch.Tensor | None] = []
        self._flat_torch: tuple[Any, torch.Tensor, torch.Tensor] | None = None  # torch views of _flat_pg
        self._fused_step = torch.zeros((), dtype=torch.float32)  # the fused kernel's step count, set per call
        self._fused_step_np = self._fused_step.numpy()  # set through numpy: a torch fill_ costs ~5 µs here

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_buf", "_wd_buf", "_np_state", "_np_buf", "_np_step", "_np_flat_state", "_np_flat_buf",
                     "_np_flat_wd", "_flat_key", "_flat_pg", "_flat_grads_ref", "_flat_torch", "_fused_step",
                     "_fused_step_np"):
            del state[name]  # per-process: numpy views would pickle as copies
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._alloc_scratch()

    # ---------------------------------------------------------------- stepping
    def _next_step(self) -> int:
        """Atomically increment the shared counter and return the new value."""
        with self._lock:  # the only lock acquisition in step()
            self._np_step[0] += 1  # in-place add on the shared tensor's memory
            return int(self._np_step[0])  # read while still holding the lock

    def step(self, lr: float | None = None) -> int:
        """Apply one update from the parameters' current ``.grad``.

        ``lr`` overrides the ``lr`` attribute for this call only. Parameters
        whose ``grad`` is ``None`` are skipped. Returns the global step number
        ``t`` (1-based) assigned to this call.
        """
        t = self._next_step()
        lr = self.lr if lr is None else float(lr)
        if self._flat_views() is not None:
            self._update(t, lr)  # the flat path works on numpy views (and tensors made from them): no autograd
        else:
            with torch.no_grad():  # per-parameter weight decay adds with torch ops (out=) on parameters
                self._update(t, lr)
        return t

    def _grads(self) -> Iterator[tuple[int, torch.nn.Parameter, torch.Tensor]]:
        """(index, parameter, gradient) for each parameter that has a gradient,
        with L2 weight decay already added (g + wd * p), as torch's Adam/RMSprop do."""
        wd, wd_buf = self.weight_decay, self._wd_buf
        for i, p in enumerate(self._params):
            g = p.grad
            if g is None:
                continue
            if wd_buf is not None:
                g = torch.add(g, p, alpha=wd, out=wd_buf[i])
            yield i, p, g

    def _flat_views(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(flat parameters, flat gradients) as numpy views when all parameters are consecutive
        views of one storage (`model.flatten_parameters`), so are all gradients (the workers'
        flat gradient buffer), and the state is flat; else None. Cached while the same gradient
        tensors are set and the parameters' storage has not moved."""
        if not self._flat_state:
            return None
        params = self._params
        grads = [p.grad for p in params]
        key = (params[0].data_ptr(), params[-1].data_ptr(), *map(id, grads))
        if key == self._flat_key:
            return self._flat_pg
        self._flat_key, self._flat_pg = key, None
        self._flat_grads_ref = grads  # keep them alive: their ids are part of the key
        if all(g is not None for g in grads):
            fp, fg = flat_of(params), flat_of(grads)  # type: ignore[arg-type]
            if fp is not None and fg is not None:
                self._flat_pg = (fp, fg)
        return self._flat_pg

    def _flat_tensors(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The flat views `step()` just checked (`_flat_views`) as torch tensors (same memory), for
        torch's fused kernels."""
        flat = self._flat_pg
        if flat is None:
            return None
        if self._flat_torch is None or self._flat_torch[0] is not flat:
            self._flat_torch = (flat, torch.from_numpy(flat[0]), torch.from_numpy(flat[1]))
        return self._flat_torch[1], self._flat_torch[2]

    def _chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]]:
        """(gradient with weight decay added, parameter, state arrays, scratch) to update:
        one flat chunk over all parameters when possible, else one per parameter with a grad."""
        flat = self._flat_views()
        if flat is not None:
            p, g = flat
            if self._np_flat_wd is not None:
                g = np.add(g, self.weight_decay * p, out=self._np_flat_wd)
            assert self._np_flat_buf is not None
            yield g, p, self._np_flat_state, self._np_flat_buf
            return
        for i, param, grad in self._grads():
            yield (grad.numpy(), param.detach().numpy(), {n: a[i] for n, a in self._np_state.items()},
                   self._np_buf[i])

    def _update(self, t: int, lr: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Drop all gradients (``p.grad = None``), like ``set_to_none=True``."""
        for p in self._params:
            p.grad = None

    @property
    def step_count(self) -> int:
        """Total number of ``step()`` calls so far, across all processes."""
        with self._lock:
            return int(self._step.item())

    @property
    def params(self) -> list[torch.nn.Parameter]:
        """The optimized parameters (in checkpoint index order)."""
        return self._params

    # ------------------------------------------------------------ checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Snapshot of the optimizer state as flat ``name -> tensor`` (copies).

        Keys: ``"step"`` (int64, shape ``(1,)``) and ``"<state>.<i>"`` for each
        per-parameter state tensor, ``i`` being the parameter's index in the
        list given to the constructor. Suitable for ``safetensors.torch.save_file``.
        The moments are copied without a lock, so a snapshot taken while
        workers are stepping may mix updates of adjacent steps (harmless).
        """
        with self._lock:
            out: dict[str, torch.Tensor] = {"step": self._step.clone()}
        for name in self._state_names:
            for i, s in enumerate(self._state[name]):
                out[f"{name}.{i}"] = s.detach().clone()
        return out

    def load_state_tensors(self, d: dict[str, torch.Tensor]) -> None:
        """Copy a :meth:`state_tensors` dict in place into the shared tensors.

        Raises ``ValueError`` naming the missing / unexpected keys or the keys
        whose shapes differ; nothing is modified in that case.
        """
        expected: dict[str, torch.Tensor] = {"step": self._step}
        for name in self._state_names:
            for i, s in enumerate(self._state[name]):
                expected[f"{name}.{i}"] = s
        missing = sorted(set(expected) - set(d))
        extra = sorted(set(d) - set(expected))
        problems: list[str] = []
        if missing:
            problems.append(f"missing keys {missing}")
        if extra:
            problems.append(f"unexpected keys {extra}")
        for k in expected:
            if k in d and tuple(d[k].shape) != tuple(expected[k].shape):
                problems.append(f"shape mismatch for {k!r}: got {tuple(d[k].shape)}, "
                                f"expected {tuple(expected[k].shape)}")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_tensors: " + "; ".join(problems))
        with torch.no_grad():
            for k, dst in expected.items():
                if k != "step":
                    dst.copy_(d[k])  # in place: keeps the shared storage
            with self._lock:
                self._step.copy_(d["step"].to(torch.int64))


class SharedAdam(_SharedOptimizer):
    """Adam with shared-memory moments and a lock-protected global step count.

    Math (per parameter, ``g`` = gradient, ``t`` = global step of this call)::

        g   <- g + weight_decay * p                (L2, if weight_decay > 0)
        m   <- beta1 * m + (1 - beta1) * g
        v   <- beta2 * v + (1 - beta2) * g^2
        p   <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    identical to ``torch.optim.Adam(amsgrad=False)`` in a single process.

    Sharing with workers: create the model, call ``model.share_memory()``,
    build the optimizer from ``model.parameters()`` in the parent, then pass
    the model AND the optimizer in the SAME ``args`` tuple of one
    ``multiprocessing.get_context("spawn").Process``. Pickle's memo then
    rebuilds them so that ``optimizer.params`` are the very same ``Parameter``
    objects as the child's ``model.parameters()``; if they were pickled
    separately the optimizer would hold distinct tensors (sharing storage) whose
    ``.grad`` is never set by ``loss.backward()``, and ``step()`` would
    silently do nothing. The lock can only be pickled while spawning a process
    (not through a Queue or ``pickle.dumps``). Shared moments, the step
    counter and the lock survive pickling; per-process scratch buffers are
    re-created in each process.

    Only the step counter is locked (one acquisition per ``step()``); moment
    and parameter updates are Hogwild lock-free -- see the module docstring.
    """

    _state_names = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        lock: Any = None,
    ) -> None:
        beta1, beta2 = float(betas[0]), float(betas[1])
        if not 0.0 <= beta1 < 1.0 or not 0.0 <= beta2 < 1.0:
            raise ValueError(f"invalid betas: {betas}")
        if not eps >= 0.0:
            raise ValueError(f"invalid eps: {eps}")
        self.betas: tuple[float, float] = (beta1, beta2)
        self.eps: float = float(eps)
        super().__init__(params, lr, weight_decay, lock)
        self._exp_avg: list[torch.Tensor] = self._state["exp_avg"]
        self._exp_avg_sq: list[torch.Tensor] = self._state["exp_avg_sq"]

    def _update(self, t: int, lr: float) -> None:
        beta1, beta2 = self.betas
        eps = self.eps
        flat = self._flat_tensors()
        if flat is not None and flat[0].dtype == torch.float32:
            # One vectorised pass over the flat buffers: torch.optim.Adam(fused=True)'s CPU kernel, with
            # the bias corrections of this call's global step t (torch.optim increments the step before
            # calling it).
            self._fused_step_np[()] = t
            torch._fused_adam_([flat[0]], [flat[1]], [self._flat_state["exp_avg"]],
                               [self._flat_state["exp_avg_sq"]], [], [self._fused_step], lr=lr, beta1=beta1,
                               beta2=beta2, weight_decay=self.weight_decay, eps=eps, amsgrad=False, maximize=False)
            return
        one_minus_beta1 = 1.0 - beta1  # lerp weight for the first moment
        one_minus_beta2 = 1.0 - beta2  # weight of g^2 in the second moment
        step_size = lr / (1.0 - beta1**t)  # lr / bias_correction1
        bc2_sqrt = (1.0 - beta2**t) ** 0.5  # sqrt(bias_correction2); `**0.5` as torch does
        neg_step = -step_size
        for g, p, state, buf in self._chunks():
            m, v = state["exp_avg"], state["exp_avg_sq"]
            np.subtract(g, m, out=buf)
            buf *= one_minus_beta1
            m += buf  # m = m + (1-b1)(g - m) = b1 m + (1-b1) g   (torch's lerp)
            v *= beta2
            np.multiply(g, g, out=buf)
            buf *= one_minus_beta2
            v += buf  # v = b2 v + (1-b2) g^2
            np.sqrt(v, out=buf)
            buf /= bc2_sqrt
            buf += eps  # denom = sqrt(v / (1-b2^t)) + eps
            np.divide(m, buf, out=buf)
            buf *= neg_step
            p += buf  # p -= lr/(1-b1^t) * m / denom


class SharedRMSprop(_SharedOptimizer):
    """RMSProp with a shared-memory running average of squared gradients.

    Math (the paper's shared RMSProp; ``g`` = gradient)::

        g   <- g + weight_decay * p                (L2, if weight_decay > 0)
        s   <- alpha * s + (1 - alpha) * g^2
        p   <- p - lr * g / (sqrt(s) + eps)

    identical to ``torch.optim.RMSprop(centered=False, momentum=0)`` in a
    single process. Defaults ``lr=7e-4, alpha=0.99, eps=0.1`` follow the
    asynchronous-methods paper's settings. ``centered`` is not supported.

    The step counter is not used by the math but is kept (under the lock, one
    acquisition per ``step()``) so that ``step()`` returns a unique global
    step number, e.g. for learning-rate annealing.

    Sharing with workers: pass the model and the optimizer in the SAME
    ``args`` tuple of a spawn ``Process`` -- see :class:`SharedAdam`.
    """

    _state_names = ("square_avg",)

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 7e-4,
        alpha: float = 0.99,
        eps: float = 1e-1,
        weight_decay: float = 0.0,
        lock: Any = None,
    ) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"invalid alpha: {alpha}")
        if not eps >= 0.0:
            raise ValueError(f"invalid eps: {eps}")
        self.alpha: float = float(alpha)
        self.eps: float = float(eps)
        super().__init__(params, lr, weight_decay, lock)
        self._square_avg: list[torch.Tensor] = self._state["square_avg"]

    def _update(self, t: int, lr: float) -> None:
        alpha, eps = self.alpha, self.eps
        one_minus_alpha = 1.0 - alpha  # weight of g^2 in the running average
        neg_lr = -lr
        for g, p, state, buf in self._chunks():
            sq = state["square_avg"]
            sq *= alpha
            np.multiply(g, g, out=buf)
            buf *= one_minus_alpha
            sq += buf  # s = a s + (1-a) g^2
            np.sqrt(sq, out=buf)
            buf += eps  # denom = sqrt(s) + eps
            np.divide(g, buf, out=buf)
            buf *= neg_lr
            p += buf  # p -= lr * g / (sqrt(s) + eps)


class SharedRAdam(SharedAdam):
    """Rectified Adam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond"; the
    optimizer of PQN) with SharedAdam's shared moments and lock-protected global step count.

    Math (per parameter, ``g`` = gradient, ``t`` = global step of this call)::

        g      <- g + weight_decay * p             (L2, if weight_decay > 0)
        m      <- beta1 * m + (1 - beta1) * g
        v      <- beta2 * v + (1 - beta2) * g^2
        rho_oo =  2 / (1 - beta2) - 1
        rho_t  =  rho_oo - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_oo / ((rho_oo - 4)(rho_oo - 2) rho_t))
                       p <- p - lr r sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
        else:          p <- p - lr / (1 - beta1^t) * m            (momentum SGD while v's variance is large)

    as ``torch.optim.RAdam`` (``decoupled_weight_decay=False``) in a single process, within float32
    rounding (torch orders the scalar factors differently). One numpy pass over the flat buffers (every
    worker's case), or one per parameter. State, checkpoints and sharing are SharedAdam's.
    """

    def _update(self, t: int, lr: float) -> None:
        beta1, beta2 = self.betas
        eps = self.eps
        bias_correction1 = 1.0 - beta1**t
        bias_correction2 = 1.0 - beta2**t
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * t * beta2**t / bias_correction2
        if rho_t > 5.0:  # the variance of the adaptive rate is tractable: rectify it
            rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
            neg_step = -lr * rect * bias_correction2**0.5 / bias_correction1
        else:
            neg_step = -lr / bias_correction1
        one_minus_beta1, one_minus_beta2 = 1.0 - beta1, 1.0 - beta2
        for g, p, state, buf in self._chunks():
            m, v = state["exp_avg"], state["exp_avg_sq"]
            np.subtract(g, m, out=buf)
            buf *= one_minus_beta1
            m += buf  # m = b1 m + (1-b1) g   (torch's lerp)
            v *= beta2
            np.multiply(g, g, out=buf)
            buf *= one_minus_beta2
            v += buf  # v = b2 v + (1-b2) g^2
            if rho_t > 5.0:
                np.sqrt(v, out=buf)
                buf += eps
                np.divide(m, buf, out=buf)  # m / (sqrt(v) + eps)
            else:
                np.copyto(buf, m)
            buf *= neg_step
            p += buf
