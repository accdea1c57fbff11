"""Untrusted datasets: a header cannot read a file it does not own; a case id cannot place an output.

End-to-end through ``medaug expand`` and ``medaug learn-deformations``: the bad
case is refused (named, the job fails), the good ones are written, and no
output, manifest or row holds a byte of the file the header pointed at.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import medaug
from medaug.cli.main import main
from medaug.data.io import read_header
from medaug.datasets.cases import Case, case_id_key, case_id_problem
from medaug.datasets.discover import read_cases
from medaug.datasets.jobs import output_path
from medaug.errors import JobError, ParameterError

SECRET = b"TOP-SECRET-not-an-image-" * 64


def _dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    for i in range(2):
        s = medaug.shepp_logan_2d(16, seed=i)
        medaug.save(s["image"].with_data(np.asarray(s["image"].array, np.float32)), root / "images" / f"good{i}.mha")
    return root


def _every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("data_file", ["ABS", "../../secret.bin", "/proc/self/environ"])
def test_expand_never_copies_a_file_named_by_a_header(tmp_path, capsys, data_file):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    data = _dataset(tmp_path / "in")
    target = str(secret) if data_file == "ABS" else data_file
    (data / "images" / "evil.mhd").write_text(
        f"ObjectType = Image\nNDims = 2\nDimSize = 16 16\nElementType = MET_UCHAR\nElementDataFile = {target}\n",
        encoding="ascii",
    )
    out = tmp_path / "out"
    code = main(["expand", str(data), str(out), "--preset", "xray", "-n", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1  # the job fails on the bad case ...
    assert "evil.mhd" in err and "outside the header's folder" in err
    written = sorted(p.name for p in (out / "images").iterdir())
    assert written == [f"good{i}_aug00{k}.mha" for i in range(2) for k in range(2)]  # ... the good ones are done
    everything = _every_byte(out)
    assert SECRET[:24] not in everything
    assert os.environ.get("HOME", "/root").encode() + b"\x00" not in everything  # nothing of /proc/self/environ


def test_the_opt_in_reads_data_beside_another_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "voxels.raw").write_bytes(bytes(range(64)))
    (tmp_path / "hdr").mkdir()
    header = tmp_path / "hdr" / "img.mhd"
    header.write_text("ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\n"
                      "ElementDataFile = ../data/voxels.raw\n", encoding="ascii")
    with pytest.raises(medaug.errors.ImageReadError, match="MEDAUG_ALLOW_EXTERNAL_DATA=1"):
        medaug.load(header)
    monkeypatch.setenv("MEDAUG_ALLOW_EXTERNAL_DATA", "1")
    assert np.array_equal(np.asarray(medaug.load(header).array).ravel(), np.arange(64))


_HEAD3 = "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_SHORT\nElementDataFile = "


@pytest.mark.parametrize(("data_file", "message"), [
    ("LIST\n", "names 0 data file(s) in its list, but DimSize 4 4 4 with 2D files needs 4"),
    ("LIST\ns0.raw\n", "names 1 data file(s) in its list"),
    ("LIST 1D\ns0.raw\ns1.raw\ns2.raw\ns3.raw\n", "with 1D files needs 16"),
    ("LIST 7D\ns0.raw\n", "gives '7D' as the dimension of its data files"),
    ("LIST 3D\ns0.raw\n", "gives '3D' as the dimension of its data files"),  # found by fuzzing: uninitialised memory
    ("s%d.raw 0 1 1\n", "names 2 data file(s) in its pattern"),
    ("s%d.raw 0 3 1 2\n", "numbered pattern with a file dimension"),
    ("LIST\ns0.raw\ns1.raw\nshort.raw\ns3.raw\n", "its data file 'short.raw' holds 10 bytes"),
    ("LIST\ns0.raw\ns1.raw\nnone.raw\ns3.raw\n", "names the data file 'none.raw', which does not exist"),
])
def test_a_list_of_data_files_must_fill_the_image(tmp_path, data_file, message):
    """ITK read the slices a list or pattern names and left the rest as uninitialised memory (values differed run to
    run); the list must name the files DimSize needs, each long enough."""
    for k in range(4):
        np.full((4, 4), k + 1, np.int16).tofile(tmp_path / f"s{k}.raw")
    (tmp_path / "short.raw").write_bytes(bytes(10))
    (tmp_path / "img.mhd").write_text(_HEAD3 + data_file, encoding="ascii")
    with pytest.raises(medaug.errors.ImageReadError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        medaug.load(tmp_path / "img.mhd")
    assert "img.mhd" in str(info.value)


@pytest.mark.parametrize("data_file", ["LIST\ns0.raw\ns1.raw\ns2.raw\ns3.raw\n", "LIST 2D\ns0.raw\ns1.raw\ns2.raw\ns3.raw\n",
                                       "s%d.raw 0 3 1\n"])
def test_a_complete_list_of_slices_reads(tmp_path, data_file):
    for k in range(4):
        np.full((4, 4), k + 1, np.int16).tofile(tmp_path / f"s{k}.raw")
    (tmp_path / "img.mhd").write_text(_HEAD3 + data_file, encoding="ascii")
    image = medaug.load(tmp_path / "img.mhd")
    assert np.array_equal(np.asarray(image.array), np.repeat(np.arange(1, 5, dtype=np.int16), 16).reshape(4, 4, 4))


@pytest.mark.parametrize("bad", ["../../evil", "/abs/x", "a/b", "x/../x", "a\x00b", "a\nb", "a\x1bb", ".", "..",
                                 ".hidden", "trailing.", " lead", "NUL", "com1.txt", "x" * 129, "",
                                 # a line separator (one line of an error became two), a right-to-left override
                                 # (gpj.exe shows as exe.jpg), zero-width and byte-order marks, a lone surrogate
                                 # (UnicodeEncodeError), Windows' other device names
                                 "a\u2028b", "a\u2029b", "case\u202egpj", "a\u200bb", "\ufeffcase", "a\ud800b",
                                 "CONIN$", "conout$.x", "COM\u00b9", "LPT0"])
def test_unsafe_case_ids_are_named(bad):
    assert case_id_problem(bad) is not None
    with pytest.raises(ParameterError, match="case id"):
        Case(bad, Path("image.nii.gz"))


@pytest.mark.parametrize("good", ["case01", "BraTS-GLI-00001-000", "sub-01_ses-1", "Patient 7", "Müller+2", "a.b"])
def test_ordinary_case_ids_pass(good):
    assert case_id_problem(good) is None


def test_ids_that_collide_as_file_names_share_a_key():
    assert case_id_key("Case1") == case_id_key("case1")
    assert case_id_key("caf\u00e9") == case_id_key("cafe\u0301")  # NFC and NFD spellings (macOS names)


def test_folder_ids_colliding_without_case_are_refused(tmp_path):
    data = _dataset(tmp_path / "in")
    os.rename(data / "images" / "good1.mha", data / "images" / "GOOD0.mha")
    with pytest.raises(ParameterError, match="same case id"):
        read_cases(data)


def test_no_output_path_leaves_the_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert output_path(out, "images", "a.nii.gz") == out / "images" / "a.nii.gz"
    (out / "link").symlink_to(tmp_path)
    for parts in (("..", "x"), ("images", "..", "..", "x"), ("/etc", "passwd"), ("link", "x"), ("",), (".",)):
        with pytest.raises(JobError, match="outside the output folder"):
            output_path(out, *parts)


def test_learn_deformations_refuses_unsafe_ids_before_work(tmp_path, capsys):
    data = _dataset(tmp_path / "in")
    csv = tmp_path / "cases.csv"
    csv.write_text(f"image,case_id\n{data / 'images' / 'good0.mha'},ok\n{data / 'images' / 'good1.mha'},../up\n",
                   encoding="utf-8")
    code = main(["learn-deformations", str(csv), str(tmp_path / "fields")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "line 3: the case id '../up'" in err[0]
    assert not (tmp_path / "fields").exists() and not (tmp_path / "up").exists()


@pytest.mark.parametrize("seed", ["-1", "4294967296", "-4294967296"])
def test_a_seed_beyond_32_bits_is_refused_not_wrapped(tmp_path, capsys, seed):
    """--seed 4294967296 gave the outputs of --seed 0 (the seed was cut to 32 bits)."""
    data = _dataset(tmp_path / "in")
    assert main(["expand", str(data), str(tmp_path / "out"), "--preset", "xray", "-n", "1", "--seed", seed,
                 "--quiet"]) == 2
    assert "the seed must be an integer in 0..4294967295" in capsys.readouterr().err
    assert not (tmp_path / "out" / "images").exists()


_MHD = "ObjectType = Image\nNDims = 3\nDimSize = 8 8 1\nElementType = MET_UCHAR\n"
_NHDR = "NRRD0004\ntype: uint8\ndimension: 2\nsizes: 8 8\nencoding: raw\n"
_PADDING = "".join(f"Comment{i} = padding line {i:07d} of a header that hides its data file\n" for i in range(20_000))


_HIDDEN = [
    ("colon.mhd", _MHD + "ElementDataFile: ../secret.bin\n", {}),  # MetaIO takes ':' as '='
    ("nul_in_name.mhd", _MHD + "ElementDataFile\x00x = ../secret.bin\n", {}),  # MetaIO compares C strings
    ("extra_separators.mhd", _MHD + "ElementDataFile = := ../secret.bin\n", {}),  # MetaIO skips every = and :
    ("list_prefix.mhd", _MHD + "ElementDataFile = LISTED\n../secret.bin\n", {}),  # any 'LIST...' is a list
    ("lower_case_decoy.mhd", _MHD + "elementdatafile = good.raw\nElementDataFile = ../secret.bin\n", {}),
    ("long_header.mhd", _MHD + _PADDING + "ElementDataFile = ../secret.bin\n", {}),  # past a 1 MiB read
    ("value_next_line.mhd", _MHD + "ElementDataFile\nx = ../secret.bin\n", {}),  # MetaIO looks for '=' on
    ("pattern_defaults.mhd", _MHD + "ElementDataFile = ..%csecret.bin 47\n", {}),  # %c of 47 is '/'
    ("gz_fallback.mhd", _MHD + "ElementDataFile = data.raw\n", {"data.raw.gz": "../secret.bin"}),  # tried next
    ("z_fallback.mhd", _MHD + "ElementDataFile = data.raw\n", {"data.raw.Z": "../secret.bin"}),
    ("carriage_returns.nhdr", _NHDR.replace("\n", "\r") + "data file: ../secret.bin\r\r", {}),  # teem: \r ends lines
    ("stdin.nhdr", _NHDR + "data file: -\n\n", {}),  # teem reads standard input
    ("long_header.nhdr", _NHDR + _PADDING.replace("Comment", "# comment") + "data file: ../secret.bin\n\n", {}),
]


@pytest.mark.parametrize(("name", "header", "links"), _HIDDEN, ids=[case[0] for case in _HIDDEN])
def test_a_header_cannot_hide_a_data_file_from_the_check(tmp_path, name, header, links):
    """Each header below made SimpleITK read ../secret.bin (or standard input) although the check had let it pass:
    the check read the header otherwise than MetaIO / teem do.  It must now read it as they do, or refuse it."""
    (tmp_path / "secret.bin").write_bytes(SECRET)
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "good.raw").write_bytes(bytes(64))
    for link, target in links.items():
        (folder / link).symlink_to(target)
    path = folder / name
    path.write_bytes(header.encode("latin-1"))
    for read in (medaug.load, read_header):
        with pytest.raises(medaug.errors.ImageReadError) as info:
            read(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_short_bmp_is_refused_not_read_from_uninitialised_memory(tmp_path):
    """A BMP cut short loaded with whatever the heap held where the rows were missing (values changed run to run)."""
    from PIL import Image as PILImage

    full = tmp_path / "full.bmp"
    PILImage.fromarray(np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)).save(full)
    cut = tmp_path / "cut.bmp"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(medaug.errors.ImageReadError, match="is truncated"):
        medaug.load(cut)
    assert np.array_equal(np.asarray(medaug.load(full).array), np.asarray(PILImage.open(full)))


def test_a_run_length_encoded_bmp_is_refused(tmp_path):
    """ITK's BMP reader leaves the pixels an RLE bitmap skips (end of line, delta) as uninitialised memory."""
    import struct

    palette = b"".join(struct.pack("<4B", i, i, i, 0) for i in range(256))
    data = b"\x02\x07\x00\x00\x00\x01"  # two pixels of 7, end of line, end of bitmap
    offset = 14 + 40 + len(palette)
    dib = struct.pack("<IiiHHIIiiII", 40, 64, 64, 1, 8, 1, len(data), 2835, 2835, 256, 0)
    path = tmp_path / "rle.bmp"
    path.write_bytes(struct.pack("<2sIHHI", b"BM", offset + len(data), 0, 0, offset) + dib + palette + data)
    with pytest.raises(medaug.errors.ImageReadError, match="run-length"):
        medaug.load(path, channels="rgb")


