"""fairseq tasks of the xling plugin."""
from xling.xlmplug.tasks.xlm_pretrain import XlmPretrainConfig, XlmPretrainTask  # noqa: F401
from xling.xlmplug.tasks.unicoder import UnicoderPretrainConfig, UnicoderPretrainTask  # noqa: F401,E402
from xling.xlmplug.tasks.denoise import XlingDenoisingConfig, XlingDenoisingTask  # noqa: F401
