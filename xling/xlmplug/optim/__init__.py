"""fairseq optimizers of the xling plugin: ``xling_adamw`` (torch's fused / foreach AdamW)."""
from xling.xlmplug.optim.adamw import XlingAdamW, XlingAdamWConfig  # noqa: F401
