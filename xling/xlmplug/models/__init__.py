"""fairseq models of the xling plugin."""
from xling.xlmplug.models.xlm_roberta import XlmModel, XlmModelConfig  # noqa: F401
