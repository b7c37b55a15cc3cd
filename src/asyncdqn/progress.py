"""Live progress: env steps, steps/s, recent return, epsilon, last evaluation, ETA."""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

from tqdm import tqdm

from asyncdqn.config import Config


class Progress:
    """A tqdm bar over env steps (total = --max-steps when set), refreshed at most twice a second."""

    def __init__(self, cfg: Config, enabled: bool = True) -> None:
        self.cfg = cfg
        self.returns: deque[float] = deque(maxlen=100)
        self.eps = float("nan")
        self.bar = tqdm(total=cfg.max_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                        mininterval=0.5, disable=not enabled, file=sys.stderr,
                        desc=f"{cfg.env_id} {cfg.algo}")
        self._last_postfix = -1.0

    def episode(self, ret: float, eps: float) -> None:
        self.returns.append(ret)
        self.eps = eps

    def update(self, step: int, elapsed: float, last_eval: Any) -> None:
        if self.bar.disable:
            return
        self.bar.update(step - self.bar.n)
        if elapsed - self._last_postfix < 0.5:
            return
        self._last_postfix = elapsed
        parts = []
        if self.returns:
            parts.append(f"ret100 {sum(self.returns) / len(self.returns):.1f}")
        parts.append(f"eps {self.eps:.3f}")
        if last_eval is not None:
            parts.append(f"eval {last_eval.mean:.1f}±{last_eval.std:.1f} ({last_eval.episodes} ep)")
        if self.cfg.max_seconds is not None:
            parts.append(f"time left {max(self.cfg.max_seconds - elapsed, 0):.0f}s")
        self.bar.set_postfix_str(", ".join(parts), refresh=False)

    def close(self) -> None:
        self.bar.close()
