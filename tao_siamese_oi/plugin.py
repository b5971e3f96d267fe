"""The launcher plugin declaration: plain data built from the action table and the schema, no torch.

The launcher finds it through the ``tao_launcher.plugins`` entry point (docs/plugin_protocol.md). Actions run
locally through ``handler`` and in the image through ``optical_inspection <action> ...``.
"""

from tao_launcher.protocol import Action, PluginSpec

from tao_siamese_oi import __version__
from tao_siamese_oi.actions import ACTIONS, SECRET_KEYS, SPEC_OPTIONS
from tao_siamese_oi.automl_space import AUTOML
from tao_siamese_oi.config.schema import path_keys
from tao_siamese_oi.model_files import LATEST_MODEL_FILES
from tao_siamese_oi.pretrained import PREFIX
from tao_siamese_oi.service_specs import JOB_ENV, OUTPUT_KEYS

IMAGE = f"tao_siamese_oi:{__version__}"

PLUGIN = PluginSpec(
    name="optical_inspection",
    version=__version__,
    summary="SiameseOI optical inspection of PCB components (input vs golden image pairs).",
    image=IMAGE,
    image_build=(
        f"docker build -t {IMAGE} . in a checkout of tao_siamese_oi; on a CPU server add "
        "--build-arg BASE_IMAGE=python:3.11-slim"
    ),
    argv_prefix=("optical_inspection",),
    handler="tao_siamese_oi.entry_points.optical_inspection:run_action",
    actions=tuple(Action(a.name, a.help, a.example) for a in ACTIONS.values()),
    path_options=SPEC_OPTIONS,
    secret_keys=SECRET_KEYS,
    path_keys=path_keys(),
    output_keys=OUTPUT_KEYS,
    named_models=(PREFIX,),
    job_env=JOB_ENV,
    docker_options={"shm_size": "16G", "ipc_mode": "host"},
    schema="tao_siamese_oi.config.loader:default_spec",
    base_experiments=(
        {"name": "Siamese_Grid", "description": "compact, size-agnostic (the default)", "overrides": {}},
        {
            "name": "Siamese_Grid, pretrained on DeepPCB",
            "description": "starts from builtin:siamese_grid_deeppcb (public DeepPCB boards, MIT licence)",
            "overrides": {"train": {"pretrained_model_path": "builtin:siamese_grid_deeppcb"}},
        },
        {
            "name": "Siamese_3",
            "description": "TAO's SiameseOI network",
            "overrides": {"model": {"model_type": "Siamese_3", "model_backbone": "custom"}},
        },
    ),
    job_specs="tao_siamese_oi.service_specs:job_specs",
    inference_server="tao_siamese_oi.deploy.microservice:predictor",
    model_files={"latest": LATEST_MODEL_FILES},  # one model per job: no "best" one to tell apart
    automl=AUTOML,
)
