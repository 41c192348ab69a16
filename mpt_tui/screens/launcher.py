"""The launcher: choose methods, shots, seeds, backbone, data and every ablation setting (or a
preset), see how many runs that means and how long they should take, and launch them.

One screen, one form: its length is the form's widgets, reading them, remembering them and the
plan they make; the fields themselves come from the config's declaration."""

from __future__ import annotations

import os

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, SelectionList, Static

from mpt_engine.config import PAPER_SHOTS, Method, RunConfig, options
from mpt_engine.errors import InvalidInput, MptError
from mpt_engine.grid import expand, parse_values
from mpt_engine.presets import PRESETS, preset_settings
from mpt_engine.store import pending_runs
from mpt_tui import state
from mpt_tui.render import duration
from mpt_tui.wording import LABELS, in_app_words

# Every config option is a text field (a comma list) but those with widgets of their own.
OWN_WIDGETS = ("method", "shots", "data")
TEXT_FIELDS = tuple(spec for spec in options() if spec.name not in OWN_WIDGETS)
UNDER_METHODS = 2  # seeds and backbone sit under the methods
# The widget of each option an engine error may name that is not a text field of its own.
WIDGETS = {
    "shots": "#shots-custom",
    "gpus": "#gpus",
    "gpus_per_run": "#gpus",
    "runs_per_gpu": "#runs-per-gpu",
}
DATA_CHOICES = ("hub", "local", "synthetic")


