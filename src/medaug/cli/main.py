"""The ``medaug`` command: one module per sub-command, imported only when used.

Every :class:`~medaug.errors.MedaugError` (and running out of memory) becomes
one line on stderr and exit code 2; a warning is one ``warning:`` line; any
other exception (a bug) is one ``internal error:`` line and exit code 3, with
the traceback only when ``MEDAUG_TRACEBACK`` is set.  No traceback reaches the
user.  (Called as ``main([...])`` from Python, warnings and bugs propagate.)
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence

# name -> (module, one-line help); modules define ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("medaug.cli.info", "print an image's size, spacing, origin, direction, dtype and range"),
    "demo": ("medaug.cli.demo", "augment the built-in sample images and write files and a preview"),
    "augment": ("medaug.cli.augment", "write N augmented copies of one case, with a manifest"),
    "presets": ("medaug.cli.presets", "list the modality presets, or print one as YAML"),
    "transforms": ("medaug.cli.transforms", "list the transforms, or one's parameters, units, ranges and modality rules"),
    "check": ("medaug.cli.check", "validate a pipeline config against a modality's safety limits"),
    "expand": ("medaug.cli.expand", "expand a dataset offline: N random copies or a parameter grid per case"),
    "preview": ("medaug.cli.preview", "draw the original and augmented samples in one picture"),
    "enhance": ("medaug.cli.enhance", "enhance or restore an image (CLAHE, N4, denoising, unsharp mask)"),
    "compare": ("medaug.cli.compare", "image-quality or segmentation metrics between two images"),
    "experiment": ("medaug.cli.experiment", "train a small CNN with and without augmentation and compare"),
    "review": ("medaug.cli.review", "serve a local page where a radiologist judges augmented samples"),
    "register": ("medaug.cli.register", "register MOVING onto FIXED (affine + deformable); carry label maps across"),
    "learn-deformations": ("medaug.cli.learn", "register the cases of a dataset and store their deformation fields"),
}


def _available() -> dict[str, tuple[str, str]]:
    out = {}
    for name, (module, text) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = (module, text)
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser(argv: Sequence[str], *, every: bool = False) -> tuple[argparse.ArgumentParser, str | None]:
    """The ``medaug`` parser; only the chosen command's options are added (``every``: all, e.g. for a test)."""
    parser, _, chosen = _parsers(argv, every=every)
    return parser, chosen


def _parsers(argv: Sequence[str], *, every: bool = False
             ) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser], str | None]:
    from ._common import add_quiet_argument

    commands = _available()
    parser = _Parser(prog="medaug", description="Physically correct data augmentation for medical images.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    subparsers = {}
    for name, (module, text) in commands.items():
        p = sub.add_parser(name, help=text, description=text)
        subparsers[name] = p
        if name == chosen or every:  # import only the module that runs: --help stays fast
            importlib.import_module(module).add_arguments(p)
            add_quiet_argument(p)
    return parser, subparsers, chosen if chosen in commands else None


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import MedaugError
    from ._common import check_output, resolve_output

    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers, chosen = _parsers(args_list)
    args, unknown = parser.parse_known_args(args_list)
    if unknown:  # the usage of the command they were given to, not the top-level one
        (subparsers[chosen] if chosen else parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if chosen is not None:
        resolve_output(args, subparsers[chosen])
    if args.version:
        from .. import __version__

        print(f"medaug {__version__}")
        return 0
    if chosen is None:
        parser.print_help()
        return 0 if not args_list else 2
    module = importlib.import_module(_available()[chosen][0])
    program = argv is None  # run as the ``medaug`` program (not called from Python, e.g. by a test)
    with warnings.catch_warnings():
        if program:  # a warning is one line, like an error
            warnings.showwarning = lambda message, *_a, **_k: print(f"medaug {chosen}: warning: {message}", file=sys.stderr)
        if getattr(args, "quiet", False):
            os.environ["MEDAUG_QUIET"] = "1"  # the kernels' compile note too, in this process and its workers
        try:
            check_output(args)
            code = int(module.run(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
            return code
        except BrokenPipeError:  # e.g. 'medaug presets | head': the reader has gone; stop quietly, as cat does
            _silence_stdout()
            return 141  # 128 + SIGPIPE, as a shell reports a program stopped by a closed pipe
        except MedaugError as exc:
            print(f"medaug {chosen}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:  # a job's JobInterrupted says what is kept and how to resume
            signum = getattr(exc, "signum", signal.SIGINT)
            if program:  # leaving anyway: a further Ctrl-C must not add a traceback on the way out
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print(f"medaug {chosen}: {exc if str(exc) else 'interrupted'}", file=sys.stderr)
            return 128 + signum
        except OSError as exc:  # the file system refused (read-only, full, no permission): not a bug in medaug
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"medaug {chosen}: error: {where}{exc.strerror or exc}", file=sys.stderr)
            return 2
        except MemoryError:
            print(f"medaug {chosen}: error: out of memory; use smaller images or a machine with more memory", file=sys.stderr)
            return 2
        except Exception as exc:  # a bug: one line for the user, the traceback on request
            if not program or os.environ.get("MEDAUG_TRACEBACK"):
                raise
            print(f"medaug {chosen}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())}; this is a bug in medaug, please "
                  "report it (set MEDAUG_TRACEBACK=1 to see the traceback)", file=sys.stderr)
            return 3


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
