"""A reader of Darknet's ``.cfg`` and ``.weights`` into a torch network, with YOLO box
decoding and per-class non-maximum suppression.

Darknet (Redmon; Bochkovskiy's fork) describes a network as ``[section]`` blocks of
``key=value`` lines and stores its parameters as one flat float32 array after a small
header, layer by layer in the order of the file: for a convolution with batch norm, the
bias (β), scale (γ), running mean and variance of each filter, then the kernel weights.
This module builds the layers yolov3/v4(-tiny) use (convolutional, maxpool, route with
``groups``, shortcut, upsample, yolo) as plain torch modules, so the same network runs
eagerly, under ``torch.compile``, exported to ONNX, or in fp16 on a GPU.

Boxes follow Darknet's own decoding: ``x = (σ(t_x)·s − (s−1)/2 + c_x) / W`` with
``scale_x_y = s``, ``w = exp(t_w)·anchor_w / input_w``, score = objectness × class
probability. The image is resized to the network's input without letterboxing, as
Darknet's ``detector test`` does by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detection.base import Detections


class DarknetError(ValueError):
    """A ``.cfg`` or ``.weights`` file this reader cannot use; says which and why."""


@dataclass
class Section:
    """One ``[name]`` block of a ``.cfg`` file and its line number."""

    name: str
    options: dict[str, str]
    line: int

    def num(self, key: str, default: int | None = None) -> int:
        return int(self._get(key, default))

    def real(self, key: str, default: float | None = None) -> float:
        return float(self._get(key, default))

    def nums(self, key: str, default: str | None = None) -> list[int]:
        text = str(self._get(key, default))
        return [int(v) for v in text.split(",") if v.strip()]

    def _get(self, key: str, default: Any) -> Any:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise DarknetError(f"[{self.name}] at line {self.line}: '{key}' is required")
        return default


def parse_cfg(text: str) -> list[Section]:
    """The sections of a Darknet ``.cfg`` (comments and blank lines dropped)."""
    out: list[Section] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise DarknetError(f"line {n}: '{line}' opens a section but does not close it")
            out.append(Section(line[1:-1].strip().lower(), {}, n))
        elif "=" in line:
            if not out:
                raise DarknetError(f"line {n}: '{line}' comes before any [section]")
            key, value = line.split("=", 1)
            out[-1].options[key.strip()] = value.strip()
        else:
            raise DarknetError(f"line {n}: '{line}' is neither a [section] nor key=value")
    if not out or out[0].name not in ("net", "network"):
        raise DarknetError("the first section must be [net]")
    return out


def _activation(name: str, where: str) -> nn.Module:
    acts: dict[str, nn.Module] = {"leaky": nn.LeakyReLU(0.1), "linear": nn.Identity(), "relu": nn.ReLU(),
                                  "mish": nn.Mish(), "logistic": nn.Sigmoid(), "swish": nn.SiLU()}
    if name not in acts:
        raise DarknetError(f"{where}: activation '{name}' is not supported ({', '.join(sorted(acts))})")
    return acts[name]


class _Conv(nn.Module):
    def __init__(self, s: Section, c_in: int) -> None:
        super().__init__()
        self.bn = bool(s.num("batch_normalize", 0))
        filters, size, stride = s.num("filters"), s.num("size", 1), s.num("stride", 1)
        groups = s.num("groups", 1)
        pad = size // 2 if s.num("pad", 0) else s.num("padding", 0)
        self.conv = nn.Conv2d(c_in, filters, size, stride, pad, groups=groups, bias=not self.bn)
        self.norm = nn.BatchNorm2d(filters, eps=1e-5) if self.bn else nn.Identity()
        self.act = _activation(s.options.get("activation", "logistic"), f"[convolutional] at line {s.line}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))  # type: ignore[no-any-return]


class _MaxPool(nn.Module):
    def __init__(self, s: Section) -> None:
        super().__init__()
        self.size, self.stride = s.num("size", 2), s.num("stride", 2)
        pad = s.num("padding", self.size - 1)  # Darknet: out = (w + pad - size) / stride + 1
        self.pad = (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)


class _Upsample(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=float(self.stride), mode="nearest")


@dataclass(frozen=True)
class YoloHead:
    """What a ``[yolo]`` layer needs to decode its output."""

    anchors: tuple[tuple[float, float], ...]  # (w, h) in input pixels, of this head's masks
    classes: int
    scale_xy: float


class DarknetNet(nn.Module):
    """The network a ``.cfg`` describes. ``forward`` returns the raw output of each ``[yolo]``
    layer, ``(batch, anchors × (5 + classes), H, W)``; :meth:`decode` turns them into boxes."""

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__()
        net = sections[0]
        self.width, self.height, self.channels = net.num("width"), net.num("height"), net.num("channels", 3)
        self.layers = nn.ModuleList()
        self.kinds: list[str] = []
        self.routes: dict[int, tuple[list[int], int, int]] = {}  # layer → (sources, groups, group id)
        self.shortcuts: dict[int, int] = {}
        self.heads: list[YoloHead] = []
        self.head_layers: list[int] = []
        channels: list[int] = []
        c = self.channels
        for i, s in enumerate(sections[1:]):
            where = f"[{s.name}] at line {s.line}"
            if s.name == "convolutional":
                self.layers.append(_Conv(s, c))
                c = s.num("filters")
            elif s.name == "maxpool":
                self.layers.append(_MaxPool(s))
            elif s.name == "upsample":
                self.layers.append(_Upsample(s.num("stride", 2)))
            elif s.name == "route":
                src = [v if v >= 0 else i + v for v in s.nums("layers")]
                if any(not 0 <= v < i for v in src):
                    raise DarknetError(f"{where}: layers {s.options['layers']} point outside the network")
                groups, gid = s.num("groups", 1), s.num("group_id", 0)
                self.routes[i] = (src, groups, gid)
                self.layers.append(nn.Identity())
                c = sum(channels[v] for v in src) // groups
            elif s.name == "shortcut":
                src_one = s.nums("from")[0]
                self.shortcuts[i] = src_one if src_one >= 0 else i + src_one
                self.layers.append(_activation(s.options.get("activation", "linear"), where))
            elif s.name == "yolo":
                mask = s.nums("mask")
                a = s.nums("anchors")
                pairs = [(float(a[k]), float(a[k + 1])) for k in range(0, len(a), 2)]
                classes = s.num("classes")
                if c != len(mask) * (5 + classes):
                    raise DarknetError(f"{where}: the layer before gives {c} channels, {len(mask)} anchors of "
                                       f"{classes} classes need {len(mask) * (5 + classes)}")
                self.heads.append(YoloHead(tuple(pairs[m] for m in mask), classes, s.real("scale_x_y", 1.0)))
                self.head_layers.append(i)
                self.layers.append(nn.Identity())
            else:
                raise DarknetError(f"{where}: layer type '{s.name}' is not supported")
            self.kinds.append(s.name)
            channels.append(c)
        if not self.heads:
            raise DarknetError("the network has no [yolo] layer")
        # outputs a later route or shortcut reads, kept during forward
        self._keep = {v for src, _, _ in self.routes.values() for v in src} | set(self.shortcuts.values())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        kept: dict[int, torch.Tensor] = {}
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            kind = self.kinds[i]
            if kind == "route":
                src, groups, gid = self.routes[i]
                parts = [kept[v] for v in src]
                x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
                if groups > 1:
                    x = torch.chunk(x, groups, 1)[gid]
            elif kind == "shortcut":
                x = layer(x + kept[self.shortcuts[i]])
            elif kind == "yolo":
                outs.append(x)
            else:
                x = layer(x)
            if i in self._keep:
                kept[i] = x
        return outs

    def decode(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Boxes of every anchor of every head: ``(batch, n, 5 + classes)`` as centre x, y,
        width, height (fractions of the input), objectness and class probabilities."""
        rows = []
        for out, head in zip(outs, self.heads):
            b, _, h, w = out.shape
            a = len(head.anchors)
            p = out.float().view(b, a, 5 + head.classes, h, w).permute(0, 1, 3, 4, 2)
            gy, gx = torch.meshgrid(torch.arange(h, device=out.device), torch.arange(w, device=out.device),
                                    indexing="ij")
            s = head.scale_xy
            anchors = torch.tensor(head.anchors, device=out.device, dtype=torch.float32).view(1, a, 1, 1, 2)
            xy = (torch.sigmoid(p[..., :2]) * s - (s - 1) / 2 + torch.stack((gx, gy), -1)) / torch.tensor(
                [w, h], device=out.device, dtype=torch.float32)
            wh = torch.exp(p[..., 2:4]) * anchors / torch.tensor([self.width, self.height], device=out.device,
                                                                 dtype=torch.float32)
            rows.append(torch.cat((xy, wh, torch.sigmoid(p[..., 4:])), -1).reshape(b, -1, 5 + head.classes))
        return torch.cat(rows, 1)


