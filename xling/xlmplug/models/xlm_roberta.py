"""Model ``xling_xlm``: fairseq's RoBERTa (XLM-R) plus optional XLM language embeddings and
explicit positions (which restart at the target side of a TLM pair).

It is a :class:`RobertaModel`, so ``model(src_tokens, features_only=True)`` returns
``(features B×T×C, extra)`` and everything written for XLM-R checkpoints works on it. Extra,
optional inputs: ``positions`` (B×T, 0-based) and ``lang_ids`` (B×T language indices, used only when
the model was built with ``--lang-embeddings``). RoBERTa in fairseq 0.12 is an argparse model, so the
extra options come from a :class:`FairseqDataclass` turned into arguments in ``add_args``.
"""

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model, register_model_architecture
from fairseq.models.roberta.model import RobertaEncoder, RobertaModel, base_architecture
from fairseq.models.transformer import TransformerConfig, TransformerEncoder
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase
from fairseq.utils import safe_getattr

from xling.xlmplug.models.attention import SdpaSelfAttention
from xling.xlmplug.models.lm_head import XlmLMHead

ATTENTION = ("sdpa", "fairseq")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class SdpaEncoderLayer(TransformerEncoderLayerBase):
    """fairseq's encoder layer with :class:`SdpaSelfAttention` (same parameters, names and init)."""

    def build_self_attention(self, embed_dim, cfg):
        return SdpaSelfAttention(embed_dim, cfg.encoder.attention_heads, dropout=cfg.attention_dropout,
                                 self_attention=True, q_noise=self.quant_noise,
                                 qn_block_size=self.quant_noise_block_size,
                                 xformers_att_config=cfg.encoder.xformers_att_config)


class XlmSentenceEncoder(TransformerEncoder):
    """Transformer encoder whose embedding layer also takes positions and language ids.

    ``forward(src_tokens, src_lengths, return_all_hiddens, token_embeddings, positions=None, lang_ids=None,
    padded=None)``
    returns fairseq's encoder-output dict; the layers are fairseq's, called as fairseq's encoder calls them.
    With ``--attention-impl sdpa`` their self-attention is :class:`SdpaSelfAttention` and the padding mask is
    passed unless the caller says the batch has no padding (``padded=False``, known to the collater; no
    ``padding.any()`` host sync per forward, and no mask, so that SDPA may pick FlashAttention, which takes none);
    ``--compile-layers`` compiles each layer with :func:`torch.compile` (parameter names unchanged).
    """

    def __init__(self, args, dictionary, embed_tokens, num_langs: int = 0):
        self.attention = safe_getattr(args, "attention_impl", "sdpa")
        if self.attention not in ATTENTION:
            raise ValueError(f"--attention-impl must be one of {', '.join(ATTENTION)}, not {self.attention!r}")
        super().__init__(args, dictionary, embed_tokens)
        dim = embed_tokens.embedding_dim
        self.embed_langs = nn.Embedding(num_langs, dim) if num_langs > 0 else None
        if safe_getattr(args, "compile_layers", False):
            mode = safe_getattr(args, "compile_mode", "default")
            if mode not in COMPILE_MODES:
                raise ValueError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, not {mode!r}")
            for layer in self.layers:
                layer.compile(dynamic=None, mode=None if mode == "default" else mode)

    def build_encoder_layer(self, args):
        if self.attention == "fairseq":
            return super().build_encoder_layer(args)
        cfg = TransformerConfig.from_namespace(args)
        layer = SdpaEncoderLayer(cfg, return_fc=self.return_fc)
        if cfg.checkpoint_activations:  # as fairseq's build_encoder_layer (no FSDP wrapping: not supported)
            layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
        return layer

    def forward_embedding(self, src_tokens, token_embedding=None, positions=None, lang_ids=None):
        if token_embedding is None:
            token_embedding = self.embed_tokens(src_tokens)
        x = embed = self.embed_scale * token_embedding
        if self.embed_positions is not None:
            if positions is None:
                x = embed + self.embed_positions(src_tokens)
            else:
                pad = self.embed_positions.padding_idx
                pos = (positions + pad + 1).masked_fill(src_tokens.eq(pad), pad)
                x = embed + F.embedding(pos, self.embed_positions.weight, pad)
        if self.embed_langs is not None and lang_ids is not None:
            x = x + self.embed_langs(lang_ids)
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        x = self.dropout_module(x)
        if self.quant_noise is not None:
            x = self.quant_noise(x)
        return x, embed

    def forward(self, src_tokens, src_lengths=None, return_all_hiddens: bool = False, token_embeddings=None,
                positions=None, lang_ids=None, padded=None):
        padding = src_tokens.eq(self.padding_idx)
        # fairseq's layers take no mask when nothing is padded (one host sync); SDPA takes it unless the caller
        # knows (padded=False) that no row is padded
        if self.attention == "sdpa":
            has_pads = True if padded is None else bool(padded)
        else:
            has_pads = bool(padding.any())
        x, embed = self.forward_embedding(src_tokens, token_embeddings, positions, lang_ids)
        if has_pads:
            x = x * (1 - padding.unsqueeze(-1).type_as(x))
        # B x T x C -> T x B x C, contiguous like every later layer's input: with --compile-layers one compiled
        # version serves all layers (a strided first input doubled them, and torch.compile runs eager past 8)
        x = x.transpose(0, 1).contiguous()
        states, fc_results = ([x] if return_all_hiddens else []), []
        for layer in self.layers:
            out = layer(x, encoder_padding_mask=padding if has_pads else None)
            x, fc = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
            if return_all_hiddens:
                states.append(x)
                fc_results.append(fc)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        lengths = src_tokens.ne(self.padding_idx).sum(dim=1, dtype=torch.int32).reshape(-1, 1).contiguous()
        return {"encoder_out": [x], "encoder_padding_mask": [padding], "encoder_embedding": [embed],
                "encoder_states": states, "fc_results": fc_results, "src_tokens": [], "src_lengths": [lengths]}


