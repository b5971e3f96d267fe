"""The job service's hook: a child job scores its model as the model was trained, whatever the schema's defaults
a client sends say."""

import yaml

from tao_siamese_oi.service_specs import job_specs


def test_a_child_takes_the_model_and_input_preparation_of_the_job_that_made_its_model(tmp_path):
    train_job = tmp_path / "state" / "acme" / "t1"
    trained = {"model": {"model_type": "Siamese_3", "embedding_vectors": 8},
               "dataset": {"image_width": 24, "image_height": 24, "input_map": {"A": 0, "B": 1}, "num_input": 2,
                           "augmentation_config": {"rgb_input_mean": [0.5, 0.5, 0.5]}, "batch_size": 64}}  # fmt: skip
    train_job.mkdir(parents=True)
    (train_job / "spec.yaml").write_text(yaml.safe_dump(trained))
    schema_defaults = {"model": {"model_type": "Siamese_Grid"}, "dataset": {"image_width": 128, "batch_size": 8}}
    ancestors = [{"action": "train", "results_dir": str(train_job / "results")}]
    spec = job_specs("evaluate", schema_defaults, {"eval": [str(tmp_path / "test.csv")]}, ancestors, "/r")
    assert spec["evaluate"]["checkpoint"] == f"{train_job}/results/train/oi_model_latest.pth"
    assert spec["model"] == trained["model"]
    assert {k: spec["dataset"][k] for k in ("image_width", "image_height", "num_input", "input_map")} == {
        "image_width": 24, "image_height": 24, "num_input": 2, "input_map": {"A": 0, "B": 1}}  # fmt: skip
    assert spec["dataset"]["augmentation_config"] == {"rgb_input_mean": [0.5, 0.5, 0.5]}
    assert spec["dataset"]["batch_size"] == 8  # how to score is the child's: not a property of the model
    assert spec["dataset"]["test_dataset"]["csv_path"] == str(tmp_path / "test.csv")
    assert schema_defaults["dataset"]["image_width"] == 128  # the client's specs are not changed in place

    for broken in (None, b"model: [unclosed", b"\xff\xfe not text", b"!!python/object:os.system {}"):
        (train_job / "spec.yaml").unlink(missing_ok=True)  # none: a model from before the service kept specs
        if broken is not None:  # or one the job's own code rewrote
            (train_job / "spec.yaml").write_bytes(broken)
        spec = job_specs("evaluate", schema_defaults, {}, ancestors, "/r")
        assert spec["model"] == {"model_type": "Siamese_Grid"} and spec["dataset"]["image_width"] == 128, broken
