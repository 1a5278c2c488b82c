"""The command line's progress bar."""

from nord.execution.progress import ProgressBar
from nord.execution.run_loop import ProgressEvent


def test_the_bar_appears_with_the_first_result_not_before(capsys):
    with ProgressBar(10, "evolution") as bar:
        assert bar.bar is None  # a settings error raised now prints without a bar
        bar(ProgressEvent(None, 3, 10, 0.91))
        assert (bar.bar.n, bar.bar.total) == (3, 10)
    err = capsys.readouterr().err
    assert "evolution" in err and "3/10" in err and "best=0.91" in err
    with ProgressBar(5):
        pass
    assert capsys.readouterr().err == ""