def load_weights(net: DarknetNet, path: str | Path) -> dict[str, int]:
    """Read a ``.weights`` file into ``net`` (in place); returns its header.

    Raises:
        DarknetError: the file is too short or too long for the network.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 20:
        raise DarknetError(f"{path}: too short to be a Darknet weights file")
    major, minor, revision = np.frombuffer(raw[:12], dtype=np.int32)
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    seen = int(np.frombuffer(raw[12:20], dtype=np.uint64)[0]) if wide else int(np.frombuffer(raw[12:16], np.uint32)[0])
    data = np.frombuffer(raw[20 if wide else 16:], dtype=np.float32)
    at = 0

    def take(t: torch.Tensor) -> None:
        nonlocal at
        n = t.numel()
        if at + n > len(data):
            raise DarknetError(f"{path}: ends after {at} of the network's parameters (wrong .cfg for these weights?)")
        with torch.no_grad():
            t.copy_(torch.from_numpy(data[at:at + n].copy()).view_as(t))
        at += n

    for layer in net.layers:
        if isinstance(layer, _Conv):
            if layer.bn:
                bn = layer.norm
                assert isinstance(bn, nn.BatchNorm2d)
                for t in (bn.bias, bn.weight, bn.running_mean, bn.running_var):
                    assert t is not None
                    take(t)
            else:
                assert layer.conv.bias is not None
                take(layer.conv.bias)
            take(layer.conv.weight)
    if at != len(data):
        raise DarknetError(f"{path}: {len(data) - at} values left over after the network's {at} parameters "
                           "(wrong .cfg for these weights?)")
    return {"major": int(major), "minor": int(minor), "revision": int(revision), "seen": seen}


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the boxes kept, best first. ``boxes`` are
    ``x1, y1, x2, y2``; a box is dropped when it overlaps a better kept one by more than
    ``iou`` (intersection over union)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    over = (inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-9)) > iou
    over_np = over.cpu().numpy()
    keep = np.ones(len(b), dtype=bool)
    for k in range(len(b)):
        if keep[k]:
            keep[k + 1:] &= ~over_np[k, k + 1:]
    return order[torch.from_numpy(np.flatnonzero(keep)).to(order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float) -> torch.Tensor:
    """:func:`nms` within each class (boxes of different classes never suppress each other)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    shift = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1.0)
    return nms(boxes + shift, scores, iou)