class LauncherScreen(Screen):
    AUTO_FOCUS = "#preset"
    BINDINGS = [("ctrl+r", "launch", "Launch"), ("ctrl+l", "reset", "Clear form")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="form"):
            with Horizontal(classes="form-row"):
                yield Label("preset", classes="field-label")
                yield Select(
                    [(name, name) for name in tuple(PRESETS)],
                    id="preset",
                    prompt="none",
                    compact=True,
                )
                yield Label("data", classes="field-label")
                yield Select(
                    [(name, name) for name in DATA_CHOICES],
                    id="data",
                    prompt="default",
                    compact=True,
                )
            yield Static("", id="preset-summary")
            with Horizontal(id="choices"):
                with Vertical():
                    yield Label("methods")
                    yield SelectionList[str](
                        *((m.value.upper(), m.value) for m in Method), id="methods", compact=True
                    )
                    yield from self._text_rows(TEXT_FIELDS[:UNDER_METHODS])
                with Vertical():
                    yield Label("shots per class")
                    yield SelectionList[int](
                        *((str(k), k) for k in PAPER_SHOTS), id="shots", compact=True
                    )
                    yield Input(placeholder="other k: e.g. 3,5", id="shots-custom", compact=True)
            yield from self._text_rows(TEXT_FIELDS[UNDER_METHODS:])
            with Horizontal(classes="form-row"):
                yield Label("executor", classes="field-label")
                yield Select(
                    [("this machine", "local"), ("Slurm job array", "slurm")],
                    value="local",
                    allow_blank=False,
                    id="executor",
                    compact=True,
                )
                yield Label("partition", classes="field-label")
                yield Input(id="partition", placeholder="Slurm default", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("GPUs", classes="field-label", id="gpus-label")
                yield Input(id="gpus", compact=True)
                yield Label("runs per GPU", classes="field-label", id="runs-per-gpu-label")
                yield Input(id="runs-per-gpu", compact=True)
        with Horizontal(id="launch-bar"):
            yield Static("", id="plan")
            yield Button("Launch", id="launch", variant="primary")
        yield Footer()

    def _text_rows(self, fields) -> ComposeResult:
        for spec in fields:
            with Horizontal(classes="form-row"):
                yield Label(spec.shown, classes="field-label")
                yield Input(id=f"field-{spec.name}", tooltip=spec.hint, compact=True)

    def on_mount(self) -> None:
        self.errors: dict[str, str] = {}  # field id -> what is wrong with its value
        self._paces = None  # paces(), until the store changes
        values, notice = state.load()
        if notice:
            self.notify(notice, severity="warning")
        self._restore(values)
        self._update_placeholders()
        self._describe_preset()
        self.refresh_plan()
        # Runs finishing anywhere change what is left to run.
        self.watch(self.app, "store_changed", self._store_changed, init=False)

    def _store_changed(self) -> None:
        self._paces = None
        if self.is_current:
            self.refresh_plan()

    def paces(self):
        """How fast finished runs went, read once per state of the store (not per keystroke)."""
        from mpt_engine.results import Paces

        if self._paces is None:
            self._paces = Paces(self.app.index.runs())
        return self._paces

    def on_screen_resume(self) -> None:
        self.refresh_plan()

    # -- reading the form --------------------------------------------------------------------

    def _preset(self) -> str | None:
        value = self.query_one("#preset", Select).value
        return value if isinstance(value, str) else None

    def _data(self) -> str | None:
        value = self.query_one("#data", Select).value
        return value if isinstance(value, str) else None

    def form_values(self) -> dict[str, str]:
        """The form as text, for remembering it."""
        values = {
            f"field-{spec.name}": self.query_one(f"#field-{spec.name}", Input).value
            for spec in TEXT_FIELDS
        }
        values["shots-custom"] = self.query_one("#shots-custom", Input).value
        values["gpus"] = self.query_one("#gpus", Input).value
        values["runs-per-gpu"] = self.query_one("#runs-per-gpu", Input).value
        values["partition"] = self.query_one("#partition", Input).value
        values["executor"] = str(self.query_one("#executor", Select).value)
        values["methods"] = ",".join(self.query_one("#methods", SelectionList).selected)
        values["shots"] = ",".join(map(str, self.query_one("#shots", SelectionList).selected))
        values["preset"] = self._preset() or ""
        values["data"] = self._data() or ""
        return values

    def lists(self) -> dict[str, list]:
        """The option lists of the grid; a field left empty keeps the preset's or default."""
        lists: dict[str, list] = {}
        methods = self.query_one("#methods", SelectionList).selected
        if methods:
            lists["method"] = list(methods)
        shots = list(self.query_one("#shots", SelectionList).selected)
        custom = self.query_one("#shots-custom", Input).value.strip()
        shots += parse_values("shots", custom) if custom else []
        if shots:
            lists["shots"] = shots
        for spec in TEXT_FIELDS:
            text = self.query_one(f"#field-{spec.name}", Input).value.strip()
            if text:
                lists[spec.name] = parse_values(spec.name, text)
        if self._data():
            lists["data"] = [self._data()]
        return lists

    def on_slurm(self) -> bool:
        return self.query_one("#executor", Select).value == "slurm"

    def gpu_slots(self) -> list[str]:
        """Local: the GPU indices to run on in parallel (none: one run at a time)."""
        from mpt_engine.launch import gpu_slots  # imports torch: not before a plan is made

        return gpu_slots(self.query_one("#gpus", Input).value)

    def runs_per_gpu(self) -> int:
        """Local: worker processes per GPU (without GPUs: sharing the CPU); empty: the default
        from the GPU's free memory."""
        from mpt_engine.launch import runs_per_slot

        text = self.query_one("#runs-per-gpu", Input).value.strip()
        if text and not text.isdigit():
            raise InvalidInput(
                f"{{runs_per_gpu}} {text!r}: expected a number such as 2",
                field="runs_per_gpu",
                value=text,
            )
        return runs_per_slot(int(text) if text else None, self.gpu_slots())

    def slurm_options(self):
        """Slurm: the partition and the GPUs of each array task (default 1)."""
        from mpt_engine.slurm import SlurmOptions

        text = self.query_one("#gpus", Input).value.strip() or "1"
        if not text.isdigit():
            raise InvalidInput(
                "{gpus_per_run}: expected a number such as 1 (0 on a CPU cluster)",
                field="gpus_per_run",
            )
        partition = self.query_one("#partition", Input).value.strip() or None
        return SlurmOptions(partition=partition, gpus_per_run=int(text))

    def _executor_changed(self) -> None:
        slurm = self.on_slurm()
        self.query_one("#gpus-label", Label).update("GPUs per run" if slurm else "GPUs")
        self.query_one("#gpus", Input).placeholder = (
            "per array task, e.g. 1 (0 on a CPU cluster)"
            if slurm
            else "e.g. 0,1 (empty: one run at a time)"
        )
        for part in ("#runs-per-gpu", "#runs-per-gpu-label"):  # Slurm: one run per task
            self.query_one(part).display = not slurm
        self.query_one("#runs-per-gpu", Input).placeholder = "from free GPU memory; CPU: 1"
        self._check_field(self.query_one("#gpus", Input))

    # -- validation --------------------------------------------------------------------------

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        if event.input.id != "partition":  # any partition name may exist on a cluster
            self._check_field(event.input)
        self.refresh_plan()

    @on(SelectionList.SelectedChanged)
    @on(Select.Changed)
    def _choice_changed(self) -> None:
        self._executor_changed()
        self._update_placeholders()
        self._describe_preset()
        self.refresh_plan()

    def _check_field(self, widget: Input) -> None:
        """Flag a bad value before anything is launched: the field in red, the message in the
        launch bar (refresh_plan)."""
        name = widget.id.removeprefix("field-")
        message = ""
        text = widget.value.strip()
        if text:
            try:
                if name == "gpus":
                    self.slurm_options() if self.on_slurm() else self.gpu_slots()
                elif name == "runs-per-gpu":
                    self.runs_per_gpu()
                else:
                    field = "shots" if name == "shots-custom" else name
                    for value in parse_values(field, text):
                        RunConfig(**{field: value})
            except (MptError, ValueError) as problem:
                message = in_app_words(problem)
        widget.set_class(bool(message), "invalid")
        if message:
            self.errors[widget.id] = message
        else:
            self.errors.pop(widget.id, None)

    def _mark_plan_problem(self, field: str | None) -> None:
        """Mark the field a problem of the whole plan names (prompt length against max length,
        a model folder that is not one); unmark the last one."""
        for widget in self.query(".plan-invalid"):
            widget.remove_class("plan-invalid")
        found = self.query(WIDGETS.get(field, f"#field-{field}")) if field else None
        if found:
            found.first().add_class("plan-invalid")

    def plan(self):
        """The runs the form describes, their precision resolved for where they train (as the
        run ids need); raises MptError for a bad form."""
        if self.on_slurm():
            auto_precision = self.slurm_options().auto_precision
            return expand(self._preset(), self.lists(), os.environ, auto_precision)
        from mpt_engine.launch import local_grid  # imports torch: not before a plan is made

        return local_grid(self._preset(), self.lists(), slots=self.gpu_slots(), environ=os.environ)

    def refresh_plan(self) -> None:
        plan = self.query_one("#plan", Static)
        button = self.query_one("#launch", Button)
        problems = list(self.errors.values())
        self._mark_plan_problem(None)
        if not problems:
            try:
                configs = self.plan()
                self.slurm_options() if self.on_slurm() else self.gpu_slots()
            except (MptError, ValueError) as problem:
                problems = [in_app_words(problem)]
                self._mark_plan_problem(getattr(problem, "field", None))
        if problems:
            lines = (Text.assemble(("✗ ", "bold red"), problem) for problem in problems)
            plan.update(Text("\n").join(lines))
            button.disabled = True
            return
        todo = pending_runs(configs, self.app.index.status)
        seconds = self.paces().estimate(todo)
        estimate = "time unknown" if seconds is None else f"≈ {duration(seconds)}"
        summary = Text.assemble(
            (str(len(configs)), "bold"),
            f" run{'s' if len(configs) != 1 else ''} · {len(configs) - len(todo)} finished · ",
            (str(len(todo)), "bold"),
            f" to run · {estimate if todo else 'nothing to do'}",
        )
        plan.update(summary)
        button.disabled = not todo

    def _update_placeholders(self) -> None:
        """Each empty field shows what it will be: the preset's list or the default."""
        preset = self._preset()
        defaults = RunConfig().to_dict()
        defaults.update(PRESETS[preset].settings if preset else {})
        lists = PRESETS[preset].lists if preset else {}
        for spec in TEXT_FIELDS:
            value = lists.get(spec.name, defaults.get(spec.name))
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            placeholder = spec.unset if value is None else shown
            self.query_one(f"#field-{spec.name}", Input).placeholder = placeholder

    def _describe_preset(self) -> None:
        """Say what the preset runs: its boxes stay unticked, its lists are not fields."""
        summary = self.query_one("#preset-summary", Static)
        preset = self._preset()
        summary.display = preset is not None
        summary.update(preset_summary(preset) if preset else "")

    # -- remembering -------------------------------------------------------------------------

    def _restore(self, values: dict[str, str]) -> None:
        for key, text in values.items():
            if key.startswith("field-") or key in (
                "shots-custom",
                "gpus",
                "runs-per-gpu",
                "partition",
            ):
                found = self.query(f"#{key}")
                if found:
                    found.first(Input).value = text
        for key, cast in (("methods", str), ("shots", int)):
            selection = self.query_one(f"#{key}", SelectionList)
            for item in filter(None, values.get(key, "").split(",")):
                try:  # a value this version does not offer (or not a number) is left out
                    selection.select(cast(item))
                except (KeyError, ValueError):
                    continue
        for key, choices in (
            ("preset", tuple(PRESETS)),
            ("data", DATA_CHOICES),
            ("executor", ("local", "slurm")),
        ):
            if values.get(key) in choices:
                self.query_one(f"#{key}", Select).value = values[key]

    # -- actions -----------------------------------------------------------------------------

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        try:
            configs = self.plan()
            slurm = self.slurm_options() if self.on_slurm() else None
            slots = [] if slurm else self.gpu_slots()
            per_slot = 1 if slurm else self.runs_per_gpu()
        except (MptError, ValueError) as problem:
            self.notify(in_app_words(problem), severity="error")
            return
        state.save(self.form_values())
        if slurm:
            self.app.submit(configs, slurm)
        else:
            self.app.launch(configs, slots, per_slot)

    def action_reset(self) -> None:
        for widget in self.query(Input):
            widget.value = ""
        for selection in self.query(SelectionList):
            selection.deselect_all()
        for select in self.query(Select):
            if select.id != "executor":
                select.clear()


def preset_summary(name: str) -> Text:
    """`smoke: sp, mpt × k=4 × seeds 1,2 — tiny model, synthetic data, 3 epochs`, from the
    engine's presets: the grid's lists, then its run settings as its runs get them (local data
    when MPT_DATA_DIR is set), else its description."""
    grid = PRESETS[name]
    settings = preset_settings(name)
    axes = [_axis(field, values) for field, values in grid.lists.items()]
    if len(grid.variants) > 1:
        axes.append(f"{len(grid.variants)} variants")
    shown = [f"{settings[key]} {key}" for key in ("model", "data", "epochs") if key in settings]
    return Text.assemble(
        (f"{name}: ", "bold"), " × ".join(axes), " — ", ", ".join(shown) or grid.description
    )


def _axis(field: str, values: tuple) -> str:
    if field == "method":
        return ", ".join(values)
    listed = ",".join(map(str, values))
    return f"k={listed}" if field == "shots" else f"{LABELS[field]} {listed}"
