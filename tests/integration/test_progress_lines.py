"""A long step is never silent in a log (a container's, a scheduler's, the job service's job.log): without a
terminal there is no progress bar, so training says where it is every progress.LOG_EVERY_S seconds of an epoch and
sums up each epoch in one line."""

import re

import yaml
from tao_siamese_oi.entry_points.optical_inspection import run_action

from tests.conftest import tiny_spec_dict


def test_training_in_a_log_reports_within_and_after_each_epoch(tiny_data, tmp_path, capsys, monkeypatch):
    from tao_siamese_oi.utils import progress

    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)  # every batch: as a long epoch would every 30 s
    spec = tiny_spec_dict(tiny_data, tmp_path / "results")
    spec["train"]["num_epochs"] = 2
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_action(["train", "-e", str(path)]) == 0
    lines = [line.removeprefix("INFO: ") for line in capsys.readouterr().err.splitlines()]
    within = [line for line in lines if re.match(r"Epoch [12]/2: \d+ of \d+ batches \(\d+ %\), \d+ pairs/s", line)]
    batches = int(re.search(r"of (\d+) batches", within[0]).group(1))
    assert len(within) == 2 * batches and within[-1].endswith("about 0 s left in the epoch"), within
    done = [line for line in lines if line.startswith("Epoch ") and " done in " in line]
    assert [line.split(" done")[0] for line in done] == ["Epoch 1/2", "Epoch 2/2"]
    assert "train_loss" in done[0] and "val_auroc" in done[0] and done[-1].endswith("about 0 s left")
