"""An autouse fixture for tests of tiny models: one intra-op thread (tests marked slow, on real weights, keep all).

Tiny matrices gain nothing from a second thread, and on a loaded machine two OpenMP threads that spin-wait for
each other made these tests 30x slower. Import it into a test module to apply it there.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread(request):
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
