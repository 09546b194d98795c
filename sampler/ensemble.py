"""An ensemble of small PyTorch MLP classifiers over feature vectors.

scikit-learn conventions: `__init__` stores hyperparameters, `fit` returns self, learned
attributes end in `_`, randomness comes from `random_state` only (each member gets its own
torch.Generator and bootstrap sample). Thread count is the caller's business
(torch.set_num_threads).
"""

import io
from typing import Self

import numpy as np
import torch
from torch import nn

HYPERPARAMETERS = (
    "n_members",
    "hidden",
    "epochs",
    "max_steps",
    "lr",
    "weight_decay",
    "bootstrap",
    "random_state",
)
BATCH = 1024  # minibatch rows


class _MLP(nn.Module):
    def __init__(self, n_features: int, hidden: int, n_classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLPEnsemble:
    """K MLPs (one hidden layer of `hidden` units), each trained with Adam on its own
    bootstrap sample of the labeled rows: `epochs` passes in minibatches of 1,024, but at
    most `max_steps` optimizer steps, so training time stops growing with the label count
    (5,000 labels train in about a second per member on one core)."""

    def __init__(
        self,
        n_members: int = 5,
        hidden: int = 64,
        epochs: int = 60,
        max_steps: int = 100,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        bootstrap: bool = True,
        random_state: int = 0,
    ):
        self.n_members = n_members
        self.hidden = hidden
        self.epochs = epochs
        self.max_steps = max_steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.bootstrap = bootstrap
        self.random_state = random_state

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in HYPERPARAMETERS}

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> Self:
        """Train on X (n, d) float32 and y (n,) int64 in [0, n_classes).

        Sets `n_classes_`, `n_features_`, `mean_`, `scale_` (input standardization),
        `members_`, `oob_proba_` ((n, C) mean out-of-bag prediction, NaN rows for items in
        every bootstrap sample) and `oob_accuracy_` (None when no row is out of bag).
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
            raise ValueError("X must be (n, d) and y (n,) with n > 0")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError("labels must lie in [0, n_classes)")
        self.n_classes_ = int(n_classes)
        self.n_features_ = X.shape[1]
        self.mean_ = X.mean(0)
        self.scale_ = np.maximum(X.std(0), 1e-6).astype(np.float32)
        inputs = torch.from_numpy((X - self.mean_) / self.scale_)
        targets = torch.from_numpy(y)
        n = len(y)
        oob_sum = np.zeros((n, self.n_classes_), dtype=np.float64)
        oob_count = np.zeros(n, dtype=np.int64)
        self.members_ = []
        for k in range(self.n_members):
            generator = torch.Generator().manual_seed(self.random_state * 1000 + k)
            if self.bootstrap:
                rows = torch.randint(0, n, (n,), generator=generator)
            else:
                rows = torch.arange(n)
            model = _MLP(self.n_features_, self.hidden, self.n_classes_)
            with torch.no_grad():  # seeded initialization, independent of the global RNG
                for parameter in model.parameters():
                    bound = 1.0 / np.sqrt(parameter.shape[-1])
                    parameter.uniform_(-bound, bound, generator=generator)
            self._train(model, inputs[rows], targets[rows], generator)
            model.eval()
            self.members_.append(model)
            out = np.ones(n, dtype=bool)
            out[rows.numpy()] = False
            if out.any():
                with torch.no_grad():
                    oob_sum[out] += torch.softmax(model(inputs[out]), -1).numpy()
                oob_count[out] += 1
        seen = oob_count > 0
        self.oob_proba_ = np.full((n, self.n_classes_), np.nan)
        self.oob_proba_[seen] = oob_sum[seen] / oob_count[seen, None]
        self.oob_accuracy_ = (
            float((self.oob_proba_[seen].argmax(1) == y[seen]).mean()) if seen.any() else None
        )
        return self

    def _train(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, generator) -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        batch = BATCH
        steps_per_epoch = -(-len(y) // batch)
        epochs = max(1, min(self.epochs, self.max_steps // steps_per_epoch))
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=generator) if len(y) > batch else None
            for start in range(0, len(y), batch):
                rows = order[start : start + batch] if order is not None else slice(None)
                optimizer.zero_grad()
                loss = loss_fn(model(X[rows]), y[rows])
                loss.backward()
                optimizer.step()

    def _inputs(self, X: np.ndarray, start: int, stop: int) -> torch.Tensor:
        chunk = np.asarray(X[start:stop], dtype=np.float32)
        return torch.from_numpy((chunk - self.mean_) / self.scale_)

    def predict_proba(self, X: np.ndarray, *, chunk_size: int = 65536) -> np.ndarray:
        """Member probabilities, float32 (K, N, C)."""
        out = np.empty((len(self.members_), len(X), self.n_classes_), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(X), chunk_size):
                inputs = self._inputs(X, start, start + chunk_size)
                for k, model in enumerate(self.members_):
                    out[k, start : start + len(inputs)] = torch.softmax(model(inputs), -1).numpy()
        return out

    def embed(self, X: np.ndarray, *, chunk_size: int = 65536) -> np.ndarray:
        """Penultimate-layer features averaged over members, float32 (N, hidden)."""
        out = np.zeros((len(X), self.hidden), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(X), chunk_size):
                inputs = self._inputs(X, start, start + chunk_size)
                for model in self.members_:
                    out[start : start + len(inputs)] += model.body(inputs).numpy()
        return out / max(1, len(self.members_))

    def to_bytes(self) -> bytes:
        """Serialize hyperparameters and learned state (no pickled code)."""
        buffer = io.BytesIO()
        torch.save(
            {
                "params": self.get_params(),
                "n_classes": self.n_classes_,
                "n_features": self.n_features_,
                "mean": torch.from_numpy(self.mean_),
                "scale": torch.from_numpy(self.scale_),
                "oob_accuracy": self.oob_accuracy_,
                "members": [m.state_dict() for m in self.members_],
            },
            buffer,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MLPEnsemble":
        state = torch.load(io.BytesIO(data), weights_only=True)
        ensemble = cls(**state["params"])
        ensemble.n_classes_ = state["n_classes"]
        ensemble.n_features_ = state["n_features"]
        ensemble.mean_ = state["mean"].numpy()
        ensemble.scale_ = state["scale"].numpy()
        ensemble.oob_accuracy_ = state["oob_accuracy"]
        ensemble.members_ = []
        for member_state in state["members"]:
            model = _MLP(ensemble.n_features_, ensemble.hidden, ensemble.n_classes_)
            model.load_state_dict(member_state)
            model.eval()
            ensemble.members_.append(model)
        return ensemble
