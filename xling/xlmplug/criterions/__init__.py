"""fairseq criteria of the xling plugin."""
from xling.xlmplug.criterions.mlm_tlm import MlmTlmLoss, MlmTlmLossConfig  # noqa: F401
