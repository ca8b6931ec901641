"""A small CenterNet (Zhou, Wang & Krähenbühl 2019, "Objects as Points") for the classes
COCO lacks, trained on the synthetic renderer (:mod:`detection.render`).

The network is a tiny convolutional backbone (stride 32) with a light feature pyramid back
to stride 4; three heads predict, per output cell, a heatmap of object centres per class,
the box's width and height, and the centre's sub-cell offset. Training uses the penalty-
reduced focal loss on Gaussian-splatted centres and L1 on size and offset; decoding takes
3 × 3 local maxima of the heatmap (no NMS needed). :func:`average_precision` gives VOC-style
AP@0.5 (all-point interpolation) per class for the evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detection.base import Detections
from detection.render import CLASSES, Renderer, Scene
from detection.track import ByteTracker

STRIDE = 4


def _cbr(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _dw(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """Depthwise-separable 3 × 3 (MobileNet)."""
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                         nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class CenterNet(nn.Module):
    """The network: ``forward`` gives ``(heatmap logits, size, offset)`` at stride 4."""

    def __init__(self, classes: int = len(CLASSES), width: int = 32) -> None:
        super().__init__()
        w = width
        self.classes = classes
        self.stem = nn.Sequential(_cbr(3, w // 2, 2), _dw(w // 2, w, 2))  # /4
        self.s8 = nn.Sequential(_dw(w, 2 * w, 2), _dw(2 * w, 2 * w))  # /8
        self.s16 = nn.Sequential(_dw(2 * w, 4 * w, 2), _dw(4 * w, 4 * w), _dw(4 * w, 4 * w))  # /16
        self.s32 = nn.Sequential(_dw(4 * w, 6 * w, 2), _dw(6 * w, 6 * w), _dw(6 * w, 6 * w))  # /32
        self.lat16 = nn.Conv2d(4 * w, 2 * w, 1)
        self.lat8 = nn.Conv2d(2 * w, 2 * w, 1)
        self.lat4 = nn.Conv2d(w, 2 * w, 1)
        self.top = nn.Conv2d(6 * w, 2 * w, 1)
        self.smooth = _dw(2 * w, 2 * w)
        last = nn.Conv2d(2 * w, classes, 1)
        assert last.bias is not None
        nn.init.constant_(last.bias, -2.19)  # a prior of 0.1 on every cell
        self.heat = nn.Sequential(_cbr(2 * w, 2 * w), last)
        self.size = nn.Sequential(_cbr(2 * w, w), nn.Conv2d(w, 2, 1))
        self.offset = nn.Sequential(_cbr(2 * w, w), nn.Conv2d(w, 2, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c4 = self.stem(x)
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p = self.top(c32)
        p = F.interpolate(p, size=c16.shape[-2:], mode="nearest") + self.lat16(c16)
        p = F.interpolate(p, size=c8.shape[-2:], mode="nearest") + self.lat8(c8)
        p = F.interpolate(p, size=c4.shape[-2:], mode="nearest") + self.lat4(c4)
        p = self.smooth(p)
        return self.heat(p), self.size(p), self.offset(p)


def _gaussian_radius(h: float, w: float, overlap: float = 0.7) -> float:
    """CornerNet's radius within which a shifted box still overlaps the true one by ``overlap``."""
    a1, b1, c1 = 1, h + w, w * h * (1 - overlap) / (1 + overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (h + w), (1 - overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * overlap, -2 * overlap * (h + w), (overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return max(0.0, min(r1, r2, r3))


def targets(scene: Scene, classes: int, out_h: int, out_w: int) -> tuple[np.ndarray, ...]:
    """Heatmap ``(C, H, W)``, size and offset maps ``(2, H, W)`` and their mask ``(H, W)``."""
    heat = np.zeros((classes, out_h, out_w), np.float32)
    size = np.zeros((2, out_h, out_w), np.float32)
    off = np.zeros((2, out_h, out_w), np.float32)
    mask = np.zeros((out_h, out_w), np.float32)
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    for lab in scene.labels:
        x1, y1, x2, y2 = (v / STRIDE for v in lab.box)
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            continue
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(int(cx), out_w - 1), min(int(cy), out_h - 1)
        sigma = max(0.0, _gaussian_radius(h, w)) * 2 / 6 + 1e-3
        g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2))
        heat[lab.cls] = np.maximum(heat[lab.cls], g)
        heat[lab.cls, iy, ix] = 1.0
        size[:, iy, ix] = (w, h)
        off[:, iy, ix] = (cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return heat, size, off, mask


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss (α = 2, β = 4)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg
    n = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / torch.clamp(n, min=1.0)


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """BGR uint8 frames → RGB float batch in 0-1."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack([im[:, :, ::-1] for im in images])))
    return x.permute(0, 3, 1, 2).float() / 255.0


def tracker() -> ByteTracker:
    """A tracker for this detector: its scores run lower than a COCO model's (about 0.5 on a
    clear car), so tracks start from 0.4 (ByteTrack's defaults are 0.6 and 0.5)."""
    return ByteTracker(high=0.35, new=0.4)


class CenterNetDetector:
    """A trained :class:`CenterNet` behind the :class:`detection.base.Detector` interface.

    Args:
        model: The network (or a path to weights saved by :func:`train`).
        names: Class names.
        conf: Score threshold.
        size: Input ``(width, height)``; frames are resized to it (default the training size).
        top_k: Most objects per frame.
        device: ``cpu``, ``cuda``, ...
        half: fp16 inference (on a GPU).
        resize_on_device: Resize frames on ``device`` (default: on a GPU; see
            :func:`detection.darknet.resize_batch`).
    """

    def __init__(self, model: CenterNet | str | Path, names: Sequence[str] = CLASSES, *, conf: float = 0.3,
                 size: tuple[int, int] | None = None, top_k: int = 100, device: str = "cpu",
                 half: bool = False, resize_on_device: bool | None = None) -> None:
        self.meta: dict[str, Any] = {}
        if isinstance(model, (str, Path)):
            state = torch.load(model, map_location="cpu", weights_only=True)
            self.meta = {k: v for k, v in state.items() if k != "state_dict"}
            names = tuple(self.meta.get("names", names))
            model_ = CenterNet(len(names), int(self.meta.get("width", 32)))
            model_.load_state_dict({k: v.float() for k, v in state["state_dict"].items()})
            model = model_
        self.model = model.eval().to(device)
        self.names: tuple[str, ...] = tuple(names)
        self.conf, self.top_k = conf, top_k
        given = size or self.meta.get("input", (384, 256))
        self.size: tuple[int, int] = (int(given[0]), int(given[1]))
        self.device = torch.device(device)
        self.half = half
        self.resize_on_device = self.device.type != "cpu" if resize_on_device is None else resize_on_device
        if half:
            self.model.half()

    def preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """BGR frames → the network's input batch (resized to :attr:`size`, RGB, 0-1)."""
        import cv2

        w, h = self.size
        if self.resize_on_device:
            from detection.darknet import resize_batch

            return resize_batch(frames, (w, h), self.device, torch.float16 if self.half else torch.float32)
        return to_tensor([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[:2] != (h, w) else f
                          for f in frames])

    def postprocess(self, heat: torch.Tensor, size: torch.Tensor, off: torch.Tensor,
                    frames: Sequence[np.ndarray]) -> list[Detections]:
        """The heads' outputs → each frame's boxes, in its own pixels."""
        w, h = self.size
        return [decode(heat[k], size[k], off[k], self.names, conf=self.conf, top_k=self.top_k,
                       scale=(f.shape[1] / w, f.shape[0] / h)) for k, f in enumerate(frames)]

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not len(frames):
            return []
        x = self.preprocess(frames).to(self.device, torch.float16 if self.half else torch.float32)
        heat, size, off = self.model(x)
        return self.postprocess(heat.float(), size.float(), off.float(), frames)


def decode(heat: torch.Tensor, size: torch.Tensor, off: torch.Tensor, names: Sequence[str], *, conf: float,
           top_k: int, scale: tuple[float, float] = (1.0, 1.0)) -> Detections:
    """One image's boxes from its heads: 3 × 3 peaks of the heatmap above ``conf``."""
    p = torch.sigmoid(heat)
    peaks = (F.max_pool2d(p[None], 3, 1, 1)[0] == p) & (p >= conf)
    cls, ys, xs = torch.nonzero(peaks, as_tuple=True)
    scores = p[cls, ys, xs]
    order = torch.argsort(scores, descending=True)[:top_k]
    cls, ys, xs, scores = cls[order], ys[order], xs[order], scores[order]
    cx = (xs.float() + off[0, ys, xs]) * STRIDE
    cy = (ys.float() + off[1, ys, xs]) * STRIDE
    bw, bh = size[0, ys, xs] * STRIDE, size[1, ys, xs] * STRIDE
    sx, sy = scale
    boxes = torch.stack([(cx - bw / 2) * sx, (cy - bh / 2) * sy, (cx + bw / 2) * sx, (cy + bh / 2) * sy], 1)
    return Detections(boxes.cpu().numpy().astype(np.float32), scores.cpu().numpy().astype(np.float32),
                      cls.cpu().numpy().astype(np.int64), tuple(names))


def render_set(seed: int, n: int, *, width: int = 384, height: int = 256, workers: int = 1) -> list[Scene]:
    """``n`` scenes of seeds ``seed·10⁶ + k`` (the same set whatever the number of workers)."""
    seeds = [seed * 1_000_000 + k for k in range(n)]
    if workers <= 1:
        r = Renderer(width, height)
        return [r.render(np.random.default_rng(s)) for s in seeds]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(_render_one, [(s, width, height) for s in seeds], chunksize=16))


def _render_one(args: tuple[int, int, int]) -> Scene:
    s, w, h = args
    return Renderer(w, h).render(np.random.default_rng(s))


def train(out: str | Path, *, seed: int = 1, images: int = 3000, epochs: int = 12, batch: int = 16, lr: float = 2e-3,
          width: int = 32, input_size: tuple[int, int] = (384, 256), workers: int = 2,
          progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train a :class:`CenterNet` on ``images`` synthetic scenes (seed ``seed``) and save it
    (fp16 weights) to ``out``; returns the training summary.

    The held-out evaluation set uses another seed (:func:`evaluate`)."""
    say = progress or (lambda _m: None)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    scenes = render_set(seed, images, width=input_size[0], height=input_size[1], workers=workers)
    say(f"rendered {len(scenes)} scenes in {time.perf_counter() - t0:.0f} s")
    model = CenterNet(len(CLASSES), width)
    oh, ow = input_size[1] // STRIDE, input_size[0] // STRIDE
    tg = [targets(s, len(CLASSES), oh, ow) for s in scenes]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(scenes) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(seed)
    model.train()
    step = 0
    for ep in range(epochs):
        order = rng.permutation(len(scenes))
        total = 0.0
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            x = to_tensor([scenes[i].image for i in idx])
            heat = torch.from_numpy(np.stack([tg[i][0] for i in idx]))
            size = torch.from_numpy(np.stack([tg[i][1] for i in idx]))
            off = torch.from_numpy(np.stack([tg[i][2] for i in idx]))
            mask = torch.from_numpy(np.stack([tg[i][3] for i in idx]))[:, None]
            ph, ps, po = model(x)
            n = mask.sum().clamp(min=1.0)
            loss = (focal_loss(ph, heat) + 0.1 * (torch.abs(ps - size) * mask).sum() / n
                    + (torch.abs(po - off) * mask).sum() / n)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            step += 1
            total += float(loss.detach())
        say(f"epoch {ep + 1}/{epochs}: loss {total / math.ceil(len(scenes) / batch):.3f} "
            f"({time.perf_counter() - t0:.0f} s)")
    model.eval()
    meta = {"names": list(CLASSES), "width": width, "input": list(input_size), "seed": seed, "images": images,
            "epochs": epochs, "train_s": round(time.perf_counter() - t0, 1),
            "params": sum(p.numel() for p in model.parameters())}
    torch.save({"state_dict": {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
                **meta}, out)
    return meta


def average_precision(dets: Sequence[Detections], truths: Sequence[Sequence[tuple[int, tuple[float, ...]]]],
                      classes: int, iou: float = 0.5) -> list[float]:
    """VOC AP (all-point interpolation) per class at IoU ``iou``; ``nan`` for a class with no
    ground truth. ``truths[k]`` lists image ``k``'s ``(class, box)``."""
    from detection.track import iou_matrix

    out = []
    for c in range(classes):
        gt = {k: np.array([b for cl, b in t if cl == c], dtype=np.float64).reshape(-1, 4) for k, t in enumerate(truths)}
        n_gt = sum(len(v) for v in gt.values())
        if n_gt == 0:
            out.append(math.nan)
            continue
        found = []
        for k, d in enumerate(dets):
            m = d.labels == c
            for box, s in zip(d.boxes[m], d.scores[m]):
                found.append((float(s), k, box.astype(np.float64)))
        found.sort(key=lambda r: -r[0])
        used = {k: np.zeros(len(v), bool) for k, v in gt.items()}
        tp = np.zeros(len(found))
        for j, (_, k, box) in enumerate(found):
            g = gt[k]
            if len(g):
                ious = iou_matrix(box[None], g)[0]
                best = int(np.argmax(ious))
                if ious[best] >= iou and not used[k][best]:
                    used[k][best] = True
                    tp[j] = 1
        ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
        rec = ctp / n_gt
        prec = ctp / np.maximum(ctp + cfp, 1e-9)
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[0.0], prec, [0.0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.flatnonzero(mrec[1:] != mrec[:-1])
        out.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return out


def evaluate(detector: Any, *, seed: int = 2, images: int = 300, width: int = 384, height: int = 256,
             workers: int = 1) -> dict[str, Any]:
    """mAP@0.5 of a detector on a held-out synthetic set of seed ``seed``: overall (the mean
    over classes present) and per class; detections down to a score of 0.05 count (AP sweeps
    the threshold)."""
    scenes = render_set(seed, images, width=width, height=height, workers=workers)
    dets: list[Detections] = []
    conf = getattr(detector, "conf", None)
    if conf is not None:  # AP sweeps the threshold itself: keep the low-score detections too
        detector.conf = min(conf, 0.05)
    try:
        for b in range(0, len(scenes), 16):
            dets += detector.detect([s.image for s in scenes[b:b + 16]])
    finally:
        if conf is not None:
            detector.conf = conf
    names = list(detector.names)
    idx = {n: i for i, n in enumerate(names)}
    truths = [[(idx[CLASSES[lab.cls]], lab.box) for lab in s.labels if CLASSES[lab.cls] in idx] for s in scenes]
    aps = average_precision(dets, truths, len(names))
    per = {n: round(a, 4) for n, a in zip(names, aps) if not math.isnan(a)}
    return {"map50": round(float(np.mean(list(per.values()))), 4) if per else math.nan, "per_class": per,
            "images": images, "seed": seed, "objects": sum(len(t) for t in truths)}
