"""Glue between Snakemake entry points and the library.

Every entry script in ``scripts/`` ends with::

    run_logged(snakemake_or_cli(globals()), main)

Under Snakemake (``script:`` directive) :func:`snakemake_or_cli` returns the
rule's ``snakemake`` object. Run by hand, it builds a :class:`MockSnakemake`
from the command line, with the same attributes Snakemake gives (``input``,
``output``, ``params``, ``log``, ``threads``, ``resources``, ``config``,
``wildcards``, ``rule``), so a script can be rerun on a finished run's files::

    python scripts/fig_table.py \\
        --input table=results/survival/table1.csv \\
        --input style=resources/sepher.mplstyle \\
        --output pdf=table1.pdf --output png=table1.png \\
        --param kind=table1 --param simulated=true

Command-line arguments (also printed by ``--help``):

``--input NAME=PATH``, ``--output NAME=PATH``
    A named file (an output's folder is made, as Snakemake does). Repeating a name, or writing the value as a YAML list
    (``cells=[a.csv, b.csv]``), makes a list (what Snakemake gives for a
    list of files); otherwise the value is the path, as text.
``--param NAME=VALUE``
    A rule parameter, the value parsed as YAML (``2`` is a number,
    ``[OS, PFS2]`` a list, ``{a: 1}`` a mapping, ``true`` a boolean).
``--params-file FILE``
    A YAML mapping of parameters (``--param`` overrides it).
``--config KEY=VALUE``, ``--configfile FILE``
    The workflow config (``snakemake.config``), YAML as above.
``--wildcard NAME=VALUE``
    A wildcard value (text).
``--log PATH``
    Send output and tracebacks there, as the rule's ``log:`` does; without
    it the script writes to the terminal.
``--threads N``
    Threads (BLAS thread pools are limited to it); default 1.

:func:`run_logged` then calls the script's ``main(snakemake)`` with its
output sent to the log file.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from threadpoolctl import threadpool_limits

__all__ = [
    "MockSnakemake",
    "NamedList",
    "cohort_mem_mb",
    "logged",
    "mock_from_argv",
    "run_logged",
    "snakemake_or_cli",
]


@contextmanager
def logged(log_path):
    """Send stdout, stderr and the logging module to `log_path`.

    With `log_path` None the streams are left alone and the logging module
    writes to stderr (a script run by hand without ``--log``).
    """
    if log_path is None:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)
        logging.getLogger("fontTools").setLevel(logging.WARNING)
        yield sys.stderr
        return
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as stream:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stream
        logging.basicConfig(stream=stream, level=logging.INFO, force=True)
        logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter
        try:
            yield stream
        except Exception:
            traceback.print_exc(file=stream)
            stream.flush()
            sys.stdout, sys.stderr = old_out, old_err
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err


def run_logged(snakemake, main):
    """Call ``main(snakemake)`` with output sent to the rule's first log file.

    An :class:`sepher.errors.InputError` is re-raised after being logged, so
    Snakemake prints its message and removes the rule's outputs. BLAS thread
    pools are limited to the rule's ``threads``. Without a log file (a
    script run by hand without ``--log``) output goes to the terminal.
    """
    log = snakemake.log[0] if len(snakemake.log) else None
    # BLAS threads follow the rule's `threads` (Snakemake limits them only for
    # shell commands); oversubscribed BLAS makes the Cox fits 2-3x slower.
    with logged(log), threadpool_limits(limits=int(getattr(snakemake, "threads", 1) or 1)):
        main(snakemake)


class NamedList(list):
    """A list of values, some of them named, like Snakemake's ``input``/``output``.

    ``items`` is a sequence of ``(name, value)`` pairs (name None for an
    unnamed value). The list holds every value, a list value flattened into
    its elements; a name gives its value (``nl.table``, ``nl["table"]``).
    """

    def __init__(self, items: Iterable[tuple[str | None, object]] = (), *, flatten=True):
        super().__init__()
        self._names: dict[str, object] = {}
        for name, value in items:
            if flatten and isinstance(value, list):
                self.extend(value)
            else:
                self.append(value)
            if name is not None:
                self._names[name] = value

    def __getattr__(self, name):
        names = self.__dict__.get("_names", {})
        if name in names:
            return names[name]
        raise AttributeError(f"no item named {name!r} (named: {', '.join(names) or 'none'})")

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return self._names[key]
            except KeyError:
                raise KeyError(key) from None
        return super().__getitem__(key)

    def keys(self):
        """Names, in order."""
        return self._names.keys()

    def items(self):
        """(name, value) pairs of the named values, in order."""
        return self._names.items()

    def get(self, name, default=None):
        """The value named `name`, or `default`."""
        return self._names.get(name, default)


class MockSnakemake(SimpleNamespace):
    """Stand-in for the ``snakemake`` object when a script is run by hand.

    Built by :func:`mock_from_argv` (or directly, from mappings)::

        MockSnakemake.build(input={"table": "t.csv"}, output={"png": "t.png"},
                            params={"kind": "table1"})
    """

    @classmethod
    def build(
        cls,
        *,
        input: Mapping | None = None,  # noqa: A002 - Snakemake's name
        output: Mapping | None = None,
        params: Mapping | None = None,
        log: Iterable | Mapping | None = None,
        wildcards: Mapping | None = None,
        config: Mapping | None = None,
        threads: int = 1,
        rule: str = "",
    ) -> MockSnakemake:
        """A mock with Snakemake's attributes; mappings become :class:`NamedList`."""

        def named(values, flatten=True):
            if values is None:
                return NamedList()
            if isinstance(values, Mapping):
                return NamedList(values.items(), flatten=flatten)
            return NamedList(((None, v) for v in values), flatten=flatten)

        return cls(
            input=named(input),
            output=named(output),
            params=named(params, flatten=False),
            log=named(log),
            wildcards=named(wildcards),
            resources=NamedList([("_cores", threads)]),
            config=dict(config or {}),
            threads=int(threads),
            rule=rule,
        )


