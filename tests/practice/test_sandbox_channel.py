"""The judge <-> worker channel on its own (two peers over pipes, one in a thread; no sandbox, no processes).

Values must survive the wire exactly; gradients across it must equal plain local autograd (the reference);
in-place changes must come back to the caller's objects; anything malformed must be a ChannelError.
"""

import json
import math
import os
import struct
import threading
from types import SimpleNamespace

import pytest
import torch

from tfdojo.practice.code.channel import DTYPES, Caps, ChannelError, Peer, Remote, read_frame, write_frame


def serve_forever(peer: Peer) -> None:
    while True:
        try:
            header, blob = read_frame(peer.rfd, peer.caps)
        except ChannelError:
            return
        peer.serve(header, blob)


@pytest.fixture
def connect():
    """connect(obj) -> a Remote for ``obj`` served by a peer in a thread; the caller's peer may share everything."""
    opened = []

    def make(obj, share=lambda o: True):
        a_r, b_w = os.pipe()
        b_r, a_w = os.pipe()
        server = Peer(b_r, b_w)
        server.export(obj)
        thread = threading.Thread(target=serve_forever, args=(server,), daemon=True)
        thread.start()
        opened.append((thread, a_w, [a_r, b_r, b_w]))
        client = Peer(a_r, a_w, share=share)
        return Remote(client, 0), client

    yield make
    for thread, a_w, rest in opened:  # the server sees the end of its input and stops before its fds close
        os.close(a_w)
        thread.join()
        for fd in rest:
            os.close(fd)


def test_values_cross_exactly(connect) -> None:
    remote, _ = connect(SimpleNamespace(echo=lambda *a, **k: (a, k)))
    tensors = []
    for dtype in DTYPES.values():
        t = (torch.arange(12) % 2 == 0) if dtype == torch.bool else (torch.arange(12) - 5).to(dtype)
        tensors.append(t.reshape(3, 4)[:, ::2])  # a non-contiguous view
    values = (None, True, 7, -1.5, float("inf"), "text", (1, [2, {"k": (3,)}]), {(1, "a"): 2}, slice(1, None, 2),
              torch.float16, torch.Size([2, 3]), torch.empty(0, 3), *tensors)  # fmt: skip
    args, kwargs = remote.echo(*values, key=torch.tensor(2.5, dtype=torch.bfloat16))
    assert len(args) == len(values)
    for got, want in zip(args, values, strict=True):
        if isinstance(want, torch.Tensor):
            assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want), (got, want)
        elif isinstance(want, float) and math.isinf(want):
            assert got == want
        else:
            assert got == want and type(got) is type(want), (got, want)
    assert kwargs["key"].dtype == torch.bfloat16 and kwargs["key"].item() == 2.5


def test_generator_state_goes_and_comes_back(connect) -> None:
    remote, _ = connect(SimpleNamespace(draw=lambda g: torch.rand(3, generator=g)))
    g, reference = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(remote.draw(g), torch.rand(3, generator=reference))
    assert torch.equal(remote.draw(g), torch.rand(3, generator=reference)), "the caller's generator advanced"


def test_gradients_match_local_autograd(connect) -> None:
    def f(x, w):
        return torch.tanh(x @ w).sum(-1), x.argmax(-1)

    remote, _ = connect(SimpleNamespace(f=f))
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    up = torch.randn(4, dtype=torch.float64)
    out, idx = remote.f(x, w)
    assert idx.dtype == torch.long and not idx.requires_grad
    got = torch.autograd.grad((out * up).sum(), [x, w])
    xr, wr = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    want = torch.autograd.grad((f(xr, wr)[0] * up).sum(), [xr, wr])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_gradients_reach_the_callers_weights_through_its_callbacks(connect) -> None:
    """The served side calls back a function of the caller's; autograd on the caller reaches that function's
    weights and the input (the MoE experts case)."""
    remote, _ = connect(SimpleNamespace(apply=lambda x, fns: sum(fn(x * (i + 1)) for i, fn in enumerate(fns))))
    w = [torch.randn(3, 3, dtype=torch.float64, requires_grad=True) for _ in range(2)]

    def expert(i):
        return lambda x: torch.sin(x @ w[i])

    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    got = torch.autograd.grad(remote.apply(x, [expert(0), expert(1)]).square().sum(), [x, *w])
    want = torch.autograd.grad(sum(expert(i)(x * (i + 1)) for i in range(2)).square().sum(), [x, *w])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_in_place_changes_come_back_to_the_callers_objects(connect) -> None:
    def scale(params, factor, table):
        for p in params:
            p.grad.mul_(factor)
        table["seen"] = len(table)

    remote, _ = connect(SimpleNamespace(scale=scale))
    params = [torch.nn.Parameter(torch.ones(2)) for _ in range(2)]
    for p in params:
        p.grad = torch.full((2,), 3.0)
    grads, table = [p.grad for p in params], {"a": 1}
    remote.scale(iter(params), 0.5, table)
    assert all(p.grad is g and torch.equal(g, torch.full((2,), 1.5)) for p, g in zip(params, grads, strict=True))
    assert table == {"a": 1, "seen": 1}


