"""Minimal example of the grafx_register_processors hook (run by the test suite)."""

import torch

from grafx_core import ProcessorSpec, hookimpl


class Invert(torch.nn.Module):
    """Polarity inversion: no parameters."""

    def parameter_size(self):
        return {}

    def forward(self, x):
        return -x


@hookimpl
def grafx_register_processors():
    return [ProcessorSpec("invert", Invert, "Polarity inversion", gradient="autograd")]


# In a distribution, the entry point `[project.entry-points.grafx_core] mine = "my_package.plugin"`
# registers this module. Here it is registered in memory, on a registry of its own:
if __name__ == "__main__":
    import sys

    from grafx_core.registry import Registry

    registry = Registry(default_plugins=(), autoload=False)
    registry.register(sys.modules[__name__], "mine")
    invert = registry.get_processor("mine:invert")
    assert torch.equal(invert(torch.ones(1, 2, 4)), -torch.ones(1, 2, 4))
    print([info.name for info in registry.list_processors()])
