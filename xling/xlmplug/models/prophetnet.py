"""Model ``xling_prophetnet``: fairseq's ``bart`` encoder-decoder with ProphetNet's n-stream decoder (Qi et al.
2020), trained on the same xDAE noise by criterion ``xling_ngram_loss`` (the future n-gram loss).

The decoder runs a main stream and ``--ngram`` - 1 predicting streams through shared layers
(:mod:`xling.xlmplug.models.ngram_attention`). The main stream predicts the next token, as an ordinary decoder
does (ProphetNet's first predicting stream folded into it); predicting stream s predicts the token s places
after that one, from the main stream's states up to its position. So ``--ngram 1`` is an ordinary decoder with
ProphetNet's relative attention bias, and generation (fairseq's beam search, ``xling eval xglue --tasks qg,ntg``)
runs the main stream only. ``forward`` returns the main stream's logits (what fine-tuning and generation read)
and the predicting streams' in ``extra["ngram_logits"]``. Sizes: the ``xling_dae_*`` shapes.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import FairseqIncrementalDecoder, register_model, register_model_architecture
from fairseq.models.bart.model import BARTModel
from fairseq.modules import LayerNorm, MultiheadAttention, PositionalEmbedding
from fairseq.utils import safe_getattr

from xling.xlmplug.models.ngram_attention import NgramSelfAttention
from xling.xlmplug.models.seq2seq import SHAPES, _arch


@dataclass
class ProphetNetConfig(FairseqDataclass):
    ngram: int = field(default=2, metadata={
        "help": "tokens predicted ahead at each position: the main stream's next token and ngram-1 more "
                "(predicting streams); 1: an ordinary decoder"})
    relative_buckets: int = field(default=32, metadata={"help": "relative-position buckets of the self-attention"})
    relative_max_distance: int = field(default=128, metadata={
        "help": "distance at which the logarithmic relative-position buckets end"})


class ProphetNetDecoderLayer(nn.Module):
    """Post-LN layer (as ``bart``'s): n-stream self-attention, encoder attention and FFN, shared by all streams."""

    def __init__(self, args):
        super().__init__()
        dim, heads = args.decoder_embed_dim, args.decoder_attention_heads
        self.self_attn = NgramSelfAttention(dim, heads, args.relative_buckets, args.relative_max_distance,
                                            args.attention_dropout)
        self.self_attn_layer_norm = LayerNorm(dim)
        self.encoder_attn = MultiheadAttention(dim, heads, kdim=args.encoder_embed_dim, vdim=args.encoder_embed_dim,
                                               dropout=args.attention_dropout, encoder_decoder_attention=True)
        self.encoder_attn_layer_norm = LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, args.decoder_ffn_embed_dim), nn.Linear(args.decoder_ffn_embed_dim, dim)
        self.final_layer_norm = LayerNorm(dim)
        self.dropout, self.activation_dropout = args.dropout, safe_getattr(args, "activation_dropout", 0.0)

    def _drop(self, x, p=None):
        return F.dropout(x, p=self.dropout if p is None else p, training=self.training)

    def forward(self, main, streams, encoder_out, encoder_padding_mask, incremental_state=None):
        m, outs = self.self_attn(main, streams, incremental_state)
        parts = [self.self_attn_layer_norm(h + self._drop(o)) for h, o in zip([main, *streams], [m, *outs])]
        t = main.size(1)
        x = torch.cat(parts, dim=1)  # every stream's queries at once: B x (streams * T) x C
        if encoder_out is not None:
            c, _ = self.encoder_attn(query=x.transpose(0, 1), key=encoder_out, value=encoder_out,
                                     key_padding_mask=encoder_padding_mask, incremental_state=incremental_state,
                                     static_kv=True, need_weights=False)
            x = self.encoder_attn_layer_norm(x + self._drop(c.transpose(0, 1)))
        h = self.fc2(self._drop(F.gelu(self.fc1(x)), self.activation_dropout))
        x = self.final_layer_norm(x + self._drop(h))
        return x[:, :t], list(x[:, t:].split(t, dim=1)) if streams else []


class ProphetNetDecoder(FairseqIncrementalDecoder):
    def __init__(self, args, dictionary, embed_tokens):
        super().__init__(dictionary)
        dim = args.decoder_embed_dim
        self.embed_tokens, self.padding_idx = embed_tokens, embed_tokens.padding_idx
        self.embed_positions = PositionalEmbedding(args.max_target_positions, dim, self.padding_idx, learned=True)
        self.layernorm_embedding = LayerNorm(dim)
        self.ngram = int(args.ngram)
        if self.ngram < 1:
            raise ValueError(f"--ngram must be at least 1, got {self.ngram}")
        self.ngram_embed = nn.Embedding(self.ngram - 1, dim) if self.ngram > 1 else None
        self.layers = nn.ModuleList(ProphetNetDecoderLayer(args) for _ in range(args.decoder_layers))
        self.dropout = args.dropout
        self.output_projection = nn.Linear(dim, len(dictionary), bias=False)
        self.output_projection.weight = embed_tokens.weight  # shared input/output embeddings, as bart's

    def max_positions(self):
        return self.embed_positions.max_positions

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, features_only=False,
                full_context_alignment=False, alignment_layer=None, alignment_heads=None, src_lengths=None,
                return_all_hiddens=False):
        main, streams = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if features_only:
            return main, {"attn": [None], "inner_states": None, "ngram_states": streams}
        return self.output_layer(main), {"attn": [None], "inner_states": None,
                                         "ngram_logits": [self.output_layer(h) for h in streams]}

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        positions = self.embed_positions(prev_output_tokens, incremental_state=incremental_state)
        if incremental_state is not None:
            prev_output_tokens, positions = prev_output_tokens[:, -1:], positions[:, -1:]
        main = F.dropout(self.layernorm_embedding(self.embed_tokens(prev_output_tokens) + positions),
                         p=self.dropout, training=self.training)
        streams = []
        if incremental_state is None and self.ngram_embed is not None:  # training / scoring: every stream
            for s in range(self.ngram - 1):
                h = self.layernorm_embedding(self.ngram_embed.weight[s] + positions)
                streams.append(F.dropout(h, p=self.dropout, training=self.training))
        enc = encoder_out["encoder_out"][0] if encoder_out and encoder_out["encoder_out"] else None
        pad = encoder_out["encoder_padding_mask"][0] if encoder_out and encoder_out["encoder_padding_mask"] else None
        for layer in self.layers:
            main, streams = layer(main, streams, enc, pad, incremental_state)
        return main, streams

    def output_layer(self, features):
        return self.output_projection(features)


@register_model("xling_prophetnet")
class ProphetNetModel(BARTModel):
    @staticmethod
    def add_args(parser):
        BARTModel.add_args(parser)
        gen_parser_from_dataclass(parser, ProphetNetConfig())

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        for key, value in vars(ProphetNetConfig()).items():
            if not key.startswith("_"):
                setattr(args, key, safe_getattr(args, key, value))
        return ProphetNetDecoder(args, tgt_dict, embed_tokens)


for _name, _shape in SHAPES.items():
    register_model_architecture("xling_prophetnet", f"xling_prophetnet_{_name}")(_arch(*_shape))
