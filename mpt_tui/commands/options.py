"""The config's options on the command line, built from their one declaration (config.option):
the typed options of `mpt run`, the comma lists of `mpt grid`, and the rerun line of a stored
run."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import shlex
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from mpt_engine import config as run_config
from mpt_engine.config import Option, options

LIST = "comma list: "


def flag(name: str) -> str:
    """The command-line spelling of an option: aux_size -> --aux-size (how the CLI phrases the
    options engine errors name)."""
    return f"--{name.replace('_', '-')}"


def field_help(spec: Option) -> str:
    """The option's help with its choices, when it does not name them all, and its default (an
    unset default is explained by the help)."""
    default = {f.name: f.default for f in dataclasses.fields(run_config.RunConfig)}[spec.name]
    text = spec.help
    choices = _choices(spec.name)
    if choices and not all(choice in text for choice in choices):
        text += f" (one of {', '.join(choices)})"
    if default is None:
        return text
    return f"{text} [default: {getattr(default, 'value', default)}]"


def _choices(name: str) -> list[str]:
    """The values of an option that takes one of a few (an enum field); [] for the others."""
    kind = _option_type(name)
    return [member.value for member in kind] if isinstance(kind, enum.EnumMeta) else []


def _option_type(name: str) -> type:
    """The field's type without None: int, float, str or its enum."""
    hint = typing.get_type_hints(run_config.RunConfig)[name]
    if isinstance(hint, types.UnionType):  # X | None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def _parameter(spec: Option, listed: bool) -> inspect.Parameter:
    from rich.markup import escape  # "[default: ...]" is not a markup tag

    flags = [flag(spec.name), *(spec.grid_flags if listed else ()), *filter(None, [spec.short])]
    typed = str if listed else _option_type(spec.name)
    info = typer.Option(
        *flags,
        help=escape((LIST if listed else "") + field_help(spec)),
        rich_help_panel=spec.panel,
        show_default=False,
        case_sensitive=False,
        # the help names the choices: "<hub|local|synthetic>" would narrow the help column
        # until an 80-column terminal cut the defaults
        metavar="<choice>" if _choices(spec.name) and not listed else None,
    )
    return inspect.Parameter(
        spec.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[typed | None, info],
    )


def with_config_options(listed: bool) -> Callable[[Callable], Callable]:
    """Give a command every config option (as comma lists when `listed`); the command receives
    them as one mapping, `given` (field name -> value or None), beside its own parameters."""

    def decorate(command: Callable) -> Callable:
        own = [
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for name, parameter in inspect.signature(command, eval_str=True).parameters.items()
            if name != "given"
        ]
        specs = options()

        def with_options(**values):
            given = {spec.name: values.pop(spec.name) for spec in specs}
            return command(given=given, **values)

        functools.update_wrapper(with_options, command, ("__module__", "__name__", "__doc__"), ())
        del with_options.__wrapped__  # its signature is this one, typed below
        parameters = [_parameter(spec, listed) for spec in specs]
        with_options.__signature__ = inspect.Signature([*parameters, *own])  # type: ignore[attr-defined]
        return with_options

    return decorate


def rerun_line(stored) -> str:
    """The command that reruns a stored run, with the data folder it read (local data)."""
    return run_command(stored.config, stored.record.get("data_dir"))


def run_command(values: Mapping[str, Any], data_dir: str | None = None) -> str:
    """The `mpt run` command that rebuilds a stored configuration: method, shots and seed, then
    every option that differs from the defaults; preceded by `MPT_DATA_DIR=...` when the run
    read local data from `data_dir`."""
    config = run_config.RunConfig.from_dict(values).resolved()
    baseline = run_config.RunConfig(method=config.method, shots=config.shots).resolved().to_dict()
    stored = config.to_dict()
    always = ("method", "shots", "seed")
    words = [
        f"{flag(spec.name)} {shlex.quote(str(stored[spec.name]))}"
        for spec in options()
        if spec.name in always
        or (stored[spec.name] is not None and stored[spec.name] != baseline[spec.name])
    ]
    local = stored["data"] == "local" and data_dir
    return " ".join(
        [*([f"MPT_DATA_DIR={shlex.quote(data_dir)}"] if local else []), "mpt run", *words]
    )
