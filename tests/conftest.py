"""Suite-wide hooks: a summary line for the tests of optional extras (Ray,
TensorBoard, MLflow), so a CI log shows whether they ran or were skipped, and why."""

import shutil
from collections import Counter
from importlib import metadata

#: test files of optional extras, and the distributions that provide each (any one)
EXTRAS = {"tests/execution/test_ray_executor.py": ("ray",),
          "tests/execution/test_tensorboard_logger.py": ("tensorboard",),
          "tests/execution/test_mlflow_logger.py": ("mlflow", "mlflow-skinny")}


#: test files that need a program, and the names it may have on the PATH
PROGRAMS = {"tests/analysis/test_browser.py": ("chromium", "chromium-browser")}


def _installed(path) -> str:
    if path in PROGRAMS:
        found = [shutil.which(name) for name in PROGRAMS[path]]
        return next((f for f in found if f), f"{PROGRAMS[path][0]} not installed")
    extra = EXTRAS[path]
    for name in extra:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{extra[0]} not installed"


def pytest_terminal_summary(terminalreporter):
    for path in list(EXTRAS) + list(PROGRAMS):
        outcomes = Counter()
        reasons = set()
        for outcome in ("passed", "failed", "skipped", "error"):
            for report in terminalreporter.stats.get(outcome, []):
                if getattr(report, "nodeid", "").startswith(path) and report.when in (
                        "call", "setup") and not (outcome == "passed" and report.when == "setup"):
                    outcomes[outcome] += 1
                    if outcome == "skipped" and isinstance(report.longrepr, tuple):
                        reasons.add(report.longrepr[2])
        if not outcomes:
            continue
        installed = _installed(path)
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        line = f"{path} ({installed}): {counts}"
        if reasons:
            line += f"; skipped because: {'; '.join(sorted(reasons))}"
        terminalreporter.write_line(line)
