"""Run eflomal as a separate process and symmetrize its two directions in our code.

eflomal is GPLv3, so xling never imports it: we call its ``eflomal-align`` executable (installed by
``pip install eflomal`` / the ``xling[align]`` extra) on temporary files. Written by hand: the
plumbing (tokenize, drop empty pairs, re-insert them so line numbers correspond, symmetrize).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from xling.align.pharaoh import write_pharaoh
from xling.align.symmetrize import HEURISTICS, symmetrize
from xling.align.tokenize import tokenize
from xling.errors import XlingError
from xling.io import atomic_path, read_lines

EXE = "eflomal-align"


def default_samplers() -> int:
    """One eflomal sampler per usable core, at most 3 (eflomal's own default): samplers run in
    parallel threads, so wall time stays that of one sampler while extra cores buy accuracy."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(3, cores))


def find_eflomal() -> str:
    exe = shutil.which(EXE)
    if exe is None:
        raise XlingError(f"the `{EXE}` executable (eflomal) is not installed",
                         fix="pip install --no-deps --no-build-isolation eflomal==2.0.0 "
                             "(or pip install 'xling[align]')")
    return exe


def _read_links(path: Path, n: int) -> list[list[tuple[int, int]]]:
    out = []
    for text in path.read_text(encoding="utf-8").split("\n")[:n]:
        nums = list(map(int, text.replace("-", " ").split()))
        out.append(list(zip(nums[0::2], nums[1::2])))
    out += [[] for _ in range(n - len(out))]
    return out


def align_tokenized(src_toks: list[list[str]], tgt_toks: list[list[str]], *, sym: str = "grow-diag-final-and",
                    model: int = 3, length: float = 1.0, n_samplers: int | None = None,
                    priors: str | Path | None = None, save_priors: str | Path | None = None,
                    seed_progress=None) -> list[list[tuple[int, int]]]:
    """Align pre-tokenized sentence pairs; an empty side gives an empty alignment."""
    if len(src_toks) != len(tgt_toks):
        raise XlingError(f"source has {len(src_toks)} sentences but target has {len(tgt_toks)}",
                         fix="give line-aligned files with the same number of lines")
    if sym not in HEURISTICS:
        raise XlingError(f"unknown symmetrization heuristic {sym!r}", fix=f"use one of {', '.join(HEURISTICS)}")
    if model not in (1, 2, 3):
        raise XlingError(f"unknown eflomal model {model}", fix="use 1 (IBM1), 2 (+HMM) or 3 (+fertility)")
    keep = [k for k, (s, t) in enumerate(zip(src_toks, tgt_toks)) if s and t]
    result: list[list[tuple[int, int]]] = [[] for _ in src_toks]
    if not keep:
        return result
    exe = find_eflomal()
    with tempfile.TemporaryDirectory(prefix="xling-align-") as d:
        d = Path(d)
        (d / "src").write_text("".join(" ".join(src_toks[k]) + "\n" for k in keep), encoding="utf-8")
        (d / "tgt").write_text("".join(" ".join(tgt_toks[k]) + "\n" for k in keep), encoding="utf-8")
        cmd = [exe, "-s", str(d / "src"), "-t", str(d / "tgt"), "-f", str(d / "fwd"), "-r", str(d / "rev"),
               "-m", str(model), "-l", str(length), "--overwrite"]
        cmd += ["--n-samplers", str(n_samplers or default_samplers())]
        if priors:
            pp = Path(priors)
            if not pp.is_file():
                raise XlingError("priors file does not exist", file=pp,
                                 fix="write one with `eflomal-makepriors` or drop --priors")
            cmd += ["-p", str(pp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise XlingError("eflomal failed: " + " | ".join(tail), fix="check the input text and options")
        if save_priors:
            mk = shutil.which("eflomal-makepriors")
            if mk is None:
                raise XlingError("the `eflomal-makepriors` executable is missing", fix="reinstall eflomal")
            with atomic_path(save_priors) as tmp:
                proc = subprocess.run([mk, "-s", str(d / "src"), "-t", str(d / "tgt"), "-f", str(d / "fwd"),
                                       "-r", str(d / "rev"), "-p", str(tmp)], capture_output=True, text=True)
                if proc.returncode != 0:
                    raise XlingError("eflomal-makepriors failed: " + proc.stderr.strip()[-300:])
        fwd = _read_links(d / "fwd", len(keep))
        rev = _read_links(d / "rev", len(keep))
    for n, k in enumerate(keep):
        ns, nt = len(src_toks[k]), len(tgt_toks[k])
        links = symmetrize(fwd[n], rev[n], sym)
        result[k] = [(i, j) for i, j in links if i < ns and j < nt]
        if seed_progress is not None:
            seed_progress(1)
    return result


def align_lines(src_lines: list[str], tgt_lines: list[str], *, sym: str = "grow-diag-final-and",
                tokenizer: str = "unicode", lowercase: bool = True, model: int = 3, length: float = 1.0,
                n_samplers: int | None = None, priors: str | Path | None = None,
                save_priors: str | Path | None = None, progress=None) -> list[list[tuple[int, int]]]:
    """Word-align raw sentence pairs; links index the words of :func:`xling.align.tokenize.tokenize`.

    One eflomal run per call; cost grows about linearly with the text (1000 tatoeba pairs: ~1-2 s on
    one core). ``progress`` is an optional callable advanced by one per pair.
    """
    if len(src_lines) != len(tgt_lines):
        raise XlingError(f"source has {len(src_lines)} lines but target has {len(tgt_lines)}",
                         fix="give line-aligned text with the same number of lines on both sides")
    src = [tokenize(s, tokenizer, lowercase) for s in src_lines]
    tgt = [tokenize(t, tokenizer, lowercase) for t in tgt_lines]
    return align_tokenized(src, tgt, sym=sym, model=model, length=length, n_samplers=n_samplers,
                           priors=priors, save_priors=save_priors, seed_progress=progress)


def read_parallel(src: str | Path | None = None, tgt: str | Path | None = None,
                  input: str | Path | None = None) -> tuple[list[str], list[str]]:
    """Read either two line-aligned files or one ``src ||| tgt`` file, checking everything first."""
    if input is not None:
        if src is not None or tgt is not None:
            raise XlingError("give either --input or --src/--tgt, not both")
        lines = read_lines(input, "input file")
        s_out, t_out = [], []
        for n, line in enumerate(lines, 1):
            if line.strip() == "":
                s_out.append("")
                t_out.append("")
                continue
            parts = line.split(" ||| ") if " ||| " in line else line.split("|||")
            if len(parts) != 2:
                raise XlingError(f"malformed line: expected `source ||| target`, found {len(parts) - 1} "
                                 "`|||` separators", file=input, line=n,
                                 fix="write exactly one ` ||| ` between source and target on every line")
            s_out.append(parts[0].strip())
            t_out.append(parts[1].strip())
        return s_out, t_out
    if src is None or tgt is None:
        raise XlingError("missing input", fix="give --src F --tgt F, or --input F with `src ||| tgt` lines")
    s_lines = read_lines(src, "source file")
    t_lines = read_lines(tgt, "target file")
    if len(s_lines) != len(t_lines):
        raise XlingError(f"source has {len(s_lines)} lines but target {tgt} has {len(t_lines)} lines",
                         file=src, fix="the two files must be line-aligned translations")
    return s_lines, t_lines


def align_files(out: str | Path, *, src=None, tgt=None, input=None, **kw) -> int:
    """Align files and write Pharaoh links to ``out`` atomically; return the number of pairs."""
    s, t = read_parallel(src, tgt, input)
    write_pharaoh(out, align_lines(s, t, **kw))
    return len(s)
