"""Every command's options follow one pattern: -o/--out for what it writes, --quiet, defaults in the help, usage errors
of the command itself, and an output path of the wrong kind refused on one line."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

import medaug
from medaug.cli.main import COMMANDS, build_parser, main

#: Commands that write files, and whether their output is a folder or a file.
WRITERS = {"augment": "folder", "demo": "folder", "expand": "folder", "preview": "file", "enhance": "file",
           "experiment": "folder", "register": "folder", "learn-deformations": "folder"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser, _ = build_parser([], every=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


SUBPARSERS = _subparsers()


def test_every_command_is_walked():
    assert set(SUBPARSERS) == set(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_options_follow_the_pattern(name):
    p = SUBPARSERS[name]
    options = {s: a for a in p._actions for s in a.option_strings}
    assert "--quiet" in options and "-q" in options
    if name in WRITERS:
        assert options["-o"] is options["--out"], "the output is -o/--out"
        assert p.get_default("output_kind") == WRITERS[name]
    for action in p._actions:
        text = action.help or ""
        assert not re.search(r"\bissue\s*\d", text, re.I), f"{action.dest}: an issue number in the help"
        if isinstance(action, argparse._HelpAction) or not action.option_strings or action.required:
            continue
        assert re.search(r"\bdefault\b|\brequired\b", text), f"{name} {action.option_strings}: no default in {text!r}"
    assert not re.search(r"\bissue\s*\d", p.description or "", re.I)


def test_top_level_help_names_no_issue(capsys):
    assert main([]) == 0
    assert not re.search(r"\bissue\s*\d", capsys.readouterr().out, re.I)


def test_an_unknown_option_prints_the_command_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["augment", "x.nii.gz", "-o", "out", "--preset", "ct", "--bogus"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("usage: medaug augment ") and "medaug augment: error: unrecognized arguments: --bogus" in err


def test_a_missing_output_is_a_usage_error_of_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["expand", "data"])
    err = capsys.readouterr().err
    assert err.startswith("usage: medaug expand ") and "required: -o/--out" in err


@pytest.fixture()
def tiny_image(tmp_path: Path) -> Path:
    medaug.save(medaug.shepp_logan_2d(24, seed=0).image, tmp_path / "img.nii.gz")
    return tmp_path / "img.nii.gz"


@pytest.mark.parametrize("argv", [
    ["augment", "{img}", "--preset", "ct-light", "-n", "1", "-o", "{out}"],
    ["demo", "-o", "{out}"],
    ["expand", "{data}", "-o", "{out}", "--preset", "ct-light", "-n", "1"],
    ["expand", "{data}", "{out}", "--preset", "ct-light", "-n", "1"],  # the deprecated positional form
    ["register", "{img}", "{img}", "-o", "{out}"],
    ["learn-deformations", "{data}", "-o", "{out}"],
    ["experiment", "--quick", "-o", "{out}"],
])
def test_an_output_folder_that_is_a_file_is_a_one_line_error(argv, tiny_image, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    medaug.save(medaug.shepp_logan_2d(24, seed=1).image, data / "images" / "case0.nii.gz")
    out = tmp_path / "taken.txt"
    out.write_text("not a folder\n")
    args = [a.format(img=tiny_image, out=out, data=data) for a in argv]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == f"medaug {argv[0]}: error: {out}: is a file, and -o/--out names the folder this command writes " \
                  "into; give a new or existing folder, or remove the file\n"
    assert out.read_text() == "not a folder\n"


def test_an_output_file_that_is_a_folder_is_refused(tiny_image, tmp_path, capsys):
    assert main(["enhance", str(tiny_image), "-o", str(tmp_path), "--method", "clahe"]) == 2
    assert "is a folder, and -o/--out names the file this command writes" in capsys.readouterr().err


def test_positional_and_option_output_are_one_way(tiny_image, tmp_path, capsys):
    for argv in (["enhance", str(tiny_image), str(tmp_path / "a.nii.gz"), "--method", "clahe"],
                 ["enhance", str(tiny_image), "-o", str(tmp_path / "b.nii.gz"), "--method", "clahe"]):
        assert main(argv) == 0
    assert (tmp_path / "a.nii.gz").exists() and (tmp_path / "b.nii.gz").exists()
    with pytest.raises(SystemExit):
        main(["enhance", str(tiny_image), str(tmp_path / "c.nii.gz"), "-o", str(tmp_path / "d.nii.gz"),
              "--method", "clahe"])
    assert "the output is given twice" in capsys.readouterr().err


def test_quiet_prints_no_progress_or_status_only_the_summary(tiny_image, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    medaug.save(medaug.shepp_logan_2d(24, seed=1).image, data / "images" / "case0.nii.gz")
    assert main(["expand", str(data), "-o", str(tmp_path / "loud"), "--preset", "ct-light", "-n", "2"]) == 0
    loud = capsys.readouterr()
    assert "1 case(s) x 2 = 2 output case(s)" in loud.out and "2/2 items" in loud.err
    assert main(["expand", str(data), "-o", str(tmp_path / "quiet"), "--preset", "ct-light", "-n", "2", "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and len(quiet.out.splitlines()) == 1 and quiet.out.startswith("wrote 2 new case(s)")
    assert main(["info", str(tiny_image), "--quiet"]) == 0
    assert "spacing:" in capsys.readouterr().out


def test_help_is_fast_and_imports_no_command():
    code = ("import sys, medaug.cli.main as m\n"
            "m.build_parser(['--help'])\n"
            "print(sorted(k for k in sys.modules if k.startswith('medaug.cli.') and k not in "
            "('medaug.cli.main', 'medaug.cli._common')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
