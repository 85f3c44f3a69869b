"""How a run is spread over processes; the model code stays single-device (torchtitan's habit).

``Parallelism`` is what the training loop asks of the layout: which data shard this process reads, how to
scale its loss, how to wrap the model, how to gather and restore state for a checkpoint, and the few
collectives the loop needs. ``single_process()`` is the trivial layout; ``from_environment`` builds the one a
``torchrun`` launch and the config's ``[parallel]`` table ask for (see ``parallelize.py``).
"""

from tfdojo.train.parallel.layout import Parallelism, single_process

__all__ = ["Parallelism", "single_process"]