def test_a_nii_without_the_single_file_magic_is_refused(tmp_path):
    """A .nii whose magic is not 'n+1' (a pair header 'ni1', or none: ANALYZE) skipped every NIfTI check; cut short,
    it loaded with the missing voxels as zeros."""
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.full((16, 16, 8), 7, np.int16), np.eye(4)), tmp_path / "full.nii")
    raw = bytearray((tmp_path / "full.nii").read_bytes())
    for magic in (b"ni1\x00", b"\x00\x00\x00\x00"):
        raw[344:348] = magic
        path = tmp_path / "odd.nii"
        path.write_bytes(bytes(raw[: 352 + 512]))
        with pytest.raises(medaug.errors.ImageReadError, match="magic"):
            medaug.load(path)


def test_a_cut_jpeg_is_refused_and_libjpeg_prints_nothing(tmp_path, capfd):
    """A cut JPEG loaded with its missing rows grey, and libjpeg printed 'Premature end of JPEG file' on stdout (in
    the middle of `medaug info`'s output); a JPEG with stray bytes between segments printed 'Corrupt JPEG data'."""
    from PIL import Image as PILImage

    full = tmp_path / "full.jpg"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(full, quality=95)
    raw = full.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(medaug.errors.ImageReadError, match="is truncated"):
        medaug.load(tmp_path / "cut.jpg")
    app0_end = 4 + int.from_bytes(raw[4:6], "big")  # SOI, then APP0 (JFIF) with its length
    (tmp_path / "stray.jpg").write_bytes(raw[:app0_end] + b"abc" + raw[app0_end:])
    capfd.readouterr()
    assert medaug.load(tmp_path / "stray.jpg").shape == (64, 64)
    assert medaug.load(full).shape == (64, 64)
    assert capfd.readouterr() == ("", "")


