"""Progress on a terminal: one rich progress bar over the pipeline's stages, each finished stage
printed above it with its time. Used by the CLI only when stderr is a terminal and not --quiet."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from audit.pipeline import DEFAULT_STEPS, ProgressHook

#: The stages a CLI run goes through: the pipeline's steps, then writing the outputs.
STAGES: tuple[str, ...] = (*(step.name for step in DEFAULT_STEPS), "write")


@contextmanager
def stage_progress(
    enabled: bool, stages: Sequence[str] = STAGES, console: Console | None = None
) -> Iterator[ProgressHook | None]:
    """Yield a progress hook drawing on ``console`` (default: stderr), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    console = console or Console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} stages"),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # the bar goes; the per-stage lines and the final summary stay
    )
    task = progress.add_task("starting", total=len(stages))

    def hook(step: str, phase: str, seconds: float) -> None:
        if phase == "start":
            progress.update(task, description=step)
        else:
            progress.console.print(f"  [green]✓[/green] {step:<10} {seconds:8.2f} s")
            progress.advance(task)

    with progress:
        yield hook
