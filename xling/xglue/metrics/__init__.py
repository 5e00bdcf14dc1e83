"""One metric a file on a shared base (sacrebleu style): ``METRICS[name]().score(gold, pred)``."""
from xling.xglue.metrics.accuracy import Accuracy
from xling.xglue.metrics.base import Metric
from xling.xglue.metrics.bleu import Bleu
from xling.xglue.metrics.mlqa_f1 import MlqaF1
from xling.xglue.metrics.ndcg import Ndcg
from xling.xglue.metrics.seqeval import SeqevalF1, SeqevalPrecision

METRICS: dict[str, type[Metric]] = {m.name: m for m in
                                    [Accuracy, SeqevalF1, SeqevalPrecision, MlqaF1, Ndcg, Bleu]}