def test_remote_objects_cannot_pose_as_values(connect) -> None:
    class Cache:
        def __init__(self):
            self.length = 0

        def append(self, n):
            self.length += n
            return self.length

    remote, _ = connect(SimpleNamespace(Cache=Cache, size=lambda c: c.length))
    cache = remote.Cache()
    assert cache.append(3) == 3 and cache.length == 3 and remote.size(cache) == 3
    with pytest.raises(TypeError):
        bool(cache)
    assert cache != 3
    with pytest.raises(AttributeError):
        cache.__dict__  # noqa: B018 - private names never cross
    with pytest.raises(AttributeError):
        cache.length = 5


def test_errors_keep_their_builtin_type(connect) -> None:
    def bad(kind):
        raise {"value": ValueError, "key": KeyError, "custom": type("Custom", (Exception,), {})}[kind]("no")

    remote, _ = connect(SimpleNamespace(bad=bad))
    with pytest.raises(ValueError):
        remote.bad("value")
    with pytest.raises(KeyError):
        remote.bad("key")
    with pytest.raises(Exception, match="no") as info:
        remote.bad("custom")
    assert info.value.kind == "Custom"


def test_objects_the_caller_does_not_share_are_refused(connect) -> None:
    remote, _ = connect(SimpleNamespace(call=lambda fn: fn()), share=lambda obj: False)
    with pytest.raises(TypeError, match="cannot be sent"):
        remote.call(lambda: 1)


def _decode_error(header: dict, blob: bytes = b"", caps: Caps | None = None) -> str:
    r, w = os.pipe()
    raw = json.dumps(header).encode()
    os.write(w, struct.pack("<II", len(raw), len(blob)) + raw + blob)
    os.close(w)
    peer = Peer(r, r, caps=caps)
    try:
        header, blob = read_frame(r, peer.caps)
        peer.decoder(blob)(header["value"])
    except ChannelError as e:
        return str(e)
    finally:
        os.close(r)
    raise AssertionError("no ChannelError")


@pytest.mark.parametrize(
    ("value", "blob", "words"),
    [
        (["T", "float32", [10], 0, 4, False, None], b"\0" * 4, "do not match"),
        (["T", "object", [1], 0, 8, False, None], b"\0" * 8, "malformed tensor"),
        (["T", "float32", [-1], 0, 0, False, None], b"", "malformed tensor"),
        (["T", "float32", [1], 4, 4, False, None], b"\0" * 4, "do not match"),
        (["I", "7"], b"", "malformed I"),
        (["H", "yours", 3], b"", "unknown object handle"),
        (["D", [[["L", []], ["I", 1]]]], b"", "cannot be hashed"),
        (["Q"], b"", "malformed value"),
        (["OPT", "Bogus", ["L", []]], b"", "malformed value"),
    ],
)
def test_malformed_values_are_channel_errors(value, blob, words) -> None:
    assert words in _decode_error({"value": value}, blob)


def test_depth_and_size_caps() -> None:
    deep = ["I", 0]
    for _ in range(60):
        deep = ["U", [deep]]
    assert "too deep" in _decode_error({"value": deep})
    assert "oversized" in _decode_error({"value": ["N"]}, b"x" * 100, caps=Caps(blob_bytes=10))
    r, w = os.pipe()
    write_frame(w, {"op": "ok"}, b"")
    os.close(w)
    read_frame(r, Caps())
    with pytest.raises(ChannelError, match="closed"):
        read_frame(r, Caps())
    os.close(r)


def test_the_callee_cannot_plant_its_objects_in_the_callers_arguments(connect) -> None:
    """A submission that swaps the test's experts for objects of its own (whose counters it controls) is refused."""

    class Fake:
        rows = 7

    remote, _ = connect(SimpleNamespace(swap=lambda experts: experts.__setitem__(0, Fake())))
    experts = [len]
    with pytest.raises(ChannelError, match="objects into the caller's arguments"):
        remote.swap(experts)
    assert experts == [len]
