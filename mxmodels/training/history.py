"""The run's record: DIR/log.jsonl (one JSON object per epoch) and DIR/learning-curve.png,
redrawn after every epoch (matplotlib, no display needed)."""
import json
from pathlib import Path

LOG = "log.jsonl"
PLOT = "learning-curve.png"


def read_log(out):
    path = Path(out) / LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate(out, epochs):
    """Keep the first `epochs` records (a resumed run rewrites what follows)."""
    rows = [r for r in read_log(out) if r["epoch"] <= epochs]
    (Path(out) / LOG).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def append(out, row):
    with open(Path(out) / LOG, "a") as f:
        f.write(json.dumps(row) + "\n")


def plot(out, rows, title=""):
    """Loss and accuracy (train/validation) and learning rate against epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.6))
    ax1.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    if any(r.get("val_loss") is not None for r in rows):
        ax1.plot(epochs, [r.get("val_loss") for r in rows], "o-", label="validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss", yscale="log")
    ax2.plot(epochs, [r["train_acc"] for r in rows], "o-", label="train")
    ax2.plot(epochs, [r.get("val_acc") for r in rows], "o-", label="validation")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    ax3.plot(epochs, [r["lr"] for r in rows], "o-")
    ax3.set(xlabel="epoch", ylabel="learning rate", title="learning rate (end of epoch)")
    for ax in (ax1, ax2):
        ax.legend()
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.15, top=0.82, wspace=0.3)
    fig.savefig(Path(out) / PLOT, dpi=90)
    plt.close(fig)
