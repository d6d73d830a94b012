"""python3 -m dalesim_analysis {report,status,summary} OUT.h5 | study OUT.h5... -o DIR | study-fixedpoints OUT.h5 -o DIR

Exit codes: 0 success, 1 failure, 2 bad input (missing or foreign file), 3 a Python module is missing.
"""
import argparse
import importlib
import sys

# Debian package of each module the package needs (nothing else is used).
MODULES = {"numpy": "python3-numpy", "h5py": "python3-h5py", "matplotlib": "python3-matplotlib",
           "pandas": "python3-pandas", "xarray": "python3-xarray"}


def check_modules():
    missing = []
    for module, package in MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append((module, package))
    if missing:
        names = ", ".join(m for m, _ in missing)
        packages = " ".join(p for _, p in missing)
        print(f"dalesim_analysis: missing Python module(s) {names} in {sys.executable}; "
              f"install them with: apt-get install {packages}", file=sys.stderr)
        sys.exit(3)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m dalesim_analysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="write the one-page HTML report")
    report.add_argument("file")
    report.add_argument("-o", "--output", required=True, help="HTML file to write")
    report.add_argument("--beat-baseline", type=float, default=None, metavar="X",
                        help="only replicas whose final loss is at most (1 - X) x their task's baseline loss")
    status = sub.add_parser("status", help="progress, rate and ETA from the progress log")
    status.add_argument("file")
    summary = sub.add_parser("summary", help="final loss and alpha per condition")
    summary.add_argument("file")
    study = sub.add_parser("study", help="the alpha study's tables and figures (data/sweeps/study/)")
    study.add_argument("files", nargs="+")
    study.add_argument("-o", "--output", required=True, help="folder for study.md and the PNGs")
    fps = sub.add_parser("study-fixedpoints", help="fixed points of the best replica ending at alpha 1 and at 0")
    fps.add_argument("file")
    fps.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                     help="only replicas with this /replicas value (repeatable), e.g. task=perceptual_dm")
    fps.add_argument("--input", action="append", default=[], metavar="NAME=X1,X2,...",
                     help="a constant input (repeatable); default: zero=0,...,0")
    fps.add_argument("--every", action="store_true", help="every replica ending at an end, not only the best of each")
    fps.add_argument("--binary", default="dalesim", help="the dalesim binary (default: dalesim on PATH)")
    fps.add_argument("-o", "--output", required=True, help="folder for fixed_points.md and the fixed-point files")
    args = parser.parse_args(argv)

    if args.command == "study-fixedpoints":
        check_modules()
        from .study import winners_fixed_points
        try:
            where = dict(w.split("=", 1) for w in args.where)
            inputs = {name: [float(v) for v in x.split(",")] for name, x in (i.split("=", 1) for i in args.input)}
            if not inputs:
                import h5py
                with h5py.File(args.file, "r") as f:
                    n_in = int(f["replicas/n_inputs"][0])
                inputs = {"zero": [0.0] * n_in}
            table = winners_fixed_points(args.file, where, inputs, args.output, binary=args.binary, every=args.every)
        except (FileNotFoundError, KeyError, ValueError, OSError) as e:
            print(f"dalesim_analysis: error: {e}", file=sys.stderr)
            return 2
        print(table.to_string(index=False))
        print(f"wrote {args.output}/fixed_points.md")
        return 0

    if args.command == "study":
        check_modules()
        from .study import write_study
        try:
            write_study(args.files, args.output)
        except (FileNotFoundError, KeyError, ValueError, OSError) as e:
            print(f"dalesim_analysis: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.output}/study.md")
        return 0

    if args.command == "status":  # needs no third-party module
        from .progress import read_progress
        p = read_progress(args.file + ".progress") or read_progress(args.file)
        if p is None:
            print(f"dalesim_analysis: no progress log {args.file}.progress", file=sys.stderr)
            return 2
        print(f"{args.file}: {p.summary()}")
        return 0

    check_modules()
    from .loading import load
    try:
        if args.command == "report":
            from .report import write_report
            if args.beat_baseline is not None and not 0 <= args.beat_baseline < 1:
                raise ValueError(f"--beat-baseline {args.beat_baseline:g}: a fraction in [0, 1) "
                                 "(0.1: final loss at most 90% of the baseline)")
            write_report(args.file, args.output, beat_baseline=args.beat_baseline)
            print(f"wrote {args.output}")
        else:
            from .stats import INTERVAL_TEXT, alpha_moves, condition_final
            run = load(args.file)
            print(run)
            print(f"(lo, hi: {INTERVAL_TEXT}; eval_*: the fixed evaluation set, the rest: the last training batch)")
            for metric in ("eval_loss", "eval_accuracy", "loss", "alpha", "accuracy"):
                if run.has_metric(metric):
                    print(f"\nfinal {metric}:")
                    print(condition_final(run, metric).to_string(index=False))
            if run.has_metric("alpha"):
                print("\nwhere alpha went (final - initial per replica; bimodal: final alpha both <= 0.1 and >= 0.9):")
                print(alpha_moves(run).to_string(index=False))
    except (FileNotFoundError, ValueError) as e:
        print(f"dalesim_analysis: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
