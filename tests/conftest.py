"""Suite-wide hooks: a summary line for the tests of optional extras (Ray), so a
CI log shows whether they ran or were skipped, and why."""

from collections import Counter
from importlib import metadata

#: test files of optional extras, and the distribution each needs
EXTRAS = {"tests/execution/test_ray_executor.py": "ray",
          "tests/execution/test_tensorboard_logger.py": "tensorboard",
          "tests/execution/test_mlflow_logger.py": "mlflow"}


def pytest_terminal_summary(terminalreporter):
    for path, extra in EXTRAS.items():
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
        try:
            installed = f"{extra} {metadata.version(extra)}"
        except metadata.PackageNotFoundError:
            installed = f"{extra} not installed"
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        line = f"{path} ({installed}): {counts}"
        if reasons:
            line += f"; skipped because: {'; '.join(sorted(reasons))}"
        terminalreporter.write_line(line)