def _split(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"{option} expects NAME=VALUE, got {text!r}")
    return name, value


def _yaml(text: str, option: str):
    import yaml  # only for a script run by hand

    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError as error:
        raise SystemExit(f"{option}: {text!r} is not valid YAML ({error})") from None


def _files(pairs: list[str], option: str) -> dict:
    """NAME=PATH pairs -> {name: path or [paths]} (repeats and YAML lists make lists)."""
    files: dict[str, object] = {}
    for text in pairs:
        name, value = _split(text, option)
        if value.lstrip().startswith("["):
            parsed = _yaml(value, option)
            if not isinstance(parsed, list):
                raise SystemExit(f"{option} {name}: {value!r} is not a YAML list")
            value = [str(v) for v in parsed]
        if name in files:
            before = files[name]
            files[name] = (before if isinstance(before, list) else [before]) + (
                value if isinstance(value, list) else [value]
            )
        else:
            files[name] = value
    return files


def _mapping_file(path: str, option: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"{option} {path}: {error}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{option} {path}: expected a YAML mapping")
    return data


def _parser(prog: str | None, doc: str | None) -> argparse.ArgumentParser:
    summary = (doc or "").strip()
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            (summary + "\n\n" if summary else "")
            + "Run by hand: give the rule's named inputs, outputs and params as "
            "Snakemake would (see sepher.workflow)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--input", action="append", default=[], metavar="NAME=PATH", help="named input file")
    add("--output", action="append", default=[], metavar="NAME=PATH", help="named output file")
    add("--param", action="append", default=[], metavar="NAME=VALUE", help="parameter (YAML)")
    add("--params-file", metavar="FILE", help="YAML mapping of parameters")
    add("--config", action="append", default=[], metavar="KEY=VALUE", help="config (YAML)")
    add("--configfile", metavar="FILE", help="YAML config (snakemake.config)")
    add("--wildcard", action="append", default=[], metavar="NAME=VALUE", help="wildcard")
    add("--log", metavar="PATH", help="log file (default: the terminal)")
    add("--threads", type=int, default=1, help="threads (default 1)")
    return parser


def mock_from_argv(argv=None, *, doc: str | None = None, prog: str | None = None):
    """A :class:`MockSnakemake` from command-line arguments (see the module docstring).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    doc : str, optional
        The script's docstring, shown by ``--help``.
    prog : str, optional
        Program name for ``--help`` and the mock's ``rule``.
    """
    args = _parser(prog, doc).parse_args(argv)
    params = _mapping_file(args.params_file, "--params-file") if args.params_file else {}
    for text in args.param:
        name, value = _split(text, "--param")
        params[name] = _yaml(value, "--param")
    config = _mapping_file(args.configfile, "--configfile") if args.configfile else {}
    for text in args.config:
        name, value = _split(text, "--config")
        config[name] = _yaml(value, "--config")
    wildcards = dict(_split(text, "--wildcard") for text in args.wildcard)
    outputs = _files(args.output, "--output")
    for value in outputs.values():  # as Snakemake does before a job runs
        for path in value if isinstance(value, list) else [value]:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return MockSnakemake.build(
        input=_files(args.input, "--input"),
        output=outputs,
        params=params,
        log=[args.log] if args.log else [],
        wildcards=wildcards,
        config=config,
        threads=args.threads,
        rule=Path(prog).stem if prog else "",
    )


