"""The judge <-> submission channel: framed messages, a tensor wire format, remote objects and autograd across it.

Both processes run this file (the submission's copy imports nothing of tfdojo: stdlib and torch only). A frame is
``<header bytes: u32><blob bytes: u32>``, a JSON header, then the raw bytes of every tensor in it. Values are
tagged JSON (``["T", dtype, shape, offset, nbytes, requires_grad, grad]`` for a tensor): nothing is ever pickled,
sizes, depth and dtypes are checked before anything is built, and whatever breaks a rule is a ``ChannelError``.

Objects that are not plain data (a submission's ``KVCache``, a test's model with callable methods) cross as
handles: the other side gets a ``Remote`` whose public attributes and calls go back over the channel. A call with
tensors that require grad keeps its graph on the side that computed it; the caller's result is the output of a
``_Bridge`` autograd node whose backward sends the upstream gradients and receives the input gradients (each
side asks for the gradients of its own tensors only). In-place changes a call makes to its tensor, list or dict
arguments (``clip_by_global_norm`` scaling ``.grad``) are sent back and applied to the caller's objects.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import GeneratorType
from typing import Any

import torch

DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
        torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    )
}  # fmt: skip
FRAME = struct.Struct("<II")
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")
# Builtin exceptions a submission's error keeps across the channel (tests catch ValueError, for instance).
PASSED_EXCEPTIONS = (
    "ArithmeticError", "AssertionError", "AttributeError", "IndexError", "KeyError", "LookupError", "MemoryError",
    "NotImplementedError", "OverflowError", "RecursionError", "RuntimeError", "StopIteration", "TypeError",
    "ValueError", "ZeroDivisionError", "OSError",
)  # fmt: skip


@dataclass(frozen=True)
class Caps:
    """What one frame may hold; the judge refuses anything larger before reading it."""

    header_bytes: int = 4 << 20
    blob_bytes: int = 64 << 20
    depth: int = 48
    items: int = 1_000_000
    dims: int = 8
    handles: int = 1_000_000
    requests_per_call: int = 1_000_000


class ChannelError(Exception):
    """The other side broke the protocol: closed, oversized, malformed or unexpected."""


class RemoteError(Exception):
    """An exception raised on the other side; ``kind`` is its type name, ``line`` the submission line if known."""

    kind: str = "Exception"
    errno: int | None = None
    line: int | None = None


_REMOTE_TYPES: dict[str, type[RemoteError]] = {}


def remote_error(kind: str, message: str, errno: int | None, line: int | None) -> RemoteError:
    """A RemoteError that is also an instance of the builtin it names (so ``except ValueError`` still works)."""
    base = getattr(builtins, kind, None) if kind in PASSED_EXCEPTIONS else None
    key = kind if base is not None else "Exception"
    if key not in _REMOTE_TYPES:
        bases = (RemoteError, base) if base is not None and base is not Exception else (RemoteError,)
        _REMOTE_TYPES[key] = type(f"Remote{key}", bases, {})
    error = _REMOTE_TYPES[key](message)
    error.kind, error.errno, error.line = kind, errno, line
    return error


# ---- frames ------------------------------------------------------------------------------------------------


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ChannelError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, caps: Caps) -> tuple[dict[str, Any], memoryview]:
    """One message: its header (a dict) and its blob; ChannelError for anything outside the caps."""
    header_len, blob_len = FRAME.unpack(_read_exactly(fd, FRAME.size))
    if header_len > caps.header_bytes or blob_len > caps.blob_bytes:
        raise ChannelError(f"an oversized message ({header_len} + {blob_len} bytes; the caps are "
                           f"{caps.header_bytes} + {caps.blob_bytes})")  # fmt: skip
    raw, blob = _read_exactly(fd, header_len), memoryview(_read_exactly(fd, blob_len))
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ChannelError(f"a malformed message ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise ChannelError("a malformed message (not an object)")
    return header, blob


def write_frame(fd: int, header: dict[str, Any], blob: bytes | bytearray) -> None:
    """Send one message (header as JSON, then the blob)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    data = FRAME.pack(len(raw), len(blob)) + raw + bytes(blob)
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            raise ChannelError("the other side closed the channel") from None
        view = view[written:]


