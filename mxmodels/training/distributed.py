"""Gradient aggregation for one training process: local/device kvstores, MXNet's parameter
server (dist_*: this process is a worker started by `launch`, with ps-lite's DMLC_* variables
set), or Horovod where it is installed."""
import os
from dataclasses import dataclass

from caffe2mx.converter.errors import UsageError


@dataclass
class Cluster:
    kvstore: object          # what gluon.Trainer gets: a name or a KVStore
    rank: int = 0
    workers: int = 1
    horovod: object = None   # the horovod.mxnet module when --kvstore horovod

    @property
    def update_on_kvstore(self):
        """Update on the servers only where MXNet requires it (dist_async); elsewhere every
        worker updates locally from the summed gradients, so its optimizer state can be saved
        and resumed."""
        kind = getattr(self.kvstore, "type", self.kvstore) or ""
        return True if "async" in kind else (False if "dist" in kind else None)


def connect(kvstore):
    """The Cluster of this process for `--kvstore kvstore`."""
    import mxnet as mx
    if kvstore == "horovod":
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise UsageError("--kvstore horovod needs Horovod built with MXNet support (pip install "
                             "horovod with HOROVOD_WITH_MXNET=1, then launch with horovodrun); it is "
                             "not installed here. MXNet's own --kvstore dist_sync needs nothing "
                             "extra.") from None
        hvd.init()
        return Cluster(None, hvd.rank(), hvd.size(), hvd)
    if kvstore.startswith("dist"):
        if os.environ.get("DMLC_ROLE") != "worker":
            raise UsageError(f"--kvstore {kvstore} runs inside a parameter-server job: add "
                             f"--launch local --workers N --servers S (or --launch ssh --hosts FILE)")
        kv = mx.kv.create(kvstore)
        return Cluster(kv, kv.rank, kv.num_workers)
    return Cluster(kvstore)