def snakemake_or_cli(namespace: Mapping, argv=None):
    """The ``snakemake`` object of a script: Snakemake's, or one from the command line.

    Parameters
    ----------
    namespace : mapping
        The script's ``globals()``. Under Snakemake it holds ``snakemake``;
        run by hand it does not, and the object is built by
        :func:`mock_from_argv` from `argv` (default ``sys.argv[1:]``), with
        the script's docstring as ``--help``.
    """
    if "snakemake" in namespace:
        return namespace["snakemake"]
    return mock_from_argv(argv, doc=namespace.get("__doc__"), prog=namespace.get("__file__"))


def cohort_mem_mb(cohort_bytes: int, attempt: int = 1) -> int:
    """Memory (MB) to request for a cohort-stage job holding a cohort CSV of `cohort_bytes`.

    The cohort stage holds the whole cohort (a Cox model needs all of it).
    Measured by ``make scale``: peak RSS about 150 MB + 9.5 MB per MB of
    cohort CSV (1,000,000 patients: an 87 MB CSV, 954 MB peak). The request
    is twice that, at least 1000 MB, rounded up to 100 MB, and grows with
    each retry (``attempt``).
    """
    need = max(1000.0, 2 * (150 + 10 * cohort_bytes / 1e6))
    return int(attempt * 100 * -(-need // 100))


def _module_file(package_root: Path, dotted: str) -> Path | None:
    """File of module `dotted` (``sepher.io.tables``) under `package_root`'s parent, or None."""
    path = package_root.parent.joinpath(*dotted.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imported_modules(tree, here: str | None):
    """Dotted names a parsed module imports (absolute, relative resolved).

    `here` is the package relative imports start from (the module's own
    package; None for a script outside the package). ``from a.b import c``
    yields ``a.b`` and ``a.b.c`` (c may be a submodule; a name that is not one
    is dropped by the caller). Imports inside functions count too: a lazy
    import still runs the module.
    """
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if here is None:
                    continue
                parts = here.split(".")
                if node.level > 1:
                    parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}"


#: (file, its package, package root, mtime_ns, size) -> the library modules the file
#: imports directly, as (module file, the package its relative imports start from).
#: The Snakefile asks for the import graph of some 40 entry scripts that share most
#: modules: each module is parsed once per process (an edited file has a new mtime
#: or size, and is parsed again).
_IMPORTS_CACHE: dict[tuple, tuple[tuple[Path, str], ...]] = {}


def _direct_modules(file: Path, here: str | None, package_root: Path) -> tuple:
    """Library module files `file` imports directly (with every package ``__init__.py``
    on the way), parsed once per process and file version."""
    import ast

    stat = file.stat()
    key = (str(file), here, str(package_root), stat.st_mtime_ns, stat.st_size)
    if key in _IMPORTS_CACHE:
        return _IMPORTS_CACHE[key]
    package = package_root.name
    tree = ast.parse(file.read_text(), filename=str(file))
    found: dict[Path, str] = {}
    for dotted in _imported_modules(tree, here):
        if dotted != package and not dotted.startswith(package + "."):
            continue
        parts = dotted.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            module = _module_file(package_root, name)
            if module is None or module in found:
                continue
            found[module] = name if module.name == "__init__.py" else name.rpartition(".")[0]
    _IMPORTS_CACHE[key] = tuple(found.items())
    return _IMPORTS_CACHE[key]


def library_modules(script_path, package_root) -> list[str]:
    """Library files a script runs when imported: its package imports, transitively.

    Snakemake tracks a rule's ``script:`` but not the modules it imports;
    declaring these files as the rule's inputs makes an edit of any of them
    rerun exactly the rules whose scripts import it (rules/common.smk,
    ``library_of``).

    Parameters
    ----------
    script_path : path
        The entry script (``scripts/fig_km.py``).
    package_root : path
        The package folder (``scripts/sepher``); its name is the package name.

    Returns
    -------
    list of str
        Sorted paths of every module file reached: each imported module, the
        ``__init__.py`` of every package on the way (importing ``a.b.c`` runs
        ``a`` and ``a.b`` first), and what those import in turn; relative
        imports and ``from package import submodule`` are followed.
    """
    package_root = Path(package_root).resolve()
    seen: set[Path] = set()
    pending = [(Path(script_path), None)]  # (file, the package its relative imports start from)
    while pending:
        file, here = pending.pop()
        for module, its_package in _direct_modules(file, here, package_root):
            if module not in seen:
                seen.add(module)
                pending.append((module, its_package))
    return sorted(str(path) for path in seen)
