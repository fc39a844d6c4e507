"""`trainprof apply`: run the chosen codemods where the analysis found their patterns.

Never loses code: refuses a file changed since the analysis (its sha256 in
analysis.json), writes atomically, keeps the original beside it as a backup,
and records what it wrote so that a second apply of the same analysis is a no-op.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import os
from dataclasses import dataclass, field

from ..capture import rundir
from ..errors import TrainprofError
from ..files import ChangedMeanwhile, read_regular, write_atomic
from ..source.index import SOURCE_MAX, ParseError, SourceIndex, index_source
from . import applied as A
from .applied import APPLIED_JSON
from .codemod import Codemod, Note, Site



class FixError(TrainprofError):
    """apply refuses (a file changed since the analysis, one that does not parse, a fix that
    would not compile...): an input error, exit 1; nothing written."""


@dataclass
class FileFix:
    path: str
    before: str
    after: str
    notes: list[tuple[str, Note]] = field(default_factory=list)  # (codemod id, note)
    used: list[Codemod] = field(default_factory=list)  # codemods that changed something
    fixes: list[str] = field(default_factory=list)  # fix ids made on the file from the analysis, this one's too
    first_backup: str | None = None  # the backup holding the file as analysed, from an earlier apply
    found: list[tuple[int, str, int, str]] = field(default_factory=list)  # (number, rule, line, fix id) acted on

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        head = "".join(f"# {c.id} ({c.safety}): {c.summary}\n#   {'check' if c.safety == 'unsafe' else 'why safe'}: "
                       f"{c.check}\n" for c in self.used)
        body = difflib.unified_diff(self.before.splitlines(True), self.after.splitlines(True),
                                    f"a/{os.path.relpath(self.path)}", f"b/{os.path.relpath(self.path)}")
        return head + "".join(body)


def all_codemods() -> dict[str, tuple[str, Codemod]]:
    """fix id -> (rule id, codemod), in rule order."""
    from ..rule import all_rules

    out = {}
    for r in all_rules():
        for c in r.codemods:
            out[c.id] = (r.id, c)
    return out


def _read(path: str) -> str:
    try:  # as it is: CRLF lines stay CRLF
        return read_regular(path, SOURCE_MAX).decode("utf-8")
    except OSError as e:
        raise FixError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise FixError(f"{path}: not UTF-8 text") from None


def _line_map(before: str, after: str):
    """Old line number -> new line number, across an edit (for the next codemod's sites)."""
    sm = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    table = {}
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        for k in range(i2 - i1):
            table[i1 + k + 1] = (j1 + k + 1) if tag == "equal" else j1 + min(k, max(j2 - j1 - 1, 0)) + 1
    return lambda ln: table.get(ln, ln)


def fix_text(path: str, text: str, mods: list[Codemod], sites: dict[str, dict[int, dict]] | None,
             index: SourceIndex | None = None) -> FileFix:
    """Run codemods over text. sites: codemod id -> {line: params} (None: --static, everywhere);
    index: the text's index, if already parsed (each codemod's output is indexed anew)."""
    out = FileFix(path, text, text)
    bom = "\ufeff" if text.startswith("\ufeff") else ""  # libcst drops a byte-order mark: put it back
    cur = text[len(bom):]
    remap = [lambda ln: ln]
    for c in mods:
        where = None if sites is None else sites.get(c.id)
        if where is not None and not where:
            continue
        try:
            if index is None or index.text != cur:
                index = index_source(path, cur)
        except ParseError as e:
            where_ = "" if e.line is None else f":{e.line}"
            raise FixError(f"{path}{where_}: does not parse: {e.why}") from None
        lines = None if where is None else {_through(remap, ln) for ln in where}
        params = {} if where is None else {_through(remap, ln): p for ln, p in where.items()}
        site = Site(index, lines, params)
        new = c.transform(site).code
        out.notes += [(c.id, n) for n in site.notes]
        if lines and not site.notes:  # findings where the codemod saw nothing it knows
            out.notes += [(c.id, Note(ln, False, "no form this fix can rewrite here: see the finding's advice"))
                          for ln in sorted(lines)]
        if new != cur:
            out.used.append(c)
            remap.append(_line_map(cur, new))
            cur = new
    out.after = bom + cur
    if out.changed:
        _compiles(path, cur)
    return out


def _compiles(path: str, text: str) -> None:
    """Refuse what a codemod made (from odd parameters, or a bug of ours) unless Python
    parses and compiles it: nothing that does not run is ever written."""
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise FixError(f"{path}:{e.lineno}: the fixed code would not compile ({e.msg}): nothing written") from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise FixError(f"{path}: the fixed code would not compile ({type(e).__name__}): nothing written") from None


def _through(remap, ln: int) -> int:
    for f in remap:
        ln = f(ln)
    return ln


def plan_from_analysis(run_dir: str, mods: list[Codemod], project: str | None = None,
                       picked: dict[int, list[Codemod]] | None = None, a: dict | None = None) -> list[FileFix]:
    """mods act at every finding of their rule; picked: more at one finding each (its index in
    the analysis' findings: the report's number minus one). project: the folder the user states
    apply may write under (--root); by default the analysed script's folder, where it lies under
    the run directory or the current folder. a: the analysis, where the caller has read it."""
    a = a if a is not None else rundir.read_analysis(run_dir)
    if a is None:
        raise FixError(f"{run_dir}: no analysis.json (run `trainprof report {run_dir}` first)")
    _confirm_root(run_dir, a, project)
    applied = A.read(run_dir)
    # A codemod acts at the lines of its rule's findings (a rule's second fix, e.g.
    # hoist-tensor beside host-alloc, looks for its own form at the same lines).
    known = all_codemods()
    rule_of = {fid: rid for fid, (rid, _) in known.items()}
    by_file: dict[str, dict[str, dict[int, dict]]] = {}
    hashes: dict[str, str | None] = {}
    found: dict[str, list] = {}
    for k, f in enumerate(a.get("findings") or []):
        fx = f.get("fix") or {}
        for c in mods + (picked or {}).get(k, []):
            if rule_of.get(c.id) != f.get("rule"):
                continue
            p, recorded = resolve(run_dir, a, f["path"])
            # a linked source is written at its target (as editors do): the writer never follows a
            # link; the target too must lie in the project
            p = _inside_root(run_dir, a, f["path"], os.path.realpath(p))
            hashes[p] = recorded
            params = (fx.get("params") or {}) if fx.get("id") == c.id else {}
            by_file.setdefault(p, {}).setdefault(c.id, {})[int(f["line"])] = params
            found.setdefault(p, []).append((k + 1, f["rule"], int(f["line"]), c.id))
    out = []
    for p, sites in by_file.items():
        text = _read(p)
        h = _sha_file(p)
        todo = [c for fid, (_, c) in known.items() if fid in sites]
        if p in applied and applied[p].sha256 == h:  # as an earlier apply of this analysis left it
            ff = _chain(p, text, applied[p], hashes[p], todo, sites)
        elif hashes[p] != h:
            raise FixError(f"{os.path.relpath(p)} changed since the analysis: run `trainprof analyze` again "
                           "(the lines it found may have moved)")
        else:
            ff = fix_text(p, text, todo, sites)
            ff.fixes = [c.id for c in todo]
        ff.found = found[p]
        out.append(ff)
    return out


def _chain(p: str, text: str, entry: A.Entry, analysed: str, todo: list[Codemod], sites) -> FileFix:
    """The fixes not yet made on a file an earlier apply of this analysis wrote, at the
    analysed lines carried across the earlier edit (a line it changed is left, and said so)."""
    made = set(entry.fixes) if entry.fixes is not None else {c.id for c in todo}
    notes = [(c.id, Note(0, False, "already applied from this analysis")) for c in todo if c.id in made]
    rest = [c for c in todo if c.id not in made]
    if not rest:
        return FileFix(p, text, text, notes)
    orig = A.original(entry, analysed)
    if orig is None:
        raise FixError(f"{os.path.relpath(p)} was fixed from this analysis before, and its backup of the file as "
                       "analysed is gone or changed: run `trainprof analyze` again to fix more")
    moved = {}
    for c in rest:
        moved[c.id], lost = A.carried(orig, text, sites[c.id])
        notes += [(c.id, Note(ln, False, "an earlier fix changed this line (as analysed): left alone"))
                  for ln in lost]
    ff = fix_text(p, text, rest, moved)
    ff.notes = notes + ff.notes
    ff.fixes, ff.first_backup = sorted(made | {c.id for c in rest}), entry.backup
    return ff


def _root(run_dir: str, a: dict) -> str:
    """The analysed script's folder (analysis.json's root, relative to the run directory)."""
    if a.get("root") is None:
        # schema 1 held absolute paths, matched by suffix against whatever checkout was here
        raise FixError(f"{os.path.join(run_dir, rundir.ANALYSIS_JSON)} names no project root (an old schema): "
                       f"run `trainprof report {run_dir} --script SCRIPT` to renew it")
    if "\0" in a["root"]:
        raise FixError(f"{a['root']!r}: a path with a NUL byte in analysis.json: not rewritten")
    return os.path.normpath(os.path.join(os.path.abspath(run_dir), a["root"]))


def _under(p: str, folder: str) -> bool:
    return os.path.commonpath([p, folder]) == folder


def _confirm_root(run_dir: str, a: dict, project: str | None) -> None:
    """The analysis names the folder apply writes in: a run directory is passed around, so that
    folder must be one the user stands in or chose -- under the run directory, the current
    folder, or --root -- never one a received analysis.json alone points at."""
    root = os.path.realpath(_root(run_dir, a))
    ok = [os.path.realpath(project)] if project else [os.path.realpath(run_dir), os.path.realpath(os.getcwd())]
    if not any(_under(root, d) for d in ok):
        where = f"--root {project}" if project else "the run directory and the current folder"
        raise FixError(f"the analysed project {root} is outside {where}: nothing rewritten "
                       f"(run apply from the project, or pass --root {root} if it is yours)")


def _inside_root(run_dir: str, a: dict, path: str, real: str) -> str:
    root = os.path.realpath(_root(run_dir, a))
    if not _under(real, root):
        raise FixError(f"{path}: links to {real}, outside the analysed project ({root}): not rewritten")
    if not real.endswith(".py"):
        raise FixError(f"{path}: not a .py file: not rewritten")
    return real


def resolve(run_dir: str, a: dict, path: str) -> tuple[str, str | None]:
    """(the file a finding of analysis `a` points at, its sha256 as analysed). Paths are
    relative to the analysis' root, the analysed script's folder; a file outside it, or one
    without a recorded sha256, is refused by name."""
    files = a.get("files") or {}
    if "\0" in path:
        raise FixError(f"{path!r}: a path with a NUL byte in analysis.json: not rewritten")
    root = _root(run_dir, a)
    p = os.path.normpath(os.path.join(root, path))
    if not _under(p, root):
        raise FixError(f"{path}: outside the analysed project ({root}): not rewritten")
    if not os.path.isfile(p):
        raise FixError(f"{path}: not found under {root} (the analysis ran elsewhere?)")
    recorded = files.get(os.path.relpath(p, root))
    if not recorded:
        raise FixError(f"{path}: the analysis recorded no sha256 for it: not rewritten")
    return p, recorded


def _sha_file(p: str) -> str:
    return hashlib.sha256(read_regular(p, SOURCE_MAX)).hexdigest()


def preview(path: str, fix_id: str, line: int, params: dict | None = None,
            index: SourceIndex | None = None) -> str | None:
    """The diff one finding's fix would make (None: no codemod, or nothing it can rewrite there).
    index: the file's index where the analysis has it (used if the file still reads the same)."""
    known = all_codemods()
    if fix_id not in known or not os.path.isfile(path):
        return None
    try:
        ff = fix_text(path, _read(path), [known[fix_id][1]], {fix_id: {line: params or {}}}, index)
    except FixError:
        return None
    if not ff.changed:
        return None
    return "".join(difflib.unified_diff(ff.before.splitlines(True), ff.after.splitlines(True),
                                        os.path.basename(path), os.path.basename(path), n=2))


def plan_static(script: str, mods: list[Codemod]) -> list[FileFix]:
    if not os.path.isfile(script):
        raise FixError(f"script not found: {script}")
    return [fix_text(os.path.realpath(script), _read(script), mods, None)]


def backup_path(path: str) -> str:
    p = f"{path}.trainprof.bak"
    n = 2
    while os.path.lexists(p):  # lexists: never write through a (dangling) link named like a backup
        p, n = f"{path}.trainprof.bak{n}", n + 1
    return p


def write(fixes: list[FileFix], run_dir: str | None = None) -> list[tuple[str, str]]:
    """Write each changed file (backup first, then an atomic replace); returns (path, backup).

    Every check runs before the first write, so a refusal writes nothing; an error while
    writing leaves that file as it was and says which files were already written.
    """
    todo = [ff for ff in fixes if ff.changed]
    with contextlib.ExitStack() as locks:
        for ff in todo:
            # another apply of the same file waits here, then finds it changed (below)
            locks.enter_context(_locked(ff.path))
            # the file must still be what was read: a change since would be lost
            if _read(ff.path) != ff.before:
                raise FixError(f"{os.path.relpath(ff.path)} changed while fixing it: nothing written")
            # the rename would replace a read-only file (its folder allows that; so does root):
            # the user said not to write it
            if not os.stat(ff.path).st_mode & 0o222 or not os.access(ff.path, os.W_OK):
                raise FixError(f"{os.path.relpath(ff.path)} is read-only: nothing written")
        done: list[tuple[str, str]] = []
        err = None
        for ff in todo:
            try:
                done.append((ff.path, _write_one(ff)))
            except FixError as e:
                err = e
                break
    if run_dir and done:
        path = os.path.join(run_dir, APPLIED_JSON)
        by_path = {ff.path: ff for ff in todo}
        try:
            write_atomic(path, A.record(run_dir, {p: A.Entry(_sha_file(p), by_path[p].fixes,
                                                             by_path[p].first_backup or b) for p, b in done}))
        except (OSError, TrainprofError) as e:  # TrainprofError: a damaged applied.json
            err = err or FixError(f"cannot record the fixes in {path}: {getattr(e, 'strerror', None) or e} "
                                  "(a second apply of this analysis will refuse the fixed files)")
    if err:
        if done:  # the one-line error says what did change, and where the originals are
            err.message += "; written before it: " + ", ".join(
                f"{os.path.relpath(p)} (backup: {os.path.relpath(b)})" for p, b in done)
        raise err
    return done


@contextlib.contextmanager
def _locked(path: str):
    """An exclusive advisory lock on path while apply checks and replaces it (editors take
    none: for them, the content is checked once more right before the rename)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_locked(run_dir: str):
    """An exclusive advisory lock on the run directory itself (a file lock would not do: the
    fixed file is a new inode after its rename, which a later apply locks at once)."""
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # not ours to read: the files' own locks and checks still hold
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some NFS): as above
            pass
        yield
    finally:
        os.close(fd)


def _write_one(ff: FileFix) -> str:
    """Back the file up, then replace it; its backup's path. OSError -> FixError, file as it was."""
    rel = os.path.relpath(ff.path)
    bak = backup_path(ff.path)
    mode = os.stat(ff.path).st_mode & 0o7777
    try:
        write_atomic(bak, ff.before.encode())
    except OSError as e:  # e.g. a read-only folder: no backup, so no write either
        raise FixError(f"cannot write the backup {os.path.relpath(bak)}: {e.strerror or e}: "
                       f"{rel} left as it was") from None
    try:
        write_atomic(ff.path, ff.after.encode(), mode=mode, unchanged=ff.before.encode())
    except ChangedMeanwhile:
        os.unlink(bak)  # nothing was replaced: the backup of what it no longer holds would mislead
        raise FixError(f"{rel} was saved by another program while apply wrote it: left as that program "
                       "saved it, nothing written to it") from None
    except OSError as e:
        try:  # the file is still the original: its fresh copy would only be clutter
            if _read(ff.path) == ff.before:
                os.unlink(bak)
        except (OSError, FixError):
            pass
        raise FixError(f"cannot write {rel}: {e.strerror or e}: left as it was") from None
    return bak
