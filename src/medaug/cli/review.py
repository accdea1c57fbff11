"""``medaug review DIR [--mode blind|open|turing] [--reviewer NAME] [--port P] [--host H [--allow-remote]]``,
``medaug review DIR --summary [--json] [--suggest-limits RATE]``."""

from __future__ import annotations

import argparse

from ._common import say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder of 'medaug expand' (holds manifest.csv)")
    parser.add_argument("--mode", choices=("blind", "open", "turing"), default="blind",
                        help="blind (default): judge each augmented image alone, the original and the transforms shown "
                        "after the verdict; open: original beside it, transforms shown; turing: visual Turing test, "
                        "originals and augmented images mixed and unlabelled, each answered real or augmented")
    parser.add_argument("--reviewer", help="reviewer's (reader's) name stored with the answers; needed for --mode "
                        "turing (default: none)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                        "another address needs --allow-remote)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a --host reachable from other machines "
                        "(the page then serves patient images to the network; default: off)")
    parser.add_argument("--modality", help="ct, mri, xray, ...: window presets and units (default: the job's, else "
                        "guessed from the first image)")
    parser.add_argument("--summary", action="store_true", help="print the share judged realistic (verdicts) and "
                        "judged real (Turing test) per transform and parameter range, with 95%% intervals, and exit "
                        "(default: off)")
    parser.add_argument("--json", action="store_true", help="with --summary: print it as JSON (default: off)")
    parser.add_argument("--suggest-limits", type=float, metavar="RATE", help="with --summary: list the parameter "
                        "ranges where readers spotted augmentation in more than RATE (0-1) of the readings "
                        "(default: none)")


def _summary(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..errors import ParameterError
    from ..preview.review import (
        TuringStore,
        VerdictStore,
        format_suggestions,
        format_summary,
        format_turing,
        read_samples,
        suggest_limits,
        summarize,
        summary_json,
        turing_summary,
    )
    from ..preview.review.store import DB_NAME

    rate = args.suggest_limits
    if rate is not None and not 0 < rate < 1:
        raise ParameterError(f"--suggest-limits must be a share between 0 and 1 (e.g. 0.5), got {rate}")
    samples = read_samples(args.dir)
    # no database yet: no answers (and nothing written, so a read-only folder works)
    exists = (Path(args.dir) / DB_NAME).exists()
    verdicts = VerdictStore(args.dir).all() if exists else []
    answers = TuringStore(args.dir).all() if exists else []
    rows = summarize(args.dir, samples=samples, verdicts=verdicts)
    judged = len({v["sample"] for v in verdicts if v["sample"] in samples})
    tables = turing_summary(samples, answers)
    if args.json:
        print(json.dumps(summary_json(len(samples), rows, judged, tables, rate), indent=1))
        return 0
    parts = [format_summary(rows, total=len(samples), judged_samples=judged)]
    if answers:
        parts.append(format_turing(tables))
    if rate is not None:
        parts.append(format_suggestions(*suggest_limits(rows, rate), rate, "verdicts ('not realistic')"))
        if answers:
            parts.append(format_suggestions(*suggest_limits(tables[0].rows, rate), rate,
                                            "Turing test, all readers ('augmented')"))
    print("\n\n".join(parts))
    return 0


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import ParameterError
    from ..preview.review import ReviewServer, TuringApp
    from ..preview.review.server import is_loopback

    if args.summary:
        return _summary(args)
    if args.json or args.suggest_limits is not None:
        raise ParameterError("--json and --suggest-limits go with --summary")
    if not 0 <= args.port <= 65535:
        raise ParameterError(f"--port must be in 0..65535, got {args.port}")
    server = ReviewServer(args.dir, host=args.host, port=args.port, mode=args.mode, reviewer=args.reviewer,
                          modality=args.modality, quiet=True, allow_remote=args.allow_remote)
    if not is_loopback(args.host):
        print(f"medaug review: warning: listening on {args.host}: anyone who can reach this machine on the network "
              "can see the patient images and give answers", file=sys.stderr)
    app = server.app
    if isinstance(app, TuringApp):
        if app.missing:
            print(f"medaug review: warning: the original image of {len(app.missing)} case(s) is missing and left out of "
                  f"the test: {', '.join(app.missing[:5])}{' ...' if len(app.missing) > 5 else ''}", file=sys.stderr)
        say(args, f"medaug review: visual Turing test for reader {app.reviewer}: {len(app.tokens)} image(s), originals and "
              f"augmented mixed; answers in {app.store.path}")
    else:
        say(args, f"medaug review: {len(app.samples)} sample(s), {args.mode} mode; verdicts in {app.store.path}")
    print(f"open {server.url} in a browser (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say(args, "\nmedaug review: stopped; answers are saved")
    return 0
