"""Hypothesis strategies that mutate valid files: byte-level edits and format-aware field edits.

Byte-level: flip a bit, overwrite, insert or delete a run of bytes, truncate.
NIfTI-1: random (often "interesting") values in the header fields ``dim``,
``pixdim``, ``datatype``, ``bitpix``, ``vox_offset``, ``scl_*``, ``qform``/``sform``
codes, quaternion, ``srow_*``, magic and extension flag.  PNG: IHDR fields
with the CRC fixed (so the decoder gets past the checksum).  DICOM: random
values in the attributes a reader trusts (size, bits, samples, frames,
spacing, position, orientation, rescale, transfer syntax), then byte edits.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from hypothesis import strategies as st

__all__ = ["apply_nifti_fields", "dicom_overrides", "mutated_bytes", "nifti_mutations", "png_mutations"]

_INT16 = st.one_of(
    st.sampled_from([0, 1, -1, 2, 3, 4, 5, 7, 8, 255, 256, 32767, -32768]),
    st.integers(-8, 64),
    st.integers(-(2**15), 2**15 - 1),
)
_FLOAT32 = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf")]),
    st.floats(-1e3, 1e3, width=32),
    st.floats(width=32),
)
_NIFTI_DATATYPES = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304]

#: NIfTI-1 header fields: name -> (offset, struct format of one value, count, value strategy)
NIFTI_FIELDS: dict[str, tuple[int, str, int, st.SearchStrategy]] = {
    "sizeof_hdr": (0, "i", 1, st.sampled_from([348, 540, 0, -1, 1 << 24, 0x5C010000])),
    "dim": (40, "h", 8, _INT16),
    "datatype": (70, "h", 1, st.one_of(st.sampled_from(_NIFTI_DATATYPES), _INT16)),
    "bitpix": (72, "h", 1, st.one_of(st.sampled_from([0, 1, 8, 16, 24, 32, 64, 128, 256]), _INT16)),
    "pixdim": (76, "f", 8, _FLOAT32),
    "vox_offset": (108, "f", 1, st.one_of(st.sampled_from([0.0, 348.0, 352.0, 353.0, 400.0, 1e6, 1e20, -352.0]), _FLOAT32)),
    "scl_slope": (112, "f", 1, _FLOAT32),
    "scl_inter": (116, "f", 1, _FLOAT32),
    "cal": (124, "f", 2, _FLOAT32),
    "xyzt_units": (123, "B", 1, st.integers(0, 255)),
    "qform_code": (252, "h", 1, st.one_of(st.integers(-1, 5), _INT16)),
    "sform_code": (254, "h", 1, st.one_of(st.integers(-1, 5), _INT16)),
    "quatern": (256, "f", 3, _FLOAT32),
    "qoffset": (268, "f", 3, _FLOAT32),
    "srow": (280, "f", 12, _FLOAT32),
    "magic": (344, "4s", 1, st.sampled_from([b"n+1\x00", b"ni1\x00", b"n+2\x00", b"\x00\x00\x00\x00", b"n+1 "])),
    "extension": (348, "B", 1, st.sampled_from([0, 1, 255])),
}


@st.composite
def _byte_edit(draw: Any, data: bytes) -> bytes:
    n = len(data)
    kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
    if n == 0:
        return bytes(draw(st.binary(max_size=64)))
    pos = draw(st.integers(0, n - 1))
    if kind == "flip":
        out = bytearray(data)
        out[pos] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if kind == "overwrite":
        chunk = draw(st.binary(min_size=1, max_size=16))
        return data[:pos] + chunk + data[pos + len(chunk) :]
    if kind == "insert":
        return data[:pos] + draw(st.binary(min_size=1, max_size=64)) + data[pos:]
    if kind == "delete":
        return data[:pos] + data[pos + draw(st.integers(1, 64)) :]
    return data[:pos]


@st.composite
def mutated_bytes(draw: Any, data: bytes, max_edits: int = 4) -> bytes:
    """``data`` after 1..``max_edits`` random byte-level edits."""
    for _ in range(draw(st.integers(1, max_edits))):
        data = draw(_byte_edit(data))
    return data


def apply_nifti_fields(data: bytes, edits: list[tuple[str, int, Any]]) -> bytes:
    """Write ``(field, index, value)`` edits into a little-endian NIfTI-1 header."""
    out = bytearray(data)
    for name, index, value in edits:
        offset, fmt, count, _ = NIFTI_FIELDS[name]
        size = struct.calcsize("<" + fmt)
        at = offset + (index % count) * size
        if at + size <= len(out):
            out[at : at + size] = struct.pack("<" + fmt, value)
    return bytes(out)


@st.composite
def nifti_mutations(draw: Any, data: bytes) -> bytes:
    """A NIfTI-1 file with 0..5 header-field edits, then (sometimes) byte-level edits."""
    edits = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(sorted(NIFTI_FIELDS)))
        _, _, count, values = NIFTI_FIELDS[name]
        edits.append((name, draw(st.integers(0, count - 1)), draw(values)))
    data = apply_nifti_fields(data, edits)
    if not edits or draw(st.booleans()):
        data = draw(mutated_bytes(data, max_edits=3))
    return data


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _png_pack(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    for kind, body in chunks:
        out.write(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return out.getvalue()


@st.composite
def png_mutations(draw: Any, data: bytes) -> bytes:
    """A PNG with IHDR fields or the image data changed (valid CRCs), or byte-level edits (CRCs then
    sometimes recomputed), or both."""
    chunks = _png_chunks(data)
    if draw(st.booleans()):
        (kind, ihdr), rest = chunks[0], chunks[1:]
        w, h, depth, colour, comp, filt, inter = struct.unpack(">IIBBBBB", ihdr)
        field = draw(st.sampled_from(["w", "h", "depth", "colour", "comp", "filt", "inter", "idat", "chunk"]))
        if field == "w":
            w = draw(st.one_of(st.integers(0, 64), st.sampled_from([2**16, 2**20, 2**31 - 1, 2**32 - 1])))
        elif field == "h":
            h = draw(st.one_of(st.integers(0, 64), st.sampled_from([2**16, 2**20, 2**31 - 1, 2**32 - 1])))
        elif field == "depth":
            depth = draw(st.sampled_from([0, 1, 2, 4, 8, 16, 3, 32, 255]))
        elif field == "colour":
            colour = draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7, 255]))
        elif field == "comp":
            comp = draw(st.integers(0, 255))
        elif field == "filt":
            filt = draw(st.integers(0, 255))
        elif field == "inter":
            inter = draw(st.integers(0, 2))
        elif field == "idat":
            rest = [(k, zlib.compress(draw(st.binary(max_size=512))) if k == b"IDAT" else b) for k, b in rest]
        else:
            kind_new = draw(st.sampled_from([b"PLTE", b"tRNS", b"gAMA", b"zTXt", b"IDAT", b"IEND", b"abcd"]))
            rest.insert(draw(st.integers(0, len(rest))), (kind_new, draw(st.binary(max_size=64))))
        data = _png_pack([(kind, struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, inter)), *rest])
    if draw(st.booleans()):
        data = draw(mutated_bytes(data, max_edits=3))
        if data.startswith(b"\x89PNG\r\n\x1a\n") and draw(st.booleans()):
            data = _png_pack(_png_chunks(data))  # valid CRCs again: the edit reaches the decoder
    return data


_DS = st.one_of(
    st.sampled_from(["0", "-1", "1", "0.5", "1e308", "-1e308", "nan", "inf", "abc", "", "1\\2\\3\\4\\5\\6\\7"]),
    st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: f"{v:.6g}"),
)
_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.3",
]

#: DICOM attributes a reader trusts: keyword -> strategy for a value pydicom can write.
DICOM_FIELDS: dict[str, st.SearchStrategy] = {
    "Rows": st.one_of(st.integers(0, 32), st.sampled_from([0, 1, 2**15, 2**16 - 1])),
    "Columns": st.one_of(st.integers(0, 32), st.sampled_from([0, 1, 2**15, 2**16 - 1])),
    "BitsAllocated": st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 65535]),
    "BitsStored": st.sampled_from([0, 1, 8, 12, 16, 32, 64, 65535]),
    "HighBit": st.sampled_from([0, 7, 11, 15, 31, 65535]),
    "PixelRepresentation": st.sampled_from([0, 1, 2, 65535]),
    "SamplesPerPixel": st.sampled_from([0, 1, 2, 3, 4, 65535]),
    "PlanarConfiguration": st.sampled_from([0, 1, 2]),
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR",
                                                  "YBR_FULL", "YBR_FULL_422", "BANANA", ""]),
    "NumberOfFrames": st.sampled_from(["0", "1", "2", "3", "-1", "100000", "abc", ""]),
    "PixelSpacing": st.lists(_DS, min_size=0, max_size=3).map("\\".join),
    "SliceThickness": _DS,
    "SpacingBetweenSlices": _DS,
    "ImagePositionPatient": st.lists(_DS, min_size=0, max_size=4).map("\\".join),
    "ImageOrientationPatient": st.one_of(
        st.lists(_DS, min_size=0, max_size=7).map("\\".join),
        st.sampled_from(["1\\0\\0\\0\\1\\0", "1\\0\\0\\1\\0\\0", "0\\0\\0\\0\\0\\0", "1\\1\\0\\0\\1\\1"]),
    ),
    "RescaleSlope": _DS,
    "RescaleIntercept": _DS,
    "WindowCenter": _DS,
    "TransferSyntaxUID": st.sampled_from(_TRANSFER_SYNTAXES),
    "PixelData": st.one_of(st.binary(max_size=64), st.just(b""), st.integers(0, 200).map(lambda n: bytes(n))),
}


@st.composite
def dicom_overrides(draw: Any) -> dict[str, Any]:
    """0..5 attribute overrides for :data:`DICOM_FIELDS` (keyword -> value)."""
    names = draw(st.lists(st.sampled_from(sorted(DICOM_FIELDS)), max_size=5, unique=True))
    return {name: draw(DICOM_FIELDS[name]) for name in names}