def test_learn_deformations_refuses_ids_that_would_share_a_field_name(tmp_path, capsys):
    """Fields are named MOVING__to__FIXED: with cases x, z, x__to__y and y__to__z, the pairs (x__to__y onto z) and
    (x onto y__to__z) both wrote x__to__y__to__z; the second was skipped as done and the job exited 0."""
    (tmp_path / "in" / "images").mkdir(parents=True)
    for i, name in enumerate(["x", "z", "x__to__y", "y__to__z"]):
        s = medaug.shepp_logan_2d(16, seed=i)
        medaug.save(s["image"].with_data(np.asarray(s["image"].array, np.float32)),
                    tmp_path / "in" / "images" / f"{name}.nii.gz")
    code = main(["learn-deformations", str(tmp_path / "in"), "-o", str(tmp_path / "fields"), "--pairs", "12", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "the case id 'x__to__y' holds '__to__'" in err[0], err
    assert not (tmp_path / "fields" / "fields").exists()


@pytest.mark.parametrize("command", ["expand", "learn-deformations"])
def test_a_state_folder_linked_out_of_the_output_is_refused(tmp_path, capsys, command):
    """OUTPUT/.medaug as a link to another folder: job.json, dataset.json, the rows and the lock were written there,
    outside OUTPUT, and the job ran on."""
    data = _dataset(tmp_path / "in")
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    out.mkdir()
    (out / ".medaug").symlink_to(elsewhere)
    extra = ["--preset", "xray", "-n", "1"] if command == "expand" else []
    code = main([command, str(data), "-o", str(out), *extra, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "outside the output folder" in err[0], err
    assert list(elsewhere.iterdir()) == []


def test_temporary_files_are_cleaned_only_inside_the_output(tmp_path):
    """The clean-up of an interrupted run's temporary files followed OUTPUT/images when it linked elsewhere."""
    from medaug.datasets.expand import _clean_partial_files

    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    out.mkdir()
    (elsewhere / ".keep.tmp").write_text("not medaug's")
    (out / "images").symlink_to(elsewhere)
    (out / ".left.tmp").write_text("medaug's")
    assert _clean_partial_files(out) == 1
    assert (elsewhere / ".keep.tmp").exists() and not (out / ".left.tmp").exists()
