"""Registries of spaces, strategies, objectives and executors, and the CLI built from them."""

import dataclasses
import re
import subprocess
import sys
import textwrap

import pytest

import nord
from nord.cli import SEARCH_DEFAULTS, build_parser, main
from nord.design.spaces import SPACES, get_space, register_space
from nord.design.strategies import STRATEGIES, make_strategy, register_strategy
from nord.design.strategies.random_search import RandomSearch
from nord.errors import RegistrationError, UnknownNameError, UsageError
from nord.execution.executors import EXECUTORS, make_executor, register_executor
from nord.execution.objectives import OBJECTIVES, make_objective
from nord.registry import Registry


@pytest.fixture
def lazy_module(tmp_path, monkeypatch):
    """A module that counts its imports, and its name."""
    (tmp_path / "nord_lazy_probe.py").write_text(textwrap.dedent("""
        import builtins
        builtins.nord_lazy_probe_imports = getattr(builtins, "nord_lazy_probe_imports", 0) + 1

        class Thing:
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nord_lazy_probe", raising=False)
    yield "nord_lazy_probe"
    sys.modules.pop("nord_lazy_probe", None)
    import builtins
    if hasattr(builtins, "nord_lazy_probe_imports"):
        del builtins.nord_lazy_probe_imports


def test_a_reference_is_imported_on_first_use_only(lazy_module):
    registry = Registry("thing")
    registry.register("thing", f"{lazy_module}:Thing", summary="a thing")
    assert registry.names() == ["thing"] and "thing" in registry and len(registry) == 1
    assert registry.reference("thing") == f"{lazy_module}:Thing"
    assert registry.summary("thing") == "a thing"
    assert lazy_module not in sys.modules
    first = registry["thing"]
    assert first.__name__ == "Thing" and registry["thing"] is first
    import builtins
    assert builtins.nord_lazy_probe_imports == 1


def test_unknown_names_suggest_the_closest():
    registry = Registry("colour", how_to_add="register one with paint()")
    for name in ("red", "green", "blue"):
        registry.register(name, str)
    with pytest.raises(UnknownNameError) as caught:
        registry["gren"]
    assert str(caught.value) == ("unknown colour 'gren' (did you mean 'green'?); available: "
                                 "red, green, blue; register one with paint()")
    assert caught.value.name == "gren" and caught.value.choices == ["red", "green", "blue"]
    assert isinstance(caught.value, (UsageError, LookupError))
    with pytest.raises(UnknownNameError, match="^unknown colour 'purple'; available: red, "):
        registry["purple"]
    with pytest.raises(UnknownNameError):
        registry[["not", "hashable"]]


def test_registering_refuses_taken_and_malformed_names():
    registry = Registry("strategy")
    registry.register("mine", RandomSearch)
    registry.register("mine", RandomSearch)  # the same again: harmless
    with pytest.raises(RegistrationError, match="already registered .*random_search:"
                                                "RandomSearch.*replace=True"):
        registry.register("mine", dict)
    registry.register("mine", dict, replace=True)
    assert registry["mine"] is dict
    for bad in ("Mine", "2fast", "with space", ""):
        with pytest.raises(RegistrationError, match="lower-case"):
            registry.register(bad, dict)
    with pytest.raises(RegistrationError, match="not a 'package.module:attribute'"):
        registry.register("text", "nord.registry.Registry")
    registry.unregister("mine")
    assert "mine" not in registry
    with pytest.raises(UnknownNameError):
        registry.unregister("mine")


def test_a_broken_reference_says_what_is_missing():
    registry = Registry("executor")
    registry.register("gone", "nord.no_such_module:Executor")
    registry.register("typo", "nord.registry:Registri")
    with pytest.raises(RegistrationError, match="registered as nord.no_such_module:Executor, "
                                                "but nord.no_such_module cannot be imported"):
        registry["gone"]
    with pytest.raises(RegistrationError, match="but nord.registry has no Registri"):
        registry["typo"]


def test_the_decorator_form_registers_and_returns_the_class():
    registry = Registry("space")

    @registry.register("decorated", summary="from a decorator")
    class Decorated:
        pass

    assert registry["decorated"] is Decorated and registry.summary("decorated")


def test_the_built_in_registries_hold_what_the_thesis_runs_use():
    assert SPACES.names() == ["nasbench201", "nasbench101", "remnet", "deepneat", "gcn"]
    assert STRATEGIES.names() == ["evolution", "random", "local-search", "guided-evolution",
                                  "rl"]
    assert EXECUTORS.names() == ["serial", "process", "ray"]
    assert OBJECTIVES.names() == ["nasbench201", "nasbench101", "training", "predictor"]
    assert all(registry.summary(name) for registry in (SPACES, STRATEGIES, EXECUTORS, OBJECTIVES)
               for name in registry)
    assert type(get_space("nasbench201")).__name__ == "NASBench201Space"
    with pytest.raises(UnknownNameError, match="did you mean 'evolution'"):
        make_strategy("evolutoin", get_space("nasbench201"))
    with pytest.raises(UnknownNameError, match="did you mean 'training'"):
        make_objective("trainig")
    with pytest.raises(UnknownNameError, match="did you mean 'process'"):
        make_executor("proces", None)


@pytest.fixture
def registered_additions():
    """A strategy and an executor registered the way a user's plug-in would."""
    calls = []

    def counting_serial(objective, workers=1, **options):
        calls.append(workers)
        return EXECUTORS["serial"](objective, workers, **options)

    register_strategy("shuffled", RandomSearch, summary="random search under another name")
    register_executor("counting", counting_serial, summary="serial, counting its uses")
    register_space("nb201-copy", "nord.design.spaces.nasbench201:NASBench201Space",
                   summary="NAS-Bench-201 again")
    yield calls
    STRATEGIES.unregister("shuffled")
    EXECUTORS.unregister("counting")
    SPACES.unregister("nb201-copy")


def test_registered_additions_appear_in_help_and_run_from_the_command_line(
        registered_additions, tmp_path, capsys):
    text = build_parser()._subparsers._group_actions[0].choices["search"].format_help()
    assert re.search(r"\n  shuffled +random search under another name\n", text)
    assert "counting  serial, counting its uses" in text
    assert "nb201-copy   NAS-Bench-201 again" in text
    assert "one of evolution, random, local-search, guided-evolution, rl, shuffled" in re.sub(
        r"- ", "-", " ".join(text.split()))
    assert main(["search", "--strategy", "shuffled", "--executor", "counting", "--budget", "5",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert registered_additions == [1]
    assert "5 evaluations" in capsys.readouterr().out


def test_a_misspelt_choice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["search", "--space", "nasbench210", "--out", "x"])
    assert exited.value.code == 2
    assert "invalid choice: 'nasbench210'" in capsys.readouterr().err


def test_settings_the_space_cannot_take_exit_2_and_failures_exit_1(tmp_path, capsys):
    assert main(["search", "--space-option", "colour=red", "--out", str(tmp_path / "a"),
                 "--quiet"]) == 2
    assert "the nasbench201 space has no colour option (--colour)" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.sqlite").write_bytes(b"not a database" * 100)
    assert main(["search", "--out", str(tmp_path / "b"), "--resume", "--quiet"]) == 1
    assert "is not a readable run store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["search", "--space-option", "no-equals-sign", "--out", "x"])
    assert exited.value.code == 2


def test_the_search_help_states_the_defaults_a_run_uses():
    from nord.execution.runs import SearchSettings
    defaults = {f.name: f.default for f in dataclasses.fields(SearchSettings)}
    assert SEARCH_DEFAULTS == {name: defaults[name] for name in SEARCH_DEFAULTS}
    text = build_parser()._subparsers._group_actions[0].choices["search"].format_help()
    for name, value in SEARCH_DEFAULTS.items():
        assert f"(default: {value}" in text, name
    for group in ("what is searched, and how:", "benchmark tables", "training (",
                  "where evaluations run:", "the run folder:"):
        assert group in text


def test_defaults_are_shown_in_help_and_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    assert "evaluations per search (default: 30)" in text
    assert "--no-baseline         skip the random search\n" in text  # flags: no default shown
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"nord {nord.__version__}\n"


def test_the_help_imports_neither_torch_nor_a_space():
    code = ("import sys, nord.cli; nord.cli.build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'nord.design.spaces.remnet', "
            "'nord.execution.process_pool') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
