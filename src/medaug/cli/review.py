"""``medaug review DIR [--port P] [--host H [--allow-remote]] [--open] [--summary] [--reviewer NAME]``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder of 'medaug expand' (holds manifest.csv)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                        "another address needs --allow-remote)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a --host reachable from other machines "
                        "(the page then serves patient images to the network)")
    parser.add_argument("--open", action="store_true", help="show the transforms of every sample (default: blind "
                        "until the verdict is given)")
    parser.add_argument("--summary", action="store_true", help="print the share judged realistic per transform and "
                        "parameter range, and exit")
    parser.add_argument("--reviewer", help="reviewer name stored with the verdicts")
    parser.add_argument("--modality", help="ct, mri, ... for the default window (default: the job's, else guessed)")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import ParameterError
    from ..preview.review import ReviewServer, VerdictStore, format_summary, read_samples, summarize
    from ..preview.review.server import is_loopback

    if args.summary:
        from pathlib import Path

        from ..preview.review.store import DB_NAME

        samples = read_samples(args.dir)
        # no database yet: no verdicts (and nothing written, so a read-only folder works)
        verdicts = VerdictStore(args.dir).all() if (Path(args.dir) / DB_NAME).exists() else []
        rows = summarize(args.dir, samples=samples, verdicts=verdicts)
        judged = len({v["sample"] for v in verdicts if v["sample"] in samples})
        print(format_summary(rows, total=len(samples), judged_samples=judged))
        return 0
    if not 0 <= args.port <= 65535:
        raise ParameterError(f"--port must be in 0..65535, got {args.port}")
    server = ReviewServer(args.dir, host=args.host, port=args.port, open_mode=args.open, reviewer=args.reviewer,
                          modality=args.modality, quiet=True, allow_remote=args.allow_remote)
    if not is_loopback(args.host):
        print(f"medaug review: warning: listening on {args.host}: anyone who can reach this machine on the network "
              "can see the patient images and give verdicts", file=sys.stderr)
    mode = "open" if args.open else "blind"
    print(f"medaug review: {len(server.app.samples)} sample(s), {mode} mode; verdicts in {server.app.store.path}")
    print(f"open {server.url} in a browser (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nmedaug review: stopped; verdicts are saved")
    return 0