class XlmEncoder(RobertaEncoder):
    def __init__(self, args, dictionary, num_langs: int = 0):
        self._num_langs = num_langs
        super().__init__(args, dictionary)

    def build_lm_head(self, embed_dim, output_dim, activation_fn, weight):
        return XlmLMHead(embed_dim, output_dim, activation_fn, weight,
                         pad_to=safe_getattr(self.args, "lm_head_pad", 8))

    def build_encoder(self, args, dictionary, embed_tokens):
        from fairseq.modules.transformer_sentence_encoder import init_bert_params

        encoder = XlmSentenceEncoder(args, dictionary, embed_tokens, self._num_langs)
        encoder.apply(init_bert_params)
        return encoder

    def forward(self, src_tokens, features_only=False, return_all_hiddens=False, masked_tokens=None,
                positions=None, lang_ids=None, masked_index=None, padded=None, **unused):
        """RoBERTa's encoder forward; ``masked_index`` (flat B·T positions) is ``masked_tokens`` given as
        indices: the LM head scores those rows (N logits rows; while training on a GPU, with the padded head's -inf
        extra columns) without a boolean-mask host sync. ``padded=False``: no row has padding (no attention mask)."""
        x, extra = self.extract_features(src_tokens, return_all_hiddens=return_all_hiddens,
                                         positions=positions, lang_ids=lang_ids,
                                         token_embeddings=unused.get("token_embeddings"), padded=padded)
        if not features_only:
            if masked_index is not None:
                x = self.output_layer(x.reshape(-1, x.size(-1)).index_select(0, masked_index))
            else:
                x = self.output_layer(x, masked_tokens=masked_tokens)
        return x, extra

    def extract_features(self, src_tokens, return_all_hiddens=False, positions=None, lang_ids=None,
                         **kwargs):
        out = self.sentence_encoder(src_tokens, return_all_hiddens=return_all_hiddens,
                                    token_embeddings=kwargs.get("token_embeddings"), positions=positions,
                                    lang_ids=lang_ids, padded=kwargs.get("padded"))
        features = out["encoder_out"][0].transpose(0, 1)  # T x B x C -> B x T x C
        return features, {"inner_states": out["encoder_states"] if return_all_hiddens else None}


