"""Writing the GGUF: header, metadata and tensor infos first, then each tensor's data as it is computed, so
that only one tensor (in float32 and in its output type) is in memory at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

from corral.store.convert.arch import PlannedTensor
from corral.store.convert.errors import ConvertError
from corral.store.convert.tokenizer import Metadata

__all__ = ["FILE_TYPE_MOSTLY_F16", "write_gguf"]

FILE_TYPE_MOSTLY_F16 = 1  # llama_ftype: what corral's quantizer takes as a source
QUANTIZATION_VERSION = 2


def write_gguf(out: Path, arch: str, metadata: Metadata, tensors: list[PlannedTensor],
               on_tensor: Callable[[PlannedTensor], None] | None = None) -> None:
    writer = GGUFWriter(out, arch)
    try:
        writer.add_type("model")
        for key, value, vtype in metadata:
            writer.add_key_value(key, value, vtype)
        writer.add_file_type(FILE_TYPE_MOSTLY_F16)
        writer.add_quantization_version(QUANTIZATION_VERSION)
        for t in tensors:
            dtype = np.dtype(np.float32 if t.f32 else np.float16)
            raw = GGMLQuantizationType.F32 if t.f32 else GGMLQuantizationType.F16
            writer.add_tensor_info(t.name, t.shape, dtype, t.n_elements * dtype.itemsize, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in tensors:
            values = t.values()
            if values.shape != t.shape:  # a transform that changed the shape: a bug, not a bad input
                raise ConvertError(f"tensor {t.name}: computed shape {values.shape}, planned {t.shape}")
            data = values.astype(np.float32 if t.f32 else np.float16, copy=False)
            del values
            if not t.f32 and not np.isfinite(data).all():
                raise ConvertError(f"tensor {t.name} has values outside float16's range (or NaN/inf)")
            writer.write_tensor_data(np.ascontiguousarray(data))
            del data
            if on_tensor is not None:
                on_tensor(t)
        writer.flush()
    finally:
        writer.close()
