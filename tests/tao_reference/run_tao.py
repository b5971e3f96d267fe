"""Child process: load a checkpoint with TAO's OpticalInspectionModel and embed given inputs with it.

Reads one JSON request on stdin ({checkpoint, spec, inputs: .npy of (2, B, C, H, W)}) and prints one JSON line
({class, distances}). TAO's import needs NVIDIA's ``eff`` package, which is not installable: optical inspection
does not use it (no EFF archives), so an empty stand-in is put in its place. TAO calls ``.cuda()`` and
``torch.cuda.set_device`` unconditionally: both are no-ops here, on a machine without a GPU.
"""

import importlib.abc
import importlib.machinery
import json
import sys
import types


class EffStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any ``eff`` or ``eff.*`` module: every public name is an inert class."""

    def find_spec(self, name, path, target=None):
        if name == "eff" or name.startswith("eff."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []

        def attribute(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {"__init__": lambda self, *a, **k: None, "__call__": lambda self, *a, **k: None})

        module.__getattr__ = attribute
        return module

    def exec_module(self, module):
        pass


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    sys.meta_path.insert(0, EffStandIn())
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.cuda.set_device = lambda *args, **kwargs: None
    from nvidia_tao_pytorch.cv.optical_inspection.model.pl_oi_model import OpticalInspectionModel

    request = json.loads(sys.stdin.read())
    spec = OmegaConf.create(request["spec"])
    module = OpticalInspectionModel.load_from_checkpoint(
        request["checkpoint"], map_location="cpu", experiment_spec=spec, dm=None
    )
    module.eval()
    inputs = torch.from_numpy(np.load(request["inputs"]))
    with torch.no_grad():
        out_1, out_2 = module.model(inputs[0], inputs[1])
    distances = torch.nn.functional.pairwise_distance(out_1, out_2).tolist()
    print(json.dumps({"class": type(module).__name__, "distances": distances}))


if __name__ == "__main__":
    main()