def resize_batch(frames: Sequence[np.ndarray], size: tuple[int, int], device: torch.device, dtype: torch.dtype
                 ) -> torch.Tensor:
    """BGR ``uint8`` frames → an RGB batch in 0-1 of ``size`` (width, height), resized on
    ``device`` (bilinear): frames of one size go up in one copy, as bytes (a quarter of the
    float traffic), and the GPU does the arithmetic."""
    import torch.nn.functional as F

    w, h = size
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, f in enumerate(frames):
        groups.setdefault(f.shape, []).append(k)
    out = torch.empty((len(frames), 3, h, w), device=device, dtype=dtype)
    for _shape, idx in groups.items():
        raw = torch.from_numpy(np.stack([frames[k] for k in idx]))
        if device.type == "cuda":
            raw = raw.pin_memory()
        x = raw.to(device, non_blocking=True).permute(0, 3, 1, 2).flip(1).to(dtype) / 255.0
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
        out[idx] = x
    return out


class DarknetDetector:
    """A Darknet YOLO model behind the :class:`detection.base.Detector` interface.

    Args:
        cfg: The ``.cfg`` file.
        weights: The ``.weights`` file.
        names: Class names, one per line (``coco.names``).
        size: Input size (width = height); default the ``.cfg``'s (416 for yolov4-tiny).
        conf: Score threshold (objectness × class probability).
        iou: NMS threshold (Darknet's default 0.45).
        device: ``cpu``, ``cuda``, ...
        half: fp16 inference (on a GPU).
        resize_on_device: Resize frames on ``device`` (default: on a GPU): the frames go up as
            ``uint8`` at their own size and are resized there, so the CPU only decodes video.
    """

    def __init__(self, cfg: str | Path, weights: str | Path, names: str | Path | Sequence[str], *,
                 size: int | None = None, conf: float = 0.25, iou: float = 0.45, device: str = "cpu",
                 half: bool = False, resize_on_device: bool | None = None) -> None:
        sections = parse_cfg(Path(cfg).read_text())
        if size is not None:
            if size % 32:
                raise DarknetError(f"size: must be a multiple of 32, got {size}")
            sections[0].options["width"] = sections[0].options["height"] = str(size)
        self.net = DarknetNet(sections)
        self.header = load_weights(self.net, weights)
        self.names: tuple[str, ...] = tuple(names) if not isinstance(names, (str, Path)) else tuple(
            n.strip() for n in Path(names).read_text().splitlines() if n.strip())
        if len(self.names) != self.net.heads[0].classes:
            raise DarknetError(f"names: {len(self.names)} names for {self.net.heads[0].classes} classes")
        self.conf, self.iou = conf, iou
        self.device = torch.device(device)
        self.half = half
        self.resize_on_device = self.device.type != "cpu" if resize_on_device is None else resize_on_device
        self.net.eval().to(self.device)
        if half:
            self.net.half()

    @property
    def size(self) -> tuple[int, int]:
        """Input (width, height)."""
        return self.net.width, self.net.height

    def preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """BGR ``uint8`` frames (OpenCV's order) → the network's input batch (RGB, 0-1, resized)."""
        import cv2

        w, h = self.size
        dtype = torch.float16 if self.half else torch.float32
        if self.resize_on_device:
            return resize_batch(frames, (w, h), self.device, dtype)
        batch = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1] for f in frames])
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2)
        return x.to(dtype) / 255.0

    @torch.inference_mode()
    def raw(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Every anchor's decoded box, before thresholds and NMS (see :meth:`DarknetNet.decode`)."""
        return self.net.decode(self.net(self.preprocess(frames)))

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Boxes, scores and classes in each frame's own pixels."""
        if not len(frames):
            return []
        dec = self.raw(frames)
        return [self._finish(d, f.shape[1], f.shape[0]) for d, f in zip(dec, frames)]

    def _finish(self, d: torch.Tensor, width: int, height: int) -> Detections:
        scores = d[:, 4:5] * d[:, 5:]
        idx, cls = torch.nonzero(scores > self.conf, as_tuple=True)
        if len(idx) == 0:
            return Detections.empty(self.names)
        s = scores[idx, cls]
        c = d[idx, :4]
        xyxy = torch.stack((c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2,
                            c[:, 1] + c[:, 3] / 2), 1) * torch.tensor([width, height, width, height],
                                                                      device=d.device, dtype=d.dtype)
        keep = batched_nms(xyxy, s, cls, self.iou)
        xyxy = xyxy[keep].clamp(min=0)
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(max=width)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(max=height)
        return Detections(xyxy.cpu().numpy().astype(np.float32), s[keep].cpu().numpy().astype(np.float32),
                          cls[keep].cpu().numpy().astype(np.int64), self.names)
