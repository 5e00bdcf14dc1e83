"""Encoder-decoder architectures for denoising pretraining: fairseq's ``bart`` model (post-LN
Transformer, learned positions, embedding LayerNorm, GELU, shared embeddings), at xling's sizes.

The encoder has exactly the layout of xling's RoBERTa-style encoder (``xling_xlm_*``: same layer
type, post-LN, embedding LayerNorm, unscaled embeddings), so ``xling pretrain --arch seq2seq --init``
can start the encoder from an MLM/TLM model. ``bart`` is an argparse-era fairseq model, so sizes are
registered as architectures (defaults applied before fairseq's ``bart_large_architecture``).
"""
from fairseq.models import register_model_architecture
from fairseq.models.bart.model import bart_large_architecture
from fairseq.utils import safe_getattr

# layers (encoder = decoder), embedding dim, FFN dim, attention heads, max positions
SHAPES = {"tiny": (2, 64, 128, 2, 512), "base": (12, 768, 3072, 12, 1024), "large": (12, 1024, 4096, 16, 1024)}


def _arch(layers, dim, ffn, heads, positions):
    def fn(args):
        for side in ("encoder", "decoder"):
            setattr(args, f"{side}_layers", safe_getattr(args, f"{side}_layers", layers))
            setattr(args, f"{side}_embed_dim", safe_getattr(args, f"{side}_embed_dim", dim))
            setattr(args, f"{side}_ffn_embed_dim", safe_getattr(args, f"{side}_ffn_embed_dim", ffn))
            setattr(args, f"{side}_attention_heads", safe_getattr(args, f"{side}_attention_heads", heads))
        args.max_source_positions = safe_getattr(args, "max_source_positions", positions)
        args.max_target_positions = safe_getattr(args, "max_target_positions", positions)
        bart_large_architecture(args)

    return fn


for _name, _shape in SHAPES.items():
    register_model_architecture("bart", f"xling_dae_{_name}")(_arch(*_shape))
