"""fairseq criteria of the xling plugin (the objectives' heads are in :mod:`xling.xlmplug.heads`)."""
from xling.xlmplug.criterions.mlm_tlm import MlmTlmLoss, MlmTlmLossConfig  # noqa: F401
from xling.xlmplug.criterions.unicoder import UnicoderLoss, UnicoderLossConfig  # noqa: F401,E402
from xling.xlmplug.criterions.ngram_loss import NgramLoss, NgramLossConfig  # noqa: F401,E402
