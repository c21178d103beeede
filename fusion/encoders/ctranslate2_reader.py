"""Read the variables of a CTranslate2 ``model.bin`` with numpy alone (no ctranslate2 import).

Layout, as written by ``ctranslate2/specs/model_spec.py`` ``ModelSpec._serialize`` (binary version 6,
little-endian): version (uint32), spec name (string), revision (uint32), variable count (uint32), then
per variable its name (string), rank (uint8), dims (uint32 each), dtype id (uint8), byte count
(uint32) and raw bytes; then alias count (uint32) and (alias, target) string pairs. A string is a
uint16 length that counts a trailing NUL, then that many bytes.
"""

from __future__ import annotations

import os
import struct

import numpy as np

BINARY_VERSION = 6
# Index = dtype id, from model_spec._dtype_to_type_id; None marks bfloat16, which numpy lacks.
DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)


class _Cursor:
    """Sequential little-endian reads over a byte buffer."""

    def __init__(self, buffer: np.ndarray):
        self.buffer = buffer
        self.offset = 0

    def unpack(self, fmt: str) -> tuple:
        try:
            values = struct.unpack_from("<" + fmt, self.buffer, self.offset)
        except struct.error:
            raise ValueError("CTranslate2 model file is truncated.") from None
        self.offset += struct.calcsize("<" + fmt)  # "<": packed, no native alignment
        return values

    def take(self, count: int) -> np.ndarray:
        if self.offset + count > len(self.buffer):
            raise ValueError("CTranslate2 model file is truncated.")
        chunk = self.buffer[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def string(self) -> str:
        (length,) = self.unpack("H")
        return self.take(length)[:-1].tobytes().decode("utf-8")  # drop the trailing NUL


def _decode(raw: np.ndarray, dtype_id: int, shape: tuple[int, ...]) -> np.ndarray:
    if dtype_id >= len(DTYPES):
        raise ValueError(f"Unknown CTranslate2 dtype id {dtype_id}.")
    dtype = DTYPES[dtype_id]
    if dtype is None:  # bfloat16 = the high half of a float32
        values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    return values.reshape(shape)


def read_ctranslate2(*parts: str | os.PathLike) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 ``model.bin``: name -> array (aliases resolved to their target).

    ``parts`` are the file's pieces in order, for a model shipped split (as PyPI's size limit makes
    some packages do); one path is the usual whole file. Arrays are read-only views of a memory map
    (bfloat16 ones are decoded to float32 copies), so reading a whole file is cheap and only the bytes
    that are used get loaded; split files are joined in memory.
    """
    maps = [np.memmap(path, dtype=np.uint8, mode="r") for path in parts]
    cursor = _Cursor(maps[0] if len(maps) == 1 else np.concatenate(maps))
    (version,) = cursor.unpack("I")
    if version != BINARY_VERSION:
        raise ValueError(f"Unsupported CTranslate2 binary version {version} (expected {BINARY_VERSION}).")
    cursor.string()  # spec name, e.g. "WhisperSpec"
    cursor.unpack("I")  # spec revision
    (count,) = cursor.unpack("I")
    variables = {}
    for _ in range(count):
        name = cursor.string()
        (rank,) = cursor.unpack("B")
        shape = cursor.unpack("I" * rank)
        dtype_id, num_bytes = cursor.unpack("BI")
        variables[name] = _decode(cursor.take(num_bytes), dtype_id, shape)
    (aliases,) = cursor.unpack("I")
    for _ in range(aliases):
        alias, target = cursor.string(), cursor.string()
        variables[alias] = variables[target]
    return variables
