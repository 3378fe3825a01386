"""`qsampling credit …` commands."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

credit_app = typer.Typer(help="Credit classes and lists (信用监管).", no_args_is_help=True)


@credit_app.command("recompute")
def recompute(
    as_of: Annotated[
        str | None, typer.Option(help="Evaluation date YYYY-MM-DD (default: today, China time)")
    ] = None,
) -> None:
    """Recompute every enterprise's score and class with the active policy (set-based)."""
    from qsampling.cli import fail, out, run_with_session
    from qsampling.context import cli_actor
    from qsampling.credit import service

    day: date | None = None
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of must be a date YYYY-MM-DD, got {as_of!r}", 2)

    async def _fn(session: Any) -> service.RecomputeReport:
        return await service.recompute_all(session, actor=cli_actor(), as_of=day)

    rep = run_with_session(_fn)
    out.print(
        f"credit recomputed: {rep.enterprises} enterprises as of {rep.as_of.isoformat()} "
        f"with policy v{rep.policy_version}, {rep.changed} class changes, "
        f"{rep.seconds:.2f} s"
    )


@credit_app.command("explain")
def explain(uscc: Annotated[str, typer.Argument(help="统一社会信用代码")]) -> None:
    """Print an enterprise's class and why (internal; never publish it)."""
    from qsampling.cli import out, run_with_session
    from qsampling.credit import service

    async def _fn(session: Any) -> str:
        v = await service.credit_view(session, uscc=uscc.strip().upper())
        cls = v.stored.credit_class if v.stored else v.assessment.credit_class
        return f"{v.enterprise.uscc} {v.enterprise.name}: {cls}\n{v.assessment.explanation}"

    out.print(run_with_session(_fn, commit=False), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
    app.add_typer(credit_app, name="credit")
