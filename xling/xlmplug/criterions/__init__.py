"""fairseq criteria of the xling plugin."""
from xling.xlmplug.criterions.mlm_tlm import MlmTlmLoss, MlmTlmLossConfig  # noqa: F401
from xling.xlmplug.criterions.clwr import ClwrConfig, ClwrLoss  # noqa: F401,E402
from xling.xlmplug.criterions.clpc import ClpcConfig, ClpcLoss  # noqa: F401,E402
from xling.xlmplug.criterions.xlco import XlcoConfig, XlcoLoss  # noqa: F401,E402
from xling.xlmplug.criterions.unicoder import UnicoderLoss, UnicoderLossConfig  # noqa: F401,E402
