"""fairseq tasks of the xling plugin."""
from xling.xlmplug.tasks.xlm_pretrain import XlmPretrainConfig, XlmPretrainTask  # noqa: F401