# ---- values ------------------------------------------------------------------------------------------------


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().cpu().contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return flat.view(torch.uint8).numpy().tobytes() if flat.dtype != torch.bool else flat.numpy().tobytes()


@dataclass
class Encoder:
    """Turns a value into tagged JSON plus a blob; ``export`` makes a handle for an object that is not data,
    ``tensors`` collects (tensor, requires_grad) in encounter order, ``slots`` the mutable objects sent."""

    export: Callable[[Any], list[Any]]
    blob: bytearray = field(default_factory=bytearray)
    tensors: list[torch.Tensor] = field(default_factory=list)
    slots: list[Any] = field(default_factory=list)

    def tensor(self, t: torch.Tensor, grad: bool = True) -> list[Any]:
        if t.layout != torch.strided or t.is_quantized or str(t.dtype).removeprefix("torch.") not in DTYPES:
            raise TypeError(f"cannot send a {t.dtype} {t.layout} tensor")
        data = _tensor_bytes(t)
        offset = len(self.blob)
        self.blob += data
        wants_grad = grad and t.requires_grad
        if wants_grad:
            self.tensors.append(t)
        self.slots.append(t)
        g = self.tensor(t.grad, grad=False) if grad and t.is_leaf and t.grad is not None else None
        return ["T", str(t.dtype).removeprefix("torch."), list(t.shape), offset, len(data), wants_grad, g]

    def __call__(self, value: Any) -> Any:
        if value is None:
            return ["N"]
        if isinstance(value, bool):
            return ["B", value]
        if isinstance(value, int):
            return ["I", value]
        if isinstance(value, float):
            return ["F", value if math.isfinite(value) else repr(value)]
        if isinstance(value, str):
            return ["S", value]
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, torch.dtype):
            return ["DT", str(value).removeprefix("torch.")]
        if isinstance(value, torch.Size):
            return ["Z", [int(d) for d in value]]
        if isinstance(value, torch.Generator):
            self.slots.append(value)
            return ["G", self.tensor(value.get_state(), grad=False)]
        if isinstance(value, slice):
            return ["SL", self(value.start), self(value.stop), self(value.step)]
        if isinstance(value, tuple):
            return ["U", [self(v) for v in value]]
        if isinstance(value, list):
            self.slots.append(value)
            return ["L", [self(v) for v in value]]
        if isinstance(value, dict):
            self.slots.append(value)
            return ["D", [[self(k), self(v)] for k, v in value.items()]]
        if isinstance(value, Remote):
            return ["H", "yours", value._hid]
        if isinstance(value, GeneratorType | map | filter | zip | enumerate | Iterator):
            return ["IT", self(list(value))]  # an iterator (model.parameters()): its items, and one pass only
        if isinstance(value, torch.optim.Optimizer):  # by value: its class and parameter groups, not its state
            return ["OPT", type(value).__name__, self(value.param_groups)]
        if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
            return self(value.item())  # a numpy scalar
        return self.export(value)


