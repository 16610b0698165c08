"""px-repack: file DICOM files into the BASEMOUNT's data tree (copy by default, move with --cleanup)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pypx.claims import spool_files
from pypx.cli.common import Env, add_db_options, basemount, entry, make_parser, parse
from pypx.dicom import templates as tpl
from pypx.errors import ExitCode, UsageError
from pypx.repack import RepackReport, repack_files, repack_spool
from pypx.store.layout import Basemount

PROG = "px-repack"
DESCRIPTION = """\
File DICOM files into <BASEMOUNT>/data/<patient>/<study>/<series>/<image>, named by the templates,
and record them in the database. Files given directly are copied (moved with --cleanup); a --spool
folder (a receiver's leftovers, a C-GET folder) is claimed and moved. Files that cannot be filed go
to <BASEMOUNT>/quarantine/ with a .reason file. Exit code 6 when anything was quarantined."""


def add_template_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("path templates (%Keyword, %_fn|args_Keyword; see docs/receive.md)")
    group.add_argument("--rootDirTemplate", "--patient-template", dest="patient_template",
                       default=tpl.DEFAULT_PATIENT, metavar="T", help="patient folder (default %(default)s)")
    group.add_argument("--studyDirTemplate", "--study-template", dest="study_template",
                       default=tpl.DEFAULT_STUDY, metavar="T", help="study folder (default %(default)s)")
    group.add_argument("--seriesDirTemplate", "--series-template", dest="series_template",
                       default=tpl.DEFAULT_SERIES, metavar="T", help="series folder (default %(default)s)")
    group.add_argument("--imageTemplate", "--image-template", dest="image_template",
                       default=tpl.DEFAULT_IMAGE, metavar="T", help="file name (default %(default)s)")


def templates_from(args: argparse.Namespace) -> tpl.Templates:
    return tpl.Templates(args.patient_template, args.study_template, args.series_template, args.image_template)


def check_datadir(args: argparse.Namespace, base: Basemount) -> None:
    """pypx 3's --datadir is accepted when it names <BASEMOUNT>/data, the only data tree."""
    datadir = getattr(args, "datadir", None)
    if datadir and Path(datadir).expanduser().absolute() != base.data:
        raise UsageError(f"--datadir {datadir} differs from {base.data}",
                         "the data tree is always <BASEMOUNT>/data, beside the --db folder")


def _inputs(args: argparse.Namespace) -> list[Path]:
    """Files named by positional paths, --xcrdir/--xcrfile and --xcrdirfile (folders walked)."""
    named: list[Path] = [Path(p) for p in args.paths]
    if args.xcrdirfile:
        named.append(Path(args.xcrdirfile))
    if args.xcrdir:
        named.append(Path(args.xcrdir) / args.xcrfile if args.xcrfile else Path(args.xcrdir))
    elif args.xcrfile:
        named.append(Path(args.xcrfile))
    substrings = [s for s in (args.parseAllFilesWithSubStr or "").split(",") if s]
    files: list[Path] = []
    for path in named:
        if path.is_dir():
            files += [f for f in spool_files(path) if not substrings or any(s in f.name for s in substrings)]
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path} does not exist")
    return files


def report_json(report: RepackReport, received: int | None = None) -> dict[str, object]:
    result: dict[str, object] = {} if received is None else {"received": received}
    result.update(filed=report.filed, duplicates=report.duplicates, quarantined=report.quarantined,
                  seconds=round(report.seconds, 3), series=report.series,
                  quarantine=[{"path": str(q.path), "reason": q.reason, "original": q.original_name,
                               "SeriesInstanceUID": q.series_uid} for q in report.quarantine])
    return result


def report_line(report: RepackReport) -> str:
    rate = f", {report.filed / report.seconds:.0f} files/s" if report.seconds > 0 and report.filed else ""
    return (f"filed {report.filed} files ({report.duplicates} duplicates), quarantined {report.quarantined}, "
            f"in {report.seconds:.2f} s{rate}")


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    add_db_options(parser)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="DICOM files or folders (walked recursively)")
    parser.add_argument("-p", "--xcrdir", metavar="DIR", help="a folder of files (with -f: that one file)")
    parser.add_argument("-f", "--xcrfile", metavar="NAME", help="one file in --xcrdir")
    parser.add_argument("--xcrdirfile", metavar="FILE", help="one file, by its full path")
    parser.add_argument("--parseAllFilesWithSubStr", metavar="S1,S2", help="in folders, only names containing one")
    parser.add_argument("--spool", action="append", default=[], metavar="DIR",
                        help="claim and move everything under a spool no receiver is writing into")
    parser.add_argument("--cleanup", action="store_true", help="move the input files instead of copying them")
    parser.add_argument("-d", "--datadir", metavar="DIR", help="accepted for pypx 3; must be <BASEMOUNT>/data")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    add_template_options(parser)
    args = parse(parser, argv)
    base = basemount(args)
    check_datadir(args, base)
    templates = templates_from(args)
    files = _inputs(args)
    if not files and not args.spool:
        raise UsageError("nothing to repack", "give files or folders, --xcrdir, --xcrdirfile or --spool")
    report = repack_files(files, base, templates, move=args.cleanup) if files else RepackReport()
    for spool in args.spool:
        if not Path(spool).is_dir():
            raise UsageError(f"--spool {spool} is not a folder")
        report += repack_spool(Path(spool), base, templates)
    if args.json:
        env.out_json(report_json(report))
    elif args.verbosity:
        env.out(report_line(report))
    return int(ExitCode.PARTIAL) if report.quarantined else int(ExitCode.OK)


def main() -> None:
    entry(PROG, run)
