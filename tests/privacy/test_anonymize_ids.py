"""``--anonymize-ids``: names in folder and file names never reach an output; the key and the map stay outside.

The dataset holds a DICOM series in a folder named ``DOE_JOHN_MRN0012345`` and
a NIfTI file ``SMITH_ANNA_19800101.nii.gz``.  Without the option the case ids
are those names (and every job warns once).  With it, every byte and name of
every output (``expand``, ``learn-deformations``, ``augment``; ``preview``'s
title) is scanned for them: none is found, and none of the salt either; the
same salt gives the same pseudonyms in every command and resumes a job.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

import medaug
from medaug.cli.main import main
from medaug.datasets.anonymize import Pseudonyms, warn_if_identifying
from medaug.datasets.cases import Case
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.datasets.writing import read_manifest

from .test_no_identifiers import write_identified_series

NAMES = ["DOE_JOHN", "MRN0012345", "0012345", "SMITH_ANNA", "19800101"]
PSEUDONYM = re.compile(r"case-[0-9a-f]{12}")


@pytest.fixture
def dataset(tmp_path) -> Path:
    data = tmp_path / "data"
    write_identified_series(data / "images" / "DOE_JOHN_MRN0012345", shape=(16, 24, 20))
    s = medaug.shepp_logan_3d(20, seed=1)
    medaug.save(s["image"].with_data(s["image"].array.astype(np.int16)), data / "images" / "SMITH_ANNA_19800101.nii.gz")
    return data


def _found(folder: Path, salt: Path | None = None) -> list[str]:
    """Every name (and the salt) found in any byte or file name under ``folder``."""
    needles = NAMES + ([salt.read_text().strip()] if salt else [])
    found = []
    for p in [folder, *folder.rglob("*")]:
        blob = str(p.relative_to(folder.parent)).encode()
        if p.is_file():
            data = p.read_bytes()
            blob += gzip.decompress(data) if p.name.endswith(".gz") else data
        found += [n for n in needles if n.encode() in blob]
    return sorted(set(found))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_scan_finds_the_names_without_the_option_and_the_job_warns_once(dataset, tmp_path):
    with pytest.warns(UserWarning, match="looks like it holds") as caught:
        run_expand(ExpandJob(str(dataset), str(tmp_path / "plain"), None, grid=[{}]), progress=False)
    assert len(caught) == 1 and "--anonymize-ids" in str(caught[0].message)
    assert {"DOE_JOHN", "SMITH_ANNA", "19800101"} <= set(_found(tmp_path / "plain"))
    assert not any(r["source_image"] == "" for r in read_manifest(tmp_path / "plain" / "manifest.csv"))


def test_expand_leaves_no_name_in_the_output_and_keeps_key_and_map_beside_it(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["expand", str(dataset), str(out), "--preset", "ct-light", "-n", "2", "--anonymize-ids", "--quiet"]) == 0
    salt, id_map = tmp_path / "out.id-salt", tmp_path / "out.id-map.csv"
    assert _found(out, salt) == []
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 4 and all(PSEUDONYM.fullmatch(r["case_id"]) for r in rows)
    assert all(r["source_image"] == r["source_label"] == "" for r in rows)
    assert _mode(salt) == _mode(id_map) == 0o600
    back = {r["case_id"]: r for r in read_manifest(id_map)}
    assert {r["original_case_id"] for r in back.values()} == {"DOE_JOHN_MRN0012345", "SMITH_ANNA_19800101"}
    assert back[rows[0]["case_id"]]["source_image"].startswith(str(dataset / "images"))
    # the same command resumes (same salt); another salt, or none, is another job
    assert main(["expand", str(dataset), str(out), "--preset", "ct-light", "-n", "2", "--anonymize-ids", "--quiet"]) == 0
    assert "wrote 0 new case(s)" in capsys.readouterr().out
    (tmp_path / "other.salt").write_text("another secret, long enough\n")
    assert main(["expand", str(dataset), str(out), "--preset", "ct-light", "-n", "2", "--anonymize-ids", "--quiet",
                 "--id-salt", str(tmp_path / "other.salt")]) == 1
    assert "case ids were replaced by pseudonyms with another salt" in capsys.readouterr().err
    salt.rename(tmp_path / "kept.salt")
    assert main(["expand", str(dataset), str(out), "--preset", "ct-light", "-n", "2", "--anonymize-ids", "--quiet"]) == 2
    assert "the salt file of the pseudonyms does not exist" in capsys.readouterr().err


def test_one_salt_gives_the_same_pseudonyms_in_every_command(dataset, tmp_path, capsys, monkeypatch):
    salt = tmp_path / "team.salt"
    key = ["--anonymize-ids", "--id-salt", str(salt)]
    assert main(["expand", str(dataset), str(tmp_path / "exp"), "--preset", "ct-light", "-n", "1", "--quiet", *key]) == 0
    alias = {r["original_case_id"]: r["case_id"] for r in read_manifest(tmp_path / "exp.id-map.csv")}
    assert set(alias.values()) == {r["case_id"] for r in read_manifest(tmp_path / "exp" / "manifest.csv")}

    fields = tmp_path / "fields"
    assert main(["learn-deformations", str(dataset), str(fields), "--reference", "SMITH_ANNA_19800101",
                 "--time-limit", "20", "--quiet", *key]) == 0
    (row,) = read_manifest(fields / "manifest.csv")
    assert (row["fixed"], row["moving"]) == (alias["SMITH_ANNA_19800101"], alias["DOE_JOHN_MRN0012345"])
    assert _found(fields, salt) == []

    series = dataset / "images" / "DOE_JOHN_MRN0012345"
    assert main(["augment", str(series), "--preset", "ct-light", "-n", "1", "-o", str(tmp_path / "aug"), *key]) == 0
    assert read_manifest(tmp_path / "aug" / "manifest.csv")[0]["case_id"] == alias["DOE_JOHN_MRN0012345"]
    assert _found(tmp_path / "aug", salt) == []

    titles = []
    monkeypatch.setattr("medaug.preview.figures.preview",
                        lambda original, outputs, out, **kw: titles.append(original.metadata["case_id"]) or out)
    assert main(["preview", str(series), "--preset", "ct-light", "-n", "1", "-o", str(tmp_path / "p.png"), *key]) == 0
    assert titles == [alias["DOE_JOHN_MRN0012345"]]  # the title shows the case id as the manifest has it
    assert "DOE_JOHN" not in capsys.readouterr().out


def test_the_key_and_the_map_never_go_inside_the_output_and_identifiers_are_not_kept(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    for option in ("--id-map", "--id-salt"):
        code = main(["expand", str(dataset), str(out), "--preset", "ct-light", "-n", "1", "--anonymize-ids", "--quiet",
                     option, str(out / "inside.csv")])
        assert code == 2 and f"{option} {out / 'inside.csv'} lies inside the output" in capsys.readouterr().err
    code = main(["augment", str(dataset / "images" / "SMITH_ANNA_19800101.nii.gz"), "--preset", "ct-light", "-o",
                 str(out), "--anonymize-ids", "--keep-identifiers"])
    assert code == 2 and "choose one" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "kind"), [("DOE_JOHN", "a name"), ("Doe^John", "a name"), ("p_MRN0012345", "a record"),
                                            ("scan_2024-09-17", "a date"), ("x_19800101", "a date"),
                                            ("1234567", "a record")])
def test_names_record_numbers_and_dates_are_noticed(name, kind):
    with pytest.warns(UserWarning, match=f"holds {kind}"):
        warn_if_identifying([Case(name, Path(f"/data/images/{name}.nii.gz"))], Path("/data"))


@pytest.mark.parametrize("name", ["case00", "BraTS2021_00001", "LIDC-IDRI-0001", "hippocampus_001", "BRAIN_MRI", "img3"])
def test_ordinary_dataset_ids_pass(name, recwarn):
    warn_if_identifying([Case(name, Path(f"/home/JOHN_DOE/2024-01-01/data/images/{name}.nii.gz"))],
                        Path("/home/JOHN_DOE/2024-01-01/data"))  # the folders above the dataset are not looked at
    assert len(recwarn) == 0


def test_pseudonyms_depend_on_the_salt_only():
    a, b = Pseudonyms(b"k" * 32), Pseudonyms(b"q" * 32)
    assert a("DOE_JOHN") == Pseudonyms(b"k" * 32)("DOE_JOHN") != b("DOE_JOHN")
    assert a.check() != b.check() and b"k" * 4 not in a.check().encode()


@pytest.mark.parametrize("originals", [False, True])
def test_the_review_page_opens_an_anonymized_expansion(dataset, tmp_path, originals, capsys):
    """`medaug review` and `--summary` refused every --anonymize-ids expansion ('line 2: source_image is empty'): the
    manifest lists no source.  The page shows the pseudonyms; the original is the --include-originals copy, or none."""
    import json
    import urllib.request

    from medaug.preview.review import ReviewServer

    out = tmp_path / "out"
    assert main(["expand", str(dataset), str(out), "--preset", "ct-light", "-n", "1", "--anonymize-ids", "--quiet",
                 *(["--include-originals"] if originals else [])]) == 0
    assert main(["review", str(out), "--summary"]) == 0
    assert not any(n in capsys.readouterr().out for n in NAMES)
    for mode in ("open", "turing"):
        srv = ReviewServer(out, port=0, mode=mode, reviewer="reader").start()
        try:
            route = "/api/samples" if mode == "open" else "/api/turing/deck"
            body = urllib.request.urlopen(srv.url.rstrip("/") + route).read()
            assert not any(n.encode() in body for n in NAMES)
            if mode == "open":
                samples = json.loads(body)["samples"]
                assert len(samples) == (4 if originals else 2)  # the original copies are samples too
                assert all(PSEUDONYM.fullmatch(s["case_id"]) for s in samples)
                assert all(s["original"] is originals for s in samples)
                url = f"{srv.url.rstrip('/')}/api/meta?sample={samples[0]['id']}&which=original"
                if originals:
                    assert urllib.request.urlopen(url).status == 200
                else:
                    with pytest.raises(urllib.error.HTTPError) as info:
                        urllib.request.urlopen(url)
                    assert info.value.code == 404 and b"--include-originals" in info.value.read()
            else:
                assert json.loads(body)["total"] == (4 if originals else 2)  # augmented copies + originals, if any
        finally:
            srv.stop()