@dataclass
class Decoder:
    """Builds values from tagged JSON and the blob, checking every rule; ``resolve`` turns a handle into an object."""

    blob: memoryview
    caps: Caps
    resolve: Callable[[str, Any], Any]
    leaves: list[torch.Tensor] = field(default_factory=list)
    slots: list[Any] = field(default_factory=list)
    items: int = 0

    def tensor(self, v: list[Any], grad: bool = True) -> torch.Tensor:
        if len(v) != 7:
            raise ChannelError("a malformed tensor")
        _, dtype_name, shape, offset, nbytes, wants_grad, g = v
        dtype = DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
        ok_shape = isinstance(shape, list) and len(shape) <= self.caps.dims
        ok_shape = ok_shape and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        if dtype is None or not ok_shape or not all(isinstance(x, int) for x in (offset, nbytes)):
            raise ChannelError(f"a malformed tensor (dtype {dtype_name!r}, shape {shape!r})")
        numel = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel * itemsize != nbytes or offset < 0 or offset + nbytes > len(self.blob):
            raise ChannelError(f"a tensor whose bytes do not match its shape {shape} and dtype {dtype_name}")
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(self.blob[offset : offset + nbytes]), dtype=dtype).reshape(shape)
        if wants_grad is True and grad and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
            self.leaves.append(t)
        self.slots.append(t)
        if g is not None and grad:
            if not isinstance(g, list) or not g or g[0] != "T":
                raise ChannelError("a malformed gradient")
            gt = self.tensor(g, grad=False)
            if gt.shape != t.shape or gt.dtype != t.dtype:
                raise ChannelError("a gradient whose shape or dtype differs from its tensor")
            t.grad = gt
        return t

    def __call__(self, v: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > self.caps.depth or self.items > self.caps.items:
            raise ChannelError("a message nested too deep or with too many items")
        if not isinstance(v, list) or not v or not isinstance(v[0], str):
            raise ChannelError("a malformed value")
        tag, rest = v[0], v[1:]
        simple = {"N": type(None), "B": bool, "I": int, "S": str}
        if tag in simple:
            if tag == "N":
                return None
            if len(rest) != 1 or type(rest[0]) is not simple[tag]:
                raise ChannelError(f"a malformed {tag} value")
            return rest[0]
        if tag == "F" and len(rest) == 1:
            x = rest[0]
            if isinstance(x, str) and x in ("nan", "inf", "-inf"):
                return float(x)
            if isinstance(x, int | float) and not isinstance(x, bool):
                return float(x)
            raise ChannelError("a malformed float")
        if tag == "T":
            return self.tensor(v)
        if tag == "DT" and len(rest) == 1 and rest[0] in DTYPES:
            return DTYPES[rest[0]]
        if tag == "Z" and len(rest) == 1 and isinstance(rest[0], list):
            if len(rest[0]) > self.caps.dims or not all(type(d) is int for d in rest[0]):
                raise ChannelError("a malformed size")
            return torch.Size(rest[0])
        if tag == "G" and len(rest) == 1 and isinstance(rest[0], list) and rest[0][:1] == ["T"]:
            slot = len(self.slots)
            self.slots.append(None)
            gen = torch.Generator()
            try:
                gen.set_state(self.tensor(rest[0], grad=False))
            except (RuntimeError, TypeError, ValueError):
                raise ChannelError("a malformed generator state") from None
            self.slots[slot] = gen
            return gen
        if tag == "SL" and len(rest) == 3:
            return slice(*(self(x, depth + 1) for x in rest))
        if tag in ("U", "L") and len(rest) == 1 and isinstance(rest[0], list):
            if tag == "L":
                out: list[Any] = []
                self.slots.append(out)
                out.extend(self(x, depth + 1) for x in rest[0])
                return out
            return tuple(self(x, depth + 1) for x in rest[0])
        if tag == "D" and len(rest) == 1 and isinstance(rest[0], list):
            d: dict[Any, Any] = {}
            self.slots.append(d)
            for pair in rest[0]:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ChannelError("a malformed dict")
                key = self(pair[0], depth + 1)
                try:
                    d[key] = self(pair[1], depth + 1)
                except TypeError:
                    raise ChannelError("a dict key that cannot be hashed") from None
            return d
        if tag == "IT" and len(rest) == 1:
            items = self(rest[0], depth + 1)
            if not isinstance(items, list):
                raise ChannelError("a malformed iterator")
            return iter(items)
        if tag == "OPT" and len(rest) == 2 and rest[0] in OPTIMIZERS:
            groups = self(rest[1], depth + 1)
            ok = isinstance(groups, list) and all(
                isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups
            )
            try:
                if not ok:
                    raise ValueError("malformed parameter groups")
                return getattr(torch.optim, rest[0])(groups)
            except (ValueError, TypeError, RuntimeError, KeyError) as e:
                raise ChannelError(f"a malformed optimizer ({e})") from None
        if tag == "H" and len(rest) == 2 and rest[0] in ("mine", "yours") and type(rest[1]) is int:
            return self.resolve(rest[0], rest[1])
        raise ChannelError(f"a malformed value (tag {tag!r})")


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors in a result (nested tuples, lists and dict values), in encoding order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


# ---- the peer ----------------------------------------------------------------------------------------------


@dataclass
class Served:
    """A call served here whose result depends on tensors that require grad: its graph stays here until backward."""

    inputs: list[torch.Tensor]
    n_leaves: int  # the first n_leaves inputs are the tensors the caller sent; the rest are our bridges' anchors
    outputs: list[torch.Tensor]
    grads: list[torch.Tensor] | None = None  # the upstream gradients received for ``outputs``, summed


@dataclass
class Frame:
    """While a request is out, the served calls whose outputs need gradients (they feed the result)."""

    served: list[int] = field(default_factory=list)
    anchors: list[torch.Tensor] = field(default_factory=list)


class Peer:
    """One end of the channel: sends requests and serves the other side's while it waits for each reply.

    ``share`` decides which of our objects the other side may hold as a handle and ``readable`` which attributes of
    them it may read (the judge lets the submission call a test's callables, nothing more).
    """

    def __init__(
        self,
        rfd: int,
        wfd: int,
        caps: Caps | None = None,
        share: Callable[[Any], bool] = lambda obj: True,
        readable: Callable[[Any, str], bool] = lambda obj, name: True,
    ) -> None:
        self.rfd, self.wfd, self.caps = rfd, wfd, caps or Caps()
        self.share, self.readable = share, readable
        self.exports: list[Any] = []
        self.export_ids: dict[int, int] = {}
        self.served: dict[int, Served] = {}
        self.frames: list[Frame] = []
        self.serving: list[Frame] = []
        self.next_id = 0
        self.owner = os.getpid()
        self.on_reply: Callable[[dict[str, Any]], None] = lambda header: None
        self.reply_extra: Callable[[], dict[str, Any]] = dict

    # handles

    def export(self, obj: Any) -> list[Any]:
        if not self.share(obj):
            raise TypeError(f"a {type(obj).__name__} cannot be sent across the sandbox")
        key = id(obj)
        if key not in self.export_ids:
            if len(self.exports) >= self.caps.handles:
                raise ChannelError("too many objects sent across the channel")
            self.export_ids[key] = len(self.exports)
            self.exports.append(obj)
        return ["H", "mine", self.export_ids[key]]

    def resolve(self, side: str, hid: int) -> Any:
        if side == "yours":  # the sender means one of our objects
            if not 0 <= hid < len(self.exports):
                raise ChannelError(f"an unknown object handle {hid}")
            return self.exports[hid]
        return Remote(self, hid)

    def encoder(self) -> Encoder:
        return Encoder(self.export)

    def decoder(self, blob: memoryview) -> Decoder:
        return Decoder(blob, self.caps, self.resolve)

    # requests

    def request(self, header: dict[str, Any], blob: bytes | bytearray = b"") -> tuple[dict[str, Any], memoryview]:
        """Send a request and serve the other side's requests until its reply arrives."""
        self.next_id += 1
        rid = header["id"] = self.next_id
        write_frame(self.wfd, header, blob)
        served = 0
        while True:
            reply, reply_blob = read_frame(self.rfd, self.caps)
            op = reply.get("op")
            if op in ("ok", "err"):
                if reply.get("id") != rid:
                    raise ChannelError("a reply to a request that was not made")
                self.on_reply(reply)
                return reply, reply_blob
            served += 1
            if served > self.caps.requests_per_call:
                raise ChannelError("too many requests while waiting for one reply")
            self.serve(reply, reply_blob)

    def call(self, hid: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``target(*args, **kwargs)`` on the other side."""
        enc = self.encoder()
        payload = enc(list(args)), enc(kwargs)
        frame = Frame()
        self.frames.append(frame)
        try:
            reply, blob = self.request(
                {"op": "call", "target": hid, "args": payload[0], "kwargs": payload[1]}, enc.blob
            )
        finally:
            self.frames.pop()
        value = self._result(reply, blob, enc)
        return self._bridge(reply, value, enc.tensors, frame)

    def getattr(self, hid: int, name: str) -> Any:
        reply, blob = self.request({"op": "getattr", "target": hid, "name": name})
        return self._result(reply, blob, None)

    def _result(self, reply: dict[str, Any], blob: memoryview, sent: Encoder | None) -> Any:
        if reply["op"] == "err":
            kind, message = reply.get("type"), reply.get("message")
            errno, line = reply.get("errno"), reply.get("line")
            if not isinstance(kind, str) or not isinstance(message, str) or len(message) > 100_000:
                raise ChannelError("a malformed error reply")
            raise remote_error(
                kind, message, errno if type(errno) is int else None, line if type(line) is int else None
            )
        dec = self.decoder(blob)
        value = dec(reply.get("value"))
        if sent is not None:
            self._apply_updates(reply.get("updates"), dec, sent)
        return value

    def _apply_updates(self, updates: Any, dec: Decoder, sent: Encoder) -> None:
        """Copy the changes the callee made to our arguments into them (in place, as a local call would)."""
        if not isinstance(updates, list):
            raise ChannelError("a malformed reply (updates)")
        for item in updates:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int):
                raise ChannelError("a malformed update")
            slot, new = item[0], dec(item[1])
            if not 0 <= slot < len(sent.slots):
                raise ChannelError("an update to an argument that was not sent")
            _apply(sent.slots[slot], new)

    def _bridge(self, reply: dict[str, Any], value: Any, sent: list[torch.Tensor], frame: Frame) -> Any:
        """Connect the result to our autograd graph when the callee kept its graph (``grad_call``)."""
        gid = reply.get("grad_call")
        outs = [t for t in tensors_in(value) if t.requires_grad]
        for t in outs:
            t.requires_grad_(False)
        fed = [o for sid in frame.served for o in self.served[sid].outputs]
        if type(gid) is not int or not outs:
            return value
        anchor = torch.zeros((), requires_grad=True)
        if self.serving:  # we are inside a call the other side made: its backward must reach this node
            self.serving[-1].anchors.append(anchor)
        connected = _Bridge.apply(self, gid, len(sent), list(frame.served), anchor, *sent, *fed, *outs)
        swap = {id(o): c for o, c in zip(outs, connected[-len(outs) :], strict=True)}
        return _replace(value, swap)

    def backward(self, gid: int, grads: tuple[torch.Tensor, ...]) -> list[torch.Tensor | None]:
        enc = self.encoder()
        reply, blob = self.request({"op": "backward", "call": gid, "grads": enc(list(grads))}, enc.blob)
        got = self._result(reply, blob, None)
        if not isinstance(got, list) or not all(g is None or isinstance(g, torch.Tensor) for g in got):
            raise ChannelError("a malformed gradient reply")
        return got

    # serving

    def serve(self, header: dict[str, Any], blob: memoryview) -> None:
        """Answer one request of the other side (a call, an attribute, a backward)."""
        op, rid = header.get("op"), header.get("id")
        if type(rid) is not int:
            raise ChannelError("a request without an id")
        dec = self.decoder(blob)
        enc = self.encoder()
        try:
            if op == "call":
                value, extra = self._serve_call(header, dec, enc)
            elif op == "getattr":
                value, extra = self._serve_getattr(header, dec), {}
            elif op == "backward":
                value, extra = self._serve_backward(header, dec), {}
            else:
                raise ChannelError(f"an unknown request {op!r}")
            payload = enc(value)
        except ChannelError:
            raise
        except BaseException as e:  # noqa: BLE001 - every failure of the served code goes back as an error reply
            self.reply({"op": "err", "id": rid, **self.describe(e)}, b"")
            return
        self.reply({"op": "ok", "id": rid, "value": payload, **extra}, enc.blob)

    def reply(self, header: dict[str, Any], blob: bytes | bytearray) -> None:
        """Send a reply; a process forked by the served code that returns here leaves without a word."""
        if os.getpid() != self.owner:
            os._exit(0)
        write_frame(self.wfd, {**header, **self.reply_extra()}, blob)

    def describe(self, exc: BaseException) -> dict[str, Any]:
        """How an exception is reported to the other side (the submission's side adds its line)."""
        return {"type": type(exc).__name__, "message": str(exc)[:4000], "errno": getattr(exc, "errno", None)}

    def _target(self, header: dict[str, Any], dec: Decoder) -> Any:
        hid = header.get("target")
        if type(hid) is not int:
            raise ChannelError("a request without a target")
        return dec.resolve("yours", hid)

    def _serve_getattr(self, header: dict[str, Any], dec: Decoder) -> Any:
        obj, name = self._target(header, dec), header.get("name")
        if not isinstance(name, str) or not self.readable(obj, name):
            raise AttributeError(f"{name!r} is not shared across the sandbox")
        return getattr(obj, name)

    def _serve_call(self, header: dict[str, Any], dec: Decoder, enc: Encoder) -> tuple[Any, dict[str, Any]]:
        obj = self._target(header, dec)
        args, kwargs = dec(header.get("args")), dec(header.get("kwargs"))
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise ChannelError("a malformed call")
        before = [_snapshot(s) for s in dec.slots]
        frame = Frame()
        self.serving.append(frame)
        try:
            result = obj(*args, **kwargs)
        finally:
            self.serving.pop()
        updates = [[i, enc(s)] for i, (s, b) in enumerate(zip(dec.slots, before, strict=True)) if _snapshot(s) != b]
        extra: dict[str, Any] = {"updates": updates}
        outs = [t for t in tensors_in(result) if t.requires_grad]
        if outs:
            sid = len(self.served) + 1
            self.served[sid] = Served(inputs=[*dec.leaves, *frame.anchors], n_leaves=len(dec.leaves), outputs=outs)
            extra["grad_call"] = sid
            if self.frames:
                self.frames[-1].served.append(sid)
        return result, extra

    def _serve_backward(self, header: dict[str, Any], dec: Decoder) -> list[torch.Tensor | None]:
        sid = header.get("call")
        record = self.served.get(sid) if type(sid) is int else None
        grads = dec(header.get("grads"))
        if record is None or not isinstance(grads, list) or len(grads) != len(record.outputs):
            raise ChannelError("a backward for an unknown call or with the wrong number of gradients")
        for g, o in zip(grads, record.outputs, strict=True):
            if not isinstance(g, torch.Tensor) or g.shape != o.shape:
                raise ChannelError("an upstream gradient whose shape differs from its output")
        grads = [g.to(o.dtype) for g, o in zip(grads, record.outputs, strict=True)]
        record.grads = grads if record.grads is None else [a + b for a, b in zip(record.grads, grads, strict=True)]
        if not record.inputs:
            return []
        got = torch.autograd.grad(record.outputs, record.inputs, grads, retain_graph=True, allow_unused=True)
        return [g.detach() if g is not None else None for g in got[: record.n_leaves]]


class _Bridge(torch.autograd.Function):
    """The autograd node for a result computed on the other side: backward asks that side for the gradients of
    the tensors we sent, and passes on the upstream gradients received for our served calls that fed it."""

    @staticmethod
    def forward(ctx: Any, peer: Peer, gid: int, n_sent: int, served: list[int], *tensors: torch.Tensor) -> Any:
        ctx.peer, ctx.gid, ctx.served = peer, gid, served
        ctx.sent = [(t.shape, t.dtype) for t in tensors[1 : 1 + n_sent]]
        n_in = 1 + n_sent + sum(len(peer.served[s].outputs) for s in served)
        return tuple(t.clone() for t in tensors[n_in:])

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        peer: Peer = ctx.peer
        for sid in ctx.served:
            peer.served[sid].grads = None
        got = peer.backward(ctx.gid, grads)
        if len(got) != len(ctx.sent):
            raise ChannelError("a gradient reply with the wrong number of gradients")
        for g, (shape, _) in zip(got, ctx.sent, strict=True):
            if g is not None and g.shape != shape:
                raise ChannelError("a gradient whose shape differs from its input")
        got = [g if g is None else g.to(dtype) for g, (_, dtype) in zip(got, ctx.sent, strict=True)]
        fed: list[torch.Tensor | None] = []
        for sid in ctx.served:
            record = peer.served[sid]
            fed += record.grads if record.grads is not None else [None] * len(record.outputs)
        n_out = len(grads)
        return (None, None, None, None, None, *got, *fed, *([None] * n_out))


def _replace(value: Any, swap: dict[int, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return swap.get(id(value), value)
    if isinstance(value, tuple):
        return tuple(_replace(v, swap) for v in value)
    if isinstance(value, list):
        return [_replace(v, swap) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, swap) for k, v in value.items()}
    return value


def _snapshot(obj: Any) -> Any:
    """What identifies the state of a mutable argument, to send back only what the call changed."""
    if isinstance(obj, torch.Tensor):
        g = obj.grad if obj.is_leaf else None
        return (obj._version, obj.shape, id(g), None if g is None else (g._version, g.shape))
    if isinstance(obj, torch.Generator):
        return bytes(obj.get_state().numpy().tobytes())
    if isinstance(obj, list):
        return [id(v) for v in obj]
    if isinstance(obj, dict):
        return [(id(k), id(v)) for k, v in obj.items()]
    return None


def _holds_remote(value: Any) -> bool:
    if isinstance(value, Remote):
        return True
    if isinstance(value, tuple | list):
        return any(_holds_remote(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_remote(k) or _holds_remote(v) for k, v in value.items())
    return False


def _apply(target: Any, new: Any) -> None:
    """Make ``target`` equal to ``new`` in place (a tensor keeps its identity and its ``.grad`` object)."""
    if isinstance(target, torch.Tensor) and isinstance(new, torch.Tensor):
        if new.shape != target.shape or new.dtype != target.dtype:
            raise ChannelError("an argument tensor changed shape or dtype in place")
        with torch.no_grad():
            target.copy_(new)
        if new.grad is None:
            target.grad = None
        elif target.grad is not None and target.grad.shape == new.grad.shape:
            with torch.no_grad():
                target.grad.copy_(new.grad)
        else:
            target.grad = new.grad
    elif isinstance(target, torch.Generator) and isinstance(new, torch.Generator):
        target.set_state(new.get_state())
    elif isinstance(target, list | dict) and type(new) is type(target):
        if _holds_remote(new):  # the caller's containers hold data; the callee's objects stay behind a call
            raise ChannelError("an update that puts the other side's objects into the caller's arguments")
        if isinstance(target, list):
            target[:] = new
        else:
            target.clear()
            target.update(new)
    else:
        raise ChannelError("an update of the wrong kind")


class Remote:
    """An object of the other side: public attributes are read and calls are made over the channel.

    Dunder methods are not forwarded: a remote object has no truth value, compares equal only to itself and is
    no tensor, so it cannot stand in for a result.
    """

    __slots__ = ("_peer", "_hid")

    def __init__(self, peer: Peer, hid: int) -> None:
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_hid", hid)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._peer.getattr(self._hid, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._peer.call(self._hid, args, kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("attributes of an object across the sandbox cannot be set")

    def __bool__(self) -> bool:
        raise TypeError("an object from across the sandbox has no truth value; return a bool or a tensor")

    def __repr__(self) -> str:
        return f"<remote object #{self._hid}>"
