"""fairseq models of the xling plugin."""
from xling.xlmplug.models.xlm_roberta import XlmModel, XlmModelConfig  # noqa: F401
from xling.xlmplug.models import seq2seq  # noqa: F401,E402  (xling_dae_* architectures of fairseq's bart)
from xling.xlmplug.models import prophetnet  # noqa: F401,E402  (xling_prophetnet_*: n-stream decoder)
