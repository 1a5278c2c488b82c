"""A tqdm progress bar for search runs (for the command line; the library never prints)."""

from __future__ import annotations

from typing import Optional

from nord.execution.run_loop import ProgressEvent

__all__ = ["ProgressBar"]


class ProgressBar:
    """A ``SearchRun`` callback: evaluations done against the budget, best fitness so far.

    >>> with ProgressBar(150, "evolution") as bar:        # doctest: +SKIP
    ...     run_search(settings, out, callbacks=[bar])
    """

    def __init__(self, total: Optional[int] = None, description: Optional[str] = None) -> None:
        self.total, self.description = total, description
        self.bar = None  # drawn at the first evaluation, so set-up errors print alone

    def __call__(self, event: ProgressEvent) -> None:
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=event.budget, desc=self.description, unit="eval",
                            dynamic_ncols=True)
        self.bar.total = event.budget
        self.bar.set_postfix(best=f"{event.best_fitness:.4g}", refresh=False)
        self.bar.update(event.done - self.bar.n)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
