"""The run folder: what training records for later readers, and what reads it back."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pifexp.cli import main
from pifexp.data.cache import open_cache
from pifexp.data.splits import split_subjects
from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.models import NetworkSpec, build_model
from pifexp.synthetic import cohort_grid


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished tiny `pifexp train` run (2 seeds of 3 epochs)."""
    root = tmp_path_factory.mktemp("run")
    overrides = [
        "profile=quick", "task.input_shape=[32,38,32]", "data.synthetic.n_subjects=16",
        f"data.synthetic.out_dir={root / 'cohort'}", f"data.cache_dir={root / 'cache'}",
        "trainer.seeds=2", "trainer.max_epochs=3", "trainer.ignore_before=0",
        "trainer.patience=1", "trainer.batch_size=4", "trainer.progress=false",
        "data.progress=false",
    ]  # fmt: skip
    run_dir = root / "run"
    assert main(["train", "task=adni", "model=pif", *overrides, f"hydra.run.dir={run_dir}"]) == 0
    return run_dir


def test_a_checkpoint_and_its_spec_rebuild_the_network_without_the_config(trained_run, tmp_path):
    # only the seed's own files travel: no config.yaml, no input.json
    seed_dir = tmp_path / "seed-0"
    seed_dir.mkdir()
    for name in ("best.pt", "network.json", "test_predictions.csv"):
        (seed_dir / name).write_bytes((trained_run / "seed-0" / name).read_bytes())
    state = torch.load(seed_dir / "best.pt", weights_only=True)
    spec = NetworkSpec.from_json(json.loads((seed_dir / "network.json").read_text()))
    model = build_model(spec)
    model.load_state_dict(state)
    model.eval()

    # the rebuilt network gives the run's own test predictions
    cohort = open_cache(rundir.read_input(trained_run)["cache"])
    predictions = rundir.read_predictions(seed_dir)
    x = torch.from_numpy(np.asarray(cohort.volumes[predictions["row"].to_numpy()])).unsqueeze(1)
    with torch.no_grad():
        probabilities = torch.sigmoid(model(x.float()).squeeze(1)).numpy()
    np.testing.assert_allclose(probabilities, predictions["probability"], atol=1e-6)
    # and so does rundir's reader
    assert torch.equal(rundir.load_network(seed_dir).logit.weight, model.logit.weight)


def test_training_records_the_input_grid_and_the_data_source(trained_run):
    recorded = rundir.read_input(trained_run)
    grid = rundir.read_input_grid(trained_run)
    assert grid.shape == (32, 38, 32)
    # the synthetic cohort's grid: the quick profile's box around the brain, at 32x38x32
    expected = cohort_grid((32, 38, 32), [166, 228, 166], [0, -17, 5])
    np.testing.assert_allclose(grid.affine, expected.affine)
    assert recorded["preprocess"]["target_shape"] == [32, 38, 32]
    assert recorded["data_source"]["source"] == "synthetic"
    assert "not the paper's data" in recorded["data_source"]["text"]
    for seed in (0, 1):
        spec = rundir.read_network_spec(rundir.seed_dir(trained_run, seed))
        assert spec.name == "pif" and spec.input_shape == (32, 38, 32)


def test_finished_seeds_are_those_with_metrics(trained_run, tmp_path):
    assert [seed for seed, _ in rundir.finished_seeds(trained_run)] == [0, 1]
    assert [seed for seed, _ in rundir.finished_seeds(trained_run, only=[1])] == [1]
    assert rundir.seed_done(trained_run, 1) and not rundir.seed_done(trained_run, 2)
    assert list(rundir.read_results(trained_run).seed) == [0, 1]
    assert rundir.read_results(tmp_path).empty


def test_split_file_round_trip(tmp_path):
    frame = {"subject_id": [f"s{i}" for i in range(40)], "label": [i % 2 for i in range(40)]}
    split = split_subjects(pd.DataFrame(frame), 0, 0.2, 0.2)
    path = rundir.write_split(tmp_path / "seed-0", split)
    assert rundir.read_split(path.parent) == split
    assert json.loads(path.read_text())["test"] == split["test"]
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]
    path.write_text(json.dumps({"train": []}))
    with pytest.raises(PifexpError, match="must hold train, val, test"):
        rundir.read_split(path.parent)


def test_a_run_folder_of_other_settings_is_refused(tmp_path):
    rundir.prepare(tmp_path, {"trainer": {"lr": 0.1, "seeds": 2}})
    rundir.prepare(tmp_path, {"trainer": {"lr": 0.1, "seeds": 5}})  # more seeds: same run
    with pytest.raises(PifexpError, match=r"other settings \(trainer.lr: 0.1 -> 0.2\)"):
        rundir.prepare(tmp_path, {"trainer": {"lr": 0.2, "seeds": 2}})
