"""GGUF files that llama.cpp would refuse, refused from their header and tensor table before any work starts."""

from __future__ import annotations

import math
import mmap
import struct
from pathlib import Path

from regenesis.models.errors import ModelSpecError

GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # by GGUF value type
GGUF_STRING, GGUF_ARRAY = 8, 9


class _GGUFScan:
    """Walks a GGUF file's header, metadata and tensor table (not the weights) to the end of its data."""

    def __init__(self, data: mmap.mmap):
        self.data, self.offset, self.alignment = data, 0, 32

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def string(self) -> bytes:
        (length,) = self.take("Q")
        self.offset += length
        return self.data[self.offset - length:self.offset]

    def skip_value(self, kind: int) -> None:
        if kind == GGUF_STRING:
            self.string()
        elif kind == GGUF_ARRAY:
            item_kind, count = self.take("IQ")
            if item_kind in GGUF_SCALAR_SIZES:
                self.offset += count * GGUF_SCALAR_SIZES[item_kind]
            else:
                for _ in range(count):
                    self.skip_value(item_kind)
                    if self.offset > len(self.data):
                        raise ValueError("metadata runs past the end of the file")
        else:
            self.offset += GGUF_SCALAR_SIZES[kind]

    def data_end(self) -> int:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType  # heavy: numpy, loaded only to check a file

        _magic, _version, tensors, fields = self.take("4sIQQ")
        for _ in range(fields):
            key, (kind,) = self.string(), self.take("I")
            if key == b"general.alignment" and kind == 4:
                (self.alignment,) = self.take("I")
            else:
                self.skip_value(kind)
        end = 0
        for _ in range(tensors):
            self.string()
            (n_dims,) = self.take("I")
            dims = self.take(f"{n_dims}Q")
            kind, offset = self.take("IQ")
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            end = max(end, offset + math.prod(dims) // block * size)
        return -(-self.offset // self.alignment) * self.alignment + end


def check_gguf(path: Path) -> None:
    """Refuse a file that llama.cpp would refuse to load, from its header and tensor table alone.

    A truncated or damaged file is bad input before any work starts rather than a failed run later;
    the scan reads the metadata, not the weights (0.13 s for the embedded model's 49,152-token vocabulary).
    """
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelSpecError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                end = _GGUFScan(data).data_end()
            except (struct.error, ValueError, KeyError, OverflowError) as exc:
                raise ModelSpecError(f"{path}: a damaged GGUF file, its header cannot be read ({exc})") from exc
            if end > len(data):
                raise ModelSpecError(f"{path}: a truncated GGUF file ({len(data)} bytes, its tensors need {end})")