@dataclass
class XlmModelConfig(FairseqDataclass):
    lang_embeddings: bool = field(default=False, metadata={
        "help": "add a learned language embedding per token (XLM); off: no language signal (XLM-R)"})
    attention_impl: str = field(default="sdpa", metadata={
        "help": "self-attention: sdpa (torch scaled_dot_product_attention: Flash/memory-efficient kernels, "
                "no host sync) or fairseq (its MultiheadAttention forward); same parameters and names"})
    compile_layers: bool = field(default=False, metadata={
        "help": "torch.compile each encoder layer (first updates are slower while it compiles)"})
    compile_mode: str = field(default="default", metadata={
        "help": "torch.compile mode of --compile-layers: default, reduce-overhead (CUDA graphs: one recorded per "
                "batch shape, for fixed-size blocks), max-autotune, max-autotune-no-cudagraphs"})
    lm_head_pad: int = field(default=8, metadata={
        "help": "while training on GPUs, pad the LM head's vocabulary to a multiple of this many rows (aligned "
                "matrix products for vocabularies like XLM-R's 250,002; same logits); 0: off"})
    amp_bf16: bool = field(default=False, metadata={
        "help": "train in bfloat16 autocast with float32 weights, gradients and optimizer (torch.autocast "
                "around the forward while training); instead of fairseq's --bf16 (bf16 weights + fp32 copies)"})


@register_model("xling_xlm")
class XlmModel(RobertaModel):
    takes_masked_index = True  # forward(..., masked_index=flat positions): see XlmEncoder.forward

    def forward(self, src_tokens, features_only=False, return_all_hiddens=False, classification_head_name=None,
                positions=None, lang_ids=None, **kwargs):
        """RoBERTa's forward, plus ``positions`` (B×T, 0-based; default 0, 1, 2, ...) and ``lang_ids``
        (B×T language indices, used by models built with ``--lang-embeddings``)."""
        with torch.autocast(src_tokens.device.type, dtype=torch.bfloat16,
                            enabled=self.training and safe_getattr(self.args, "amp_bf16", False)):
            return super().forward(src_tokens, features_only, return_all_hiddens, classification_head_name,
                                   positions=positions, lang_ids=lang_ids, **kwargs)

    @staticmethod
    def add_args(parser):
        RobertaModel.add_args(parser)
        gen_parser_from_dataclass(parser, XlmModelConfig())

    @classmethod
    def build_model(cls, args, task):
        from omegaconf import OmegaConf

        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, False)
        base_architecture(args)
        if safe_getattr(args, "max_positions", None) is None:
            args.max_positions = safe_getattr(args, "tokens_per_sample", None) or task.max_positions()
        num_langs = getattr(task, "num_langs", 0) if safe_getattr(args, "lang_embeddings", False) else 0
        if safe_getattr(args, "lang_embeddings", False) and num_langs == 0:
            raise ValueError("--lang-embeddings needs the task's language list (--langs)")
        encoder = XlmEncoder(args, task.source_dictionary, num_langs)
        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, True)
        return cls(args, encoder)


def _arch(layers, dim, ffn, heads):
    def fn(args):
        args.encoder_layers = safe_getattr(args, "encoder_layers", layers)
        args.encoder_embed_dim = safe_getattr(args, "encoder_embed_dim", dim)
        args.encoder_ffn_embed_dim = safe_getattr(args, "encoder_ffn_embed_dim", ffn)
        args.encoder_attention_heads = safe_getattr(args, "encoder_attention_heads", heads)
        args.lang_embeddings = safe_getattr(args, "lang_embeddings", False)
        args.attention_impl = safe_getattr(args, "attention_impl", "sdpa")
        args.compile_layers = safe_getattr(args, "compile_layers", False)
        args.compile_mode = safe_getattr(args, "compile_mode", "default")
        args.lm_head_pad = safe_getattr(args, "lm_head_pad", 8)
        args.amp_bf16 = safe_getattr(args, "amp_bf16", False)
        base_architecture(args)

    return fn


ARCHS = {"tiny": (2, 64, 128, 2), "base": (12, 768, 3072, 12), "large": (24, 1024, 4096, 16)}
for _name, _shape in ARCHS.items():
    register_model_architecture("xling_xlm", f"xling_xlm_{_name}")(_arch(*_shape))
