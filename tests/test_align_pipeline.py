"""The alignment pipeline without eflomal: a stand-in sampler writes known links, so chunking, empty and
over-long lines, index mapping for pre-tokenized input, the run record and the progress estimate are
checked exactly (these tests run where eflomal is not installed)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xling.align import eflomal as eflomal_mod
from xling.align import decode, encode
from xling.align.links import Alignments, format_pharaoh, parse_links
from xling.align.symmetrize import symmetrize, symmetrize_batch
from xling.cli.main import app

runner = CliRunner()


def _read_num(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="ascii").split("\n")
    n, _ = map(int, lines[0].split())
    out = []
    for ln in lines[1:n + 1]:
        k, *ids = ln.split()
        assert int(k) == len(ids)
        out.append(ids)
    return out


@pytest.fixture
def fake_sampler(monkeypatch):
    """Forward links: each source word to the target word at the same relative position; reverse: the
    same plus (0, last) so the two directions differ and symmetrization has work to do."""
    calls = []

    def run(src, tgt, fwd, rev, *, n_sentences, progress=None, **kw):
        calls.append(dict(kw, n_sentences=n_sentences))
        s, t = _read_num(src), _read_num(tgt)
        assert len(s) == len(t) == n_sentences
        with open(fwd, "w") as f, open(rev, "w") as r:
            for a, b in zip(s, t):
                if not a or not b:
                    f.write("\n")
                    r.write("\n")
                    continue
                diag = [(i, min(len(b) - 1, i * len(b) // len(a))) for i in range(len(a))]
                f.write(" ".join(f"{i}-{j}" for i, j in diag) + "\n")
                r.write(" ".join(f"{i}-{j}" for i, j in sorted(set(diag) | {(0, len(b) - 1)})) + "\n")
        if progress:
            progress("sampling", 1, 1)
        return {"eflomal_peak_rss_mb": 0.0}

    monkeypatch.setattr(eflomal_mod, "run_sampler", run)
    return calls


def _expected(ns, nt, sym="grow-diag-final-and"):
    if not ns or not nt:
        return []
    diag = [(i, min(nt - 1, i * nt // ns)) for i in range(ns)]
    return symmetrize(diag, sorted(set(diag) | {(0, nt - 1)}), sym)


def test_chunked_pipeline_matches_per_pair(tmp_path, fake_sampler, monkeypatch):
    rng = np.random.default_rng(0)
    src, tgt = [], []
    for k in range(200):
        a, b = rng.integers(1, 30, 2)
        src.append(" ".join(f"s{x}" for x in rng.integers(0, 50, a)))
        tgt.append(" ".join(f"T{x}" for x in rng.integers(0, 50, b)))
    src[3] = ""          # empty side: no links, line kept
    tgt[7] = "   "
    src[11] = " ".join(["w"] * 1100)  # longer than eflomal's 1024 words: no links, like eflomal-align
    inp = tmp_path / "in.txt"
    inp.write_text("".join(f"{a} ||| {b}\n" for a, b in zip(src, tgt)), encoding="utf-8")
    outs = {}
    for chunk, runs in ((7, "1000"), (100_000, "0")):
        # the small chunks also take the two-process paths: the target side numbered by a second process,
        # the second half of each run's chunks decoded by a forked one
        monkeypatch.setattr(decode, "MAX_CHUNK", chunk)
        monkeypatch.setattr(decode, "PARALLEL_MIN_PAIRS", 0 if chunk == 7 else 1 << 60)
        monkeypatch.setattr(encode, "PARALLEL_MIN_BYTES", 0 if chunk == 7 else 1 << 60)
        out = tmp_path / f"o{chunk}.al"
        r = runner.invoke(app, ["align", "--input", str(inp), "--out", str(out), "--run-pairs", runs])
        assert r.exit_code == 0, r.output
        outs[chunk] = out.read_text(encoding="utf-8")
    assert outs[7] == outs[100_000]
    # several eflomal runs (each on its own slice of pairs) give the same links with this sampler
    monkeypatch.setattr("xling.align.options.MIN_RUN_PAIRS", 1)
    monkeypatch.setattr(decode, "PARALLEL_MIN_PAIRS", 0)
    monkeypatch.setattr(encode, "PARALLEL_MIN_BYTES", 0)
    r = runner.invoke(app, ["align", "--input", str(inp), "--out", str(tmp_path / "runs.al"), "--run-pairs", "60"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs.al").read_text(encoding="utf-8") == outs[7]
    assert [c["n_sentences"] for c in fake_sampler[-4:]] == [60, 60, 60, 20]
    assert json.loads((tmp_path / "runs.al.json").read_text())["eflomal_runs"] == 4
    lines = outs[7].split("\n")[:-1]
    assert len(lines) == 200 and lines[3] == lines[7] == lines[11] == ""
    for k, ln in enumerate(lines):
        ns, nt = len(src[k].split()), len(tgt[k].split())
        if k in (3, 7, 11):
            continue
        got = [tuple(map(int, x.split("-"))) for x in ln.split()]
        assert got == _expected(ns, nt), k
    rec = json.loads((tmp_path / "o7.al.json").read_text())
    assert rec["kind"] == "xling-align" and rec["pairs"] == 200 and rec["links"] == sum(len(x.split()) for x in lines)
    assert rec["options"]["tokenizer"] == "unicode" and rec["options"]["n_samplers"] >= 1
    assert fake_sampler[0]["model"] == 3 and fake_sampler[0]["length"] == rec["options"]["length"]


def test_pretokenized_input_keeps_input_token_indices(tmp_path, fake_sampler):
    """`src ||| tgt` input is aligned on finer (unicode) words, but links index the input's own tokens."""
    inp = tmp_path / "in.txt"
    inp.write_text("我们 喜欢 猫 。 ||| we like cats.\nl'homme , oui ||| the man , yes\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = runner.invoke(app, ["align", "--input", str(inp), "--out", str(out)])  # the default tokenizer: unicode
    assert r.exit_code == 0, r.output
    lines = out.read_text(encoding="utf-8").splitlines()
    # internal words: 我 们 喜 欢 猫 。 | we like cats . -> map back onto 4 and 3 whitespace tokens
    internal = _expected(6, 4)
    own_s, own_t = [0, 0, 1, 1, 2, 3], [0, 1, 2, 2]
    assert [tuple(map(int, x.split("-"))) for x in lines[0].split()] == \
        sorted({(own_s[i], own_t[j]) for i, j in internal})
    links = [tuple(map(int, x.split("-"))) for x in lines[1].split()]
    assert all(i < 3 and j < 4 for i, j in links)
    # --tokenizer whitespace aligns the input's tokens as they are
    r = runner.invoke(app, ["align", "--input", str(inp), "--out", str(tmp_path / "w.al"), "--tokenizer", "whitespace"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "w.al").read_text().splitlines()[0].split() == \
        [f"{i}-{j}" for i, j in _expected(4, 3)]


def test_align_lines_returns_compact_alignments(tmp_path, fake_sampler):
    from xling.align import align_lines, write_pharaoh

    al = align_lines(["Hello, world!", "", "a b c"], ["Bonjour le monde !", "x", "y z"])
    assert isinstance(al, Alignments) and len(al) == 3
    assert al[0] == _expected(4, 4) and al[1] == [] and al[2] == _expected(3, 2)
    sub = al.take([2, 0])
    assert list(sub) == [al[2], al[0]]
    write_pharaoh(tmp_path / "x.al", sub)
    assert (tmp_path / "x.al").read_text() == "".join(" ".join(f"{i}-{j}" for i, j in a) + "\n" for a in sub)


def test_links_parse_and_format_round_trip():
    text = b"0-0 1-2\n\n3-4 200-1 5-130\n\n"
    sid, i, j = parse_links(text, 4)
    assert sid.tolist() == [0, 0, 2, 2, 2] and i.tolist() == [0, 1, 3, 200, 5] and j.tolist() == [0, 2, 4, 1, 130]
    assert format_pharaoh(4, sid, i, j).encode() == text
    assert format_pharaoh(2, sid[:0], i[:0], j[:0]) == "\n\n"
    with pytest.raises(ValueError):
        parse_links(b"0-0\n", 2)


@pytest.mark.parametrize("sym", ["intersect", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and"])
def test_batch_symmetrization_equals_one_pair_at_a_time(sym):
    rng = np.random.default_rng(1)
    ns, nt, fwd, rev = [], [], [], []
    for _ in range(300):
        a, b = (int(x) for x in rng.integers(1, 12, 2))
        ns.append(a)
        nt.append(b)
        fwd.append(sorted({(int(rng.integers(a)), int(rng.integers(b))) for _ in range(rng.integers(0, a + 2))}))
        rev.append(sorted({(int(rng.integers(a)), int(rng.integers(b))) for _ in range(rng.integers(0, b + 2))}))

    def flat(links):
        sid = np.repeat(np.arange(len(links)), [len(x) for x in links])
        arr = np.array([p for x in links for p in x], np.int64).reshape(-1, 2)
        return sid, arr[:, 0], arr[:, 1]

    sid, i, j = symmetrize_batch(np.array(ns), np.array(nt), flat(fwd), flat(rev), sym)
    got = [[] for _ in ns]
    for s, a, b in zip(sid.tolist(), i.tolist(), j.tolist()):
        got[s].append((a, b))
    for k in range(len(ns)):
        f, r = set(fwd[k]), set(rev[k])
        assert got[k] == symmetrize(fwd[k], rev[k], sym), k  # the batch does not mix pairs
        assert f & r <= set(got[k]) <= f | r
        if sym in ("intersect", "union"):
            assert set(got[k]) == (f & r if sym == "intersect" else f | r)


def test_sampler_progress_moves_between_eflomal_messages(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(eflomal_mod.time, "monotonic", lambda: now[0])
    seen = []
    p = eflomal_mod._SamplerProgress((2, 2, 8), tokens=1000, callback=lambda *a: seen.append(a))
    assert p.total == 2 * (12 + 1)
    p.line("Aligning with model 1 (2 iterations)")
    p.line("Aligning with model 1 (2 iterations)")
    e0 = p.estimate()
    now[0] += 1e-3
    assert p.estimate() > e0  # moves with time inside a stage
    now[0] += 1e6
    assert p.estimate() == 2 * (2 - 1)  # but never past a stage eflomal has not finished
    p.line("Done: 1.0 s")
    p.line("Done: 1.0 s")
    assert p.estimate() == 4
    p.tick()
    assert seen[-1] == ("sampling", 4, 26)


def test_iterations_follow_eflomal_schedule():
    it = eflomal_mod.iterations
    assert it(100_000, 1.0, 3, "eflomal", 4) == (4, 4, 16)  # eflomal-align's own numbers
    assert it(100_000, 0.5, 2, "eflomal", 4) == (2, 8, 0)
    assert it(1_000_000, 0.5, 3, "eflomal", 4) == (2, 2, 4)  # floored (eflomal: 2, 1, 2)
    assert it(10, 1.0, 1) == (1581, 0, 0)
    assert it(100_000, 0.75, 3) == (1, 1, 12)  # the default: short IBM1 and HMM stages, then the fertility model
    assert it(500_000, 0.75, 3) == (2, 0, 8)  # floored: two IBM1 iterations, no separate HMM stage
    assert it(500_000, 0.75, 2) == (2, 8, 0)
    assert it(1000, 0.75, 2) == (27, 119, 0)  # small corpora: eflomal's shape


def test_vectorised_numbering_equals_line_tokenization(tmp_path):
    """The pipeline splits a whole block at once and each distinct whitespace token once (cached); that must
    give exactly `tokenize(line)` per line (pieces.py and cs-mlm read the links back with it), and the
    owners must point at the whitespace token each word came from."""
    import numpy as np

    from xling.align.numbering import SideNumbering, tokens_per_line
    from xling.align.tokenize import tokenize

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "tatoeba"
    lines = ["Don't go, well-known 我爱你！ l'homme (test)", "İstanbul'a  gidiyorum…", "a\u00a0b\tc \u3000d\x1ce",
             "", "  ", "ΟΔΟΣ Σ", "x"]
    if data.is_dir():
        for f in sorted(data.iterdir()):
            lines += f.read_text(encoding="utf-8").splitlines()[:200]
    side = SideNumbering(tmp_path / "side.num", "unicode")
    per_tok, n_words, wid, (split_line, owners, owner_line) = side.split(lines, True, True)
    words = np.array(list(side.vocab), dtype=object)
    at = np.concatenate(([0], np.cumsum(n_words)))
    o_at = np.concatenate(([0], np.cumsum(np.where(split_line, n_words, 0))))
    assert split_line[0] and owners[:12].tolist() == [0, 1, 1, 2, 3, 3, 3, 3, 4, 5, 5, 5]
    for k, line in enumerate(lines):
        w = words[wid[at[k]:at[k + 1]]].tolist()
        assert w == tokenize(line, "unicode", lowercase=True), line
        ws = line.lower().split()
        assert per_tok[k] == len(ws)
        if not split_line[k]:
            assert w == ws
        else:
            o = owners[o_at[k]:o_at[k + 1]].tolist()
            assert (owner_line[o_at[k]:o_at[k + 1]] == k).all()
            assert len(o) == len(w) and all(w[x] in ws[i] for x, i in enumerate(o))
    flat = SideNumbering(tmp_path / "flat.num", "unicode")
    assert flat.split(["a b c", "d e"], False, True)[3] is None  # nothing to split
    # in-memory input may hold a line feed inside a sentence: counted line by line, as str.split() does
    assert flat.split(["a\nb c", "d"], False, True)[1].tolist() == [3, 1]
    # the code points str.split() splits on, all of them
    every = "".join(chr(c) + "x" for c in range(0x110000) if c != 10 and not 0xD800 <= c < 0xE000)
    assert tokens_per_line(every, 1).tolist() == [len(every.split())]
    assert tokens_per_line("a b\n\nc", 3).tolist() == [2, 0, 1]


def test_failed_background_run_stops_the_pipeline(tmp_path, monkeypatch):
    """Runs are sampled in a background thread while the next is numbered: an eflomal failure in the
    second of four runs is the command's one error (exit 2), later runs are never sampled, nothing is written."""
    from xling.errors import XlingError

    calls = []

    def run(src, tgt, fwd, rev, *, n_sentences, **kw):
        calls.append(n_sentences)
        if len(calls) == 2:
            raise XlingError("eflomal failed (exit 1): out of memory", fix="use a smaller --run-pairs")
        Path(fwd).write_text("\n" * n_sentences)
        Path(rev).write_text("\n" * n_sentences)
        return {"eflomal_peak_rss_mb": 0.0}

    monkeypatch.setattr(eflomal_mod, "run_sampler", run)
    monkeypatch.setattr("xling.align.options.MIN_RUN_PAIRS", 1)
    inp = tmp_path / "in.txt"
    inp.write_text("".join(f"a{k} b ||| c d{k}\n" for k in range(200)), encoding="utf-8")
    r = runner.invoke(app, ["align", "--input", str(inp), "--out", str(tmp_path / "o.al"), "--run-pairs", "60"])
    assert r.exit_code == 2 and "out of memory" in r.output, r.output
    assert calls == [60, 60] and not (tmp_path / "o.al").exists()
