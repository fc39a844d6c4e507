"""Put the corpus's third-party files in place: each script and its repository's LICENSE, copied
verbatim from a local mirror of the repository at the commit named in sources.json, each checked
against its git blob id. They are never committed (only this project's own files are: run.json,
make_data.py, the notes); a checkout gets them again with

    python corpus/get.py [--mirrors DIR]      # DIR/OWNER+NAME/repo: a bare git mirror (default /work/.mirror)

A repository with no mirror is named, with the commit to fetch (`git clone` it, or the `fetch`
tool of this workplace), and skipped.

    python corpus/get.py --clean              # remove what the runs wrote (data sets, checkpoints, samples)

keeps the third-party files and this project's own: the generated data grows the folder past what
a device call can carry (53 MB after one CPU run of the corpus), and each run's setup makes it again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def git_dir(mirrors: str, repo: str) -> str | None:
    for d in (os.path.join(mirrors, repo.replace("/", "+"), "repo"), os.path.join(mirrors, repo.replace("/", "+"))):
        if os.path.isdir(d) and (os.path.exists(os.path.join(d, "HEAD")) or os.path.isdir(os.path.join(d, ".git"))):
            return d
    return None


def clean() -> int:
    """Remove the ignored files under the corpus that are not third-party files (sources.json)."""
    keep = {os.path.normpath(os.path.join(HERE, s["name"], f["file"]))
            for s in json.load(open(os.path.join(HERE, "sources.json"))) for f in s["files"]}
    out = subprocess.run(["git", "status", "--short", "--ignored", "."], cwd=HERE, capture_output=True, text=True)
    if out.returncode:
        print(f"not a git checkout: nothing removed ({out.stderr.strip()})")
        return 1
    for line in out.stdout.splitlines():
        if not line.startswith("!! "):
            continue
        p = os.path.normpath(os.path.join(HERE, line[3:].rstrip("/")))  # status names paths from its cwd
        if p in keep or any(k.startswith(p + os.sep) for k in keep) or not p.startswith(HERE + os.sep):
            continue  # a third-party file, or a folder holding some
        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        print(f"removed {os.path.relpath(p, HERE)}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mirrors", default=os.environ.get("CORPUS_MIRRORS", "/work/.mirror"))
    p.add_argument("--clean", action="store_true", help="remove what the runs wrote; keep the third-party files")
    args = p.parse_args()
    if args.clean:
        return clean()
    missing = 0
    for src in json.load(open(os.path.join(HERE, "sources.json"))):
        g = git_dir(args.mirrors, src["repo"])
        if g is None:
            print(f"{src['name']}: no mirror of {src['repo']} under {args.mirrors} (need commit {src['commit']})")
            missing += 1
            continue
        for f in src["files"]:
            dest = os.path.join(HERE, src["name"], f["file"])
            blob = subprocess.run(["git", "--git-dir", g, "rev-parse", f"{src['commit']}:{f['upstream']}"],
                                  capture_output=True, text=True).stdout.strip()
            if blob != f["blob"]:
                print(f"{src['name']}/{f['file']}: {src['repo']}@{src['commit'][:10]}:{f['upstream']} is {blob or 'absent'}, "
                      f"not {f['blob'][:10]}")
                missing += 1
                continue
            data = subprocess.run(["git", "--git-dir", g, "cat-file", "blob", blob], capture_output=True, check=True).stdout
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as out:
                out.write(data)
        print(f"{src['name']}: {len(src['files'])} files from {src['repo']}@{src['commit'][:10]}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
