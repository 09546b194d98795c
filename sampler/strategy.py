"""Acquisition "auto": learn per project which strategy is paying off, from the audit slice.

No acquisition function wins on every data set, so "auto" keeps several candidate
strategies (ARMS) and treats the choice of each round as a multi-armed bandit, in the
spirit of Active Learning by Learning (Hsu and Lin, AAAI 2015): EXP3 with a floor of
exploration. A strategy's reward is the accuracy, on the uniform audit slice, of the model
trained after its picks were labeled: an unbiased estimate of that model's accuracy on
the pool (the audit items are drawn uniformly, so no importance weights are needed).
Rewards arrive late (the audit items of the next round have to be labeled first), so each
round first credits every earlier round whose reward is known and not yet credited.

The state is a small JSON-able dict, kept by the caller between rounds (the server stores
it on the project):
    {"arms": [...], "log_weights": [...], "pending": [[round, arm, probability], ...],
     "rewards": [[round, arm, reward], ...]}
Pure Python and NumPy: the web process may import it.
"""

import math

import numpy as np

ARMS = ("margin", "bald", "random")
DEFAULT_AUDIT_SHARE = 0.1  # the server's Project.audit_share default
GAMMA = 0.3  # share of uniform exploration among the arms
MAX_HISTORY = 200  # rewards kept for the record


def audit_size(share: float, batch_size: int) -> int:
    """Items of a batch picked uniformly at random for the audit slice: `share` of it, at
    least 2 when the share is above 0, at most half of the batch."""
    if share <= 0:
        return 0
    return min(max(2, round(share * batch_size)), batch_size // 2)


def new_state(arms: tuple[str, ...] = ARMS) -> dict:
    return {"arms": list(arms), "log_weights": [0.0] * len(arms), "pending": [], "rewards": []}


def probabilities(state: dict) -> np.ndarray:
    """Each arm's chance this round: (1 - GAMMA) by the EXP3 weights, GAMMA uniform."""
    logw = np.asarray(state["log_weights"], dtype=np.float64)
    w = np.exp(logw - logw.max())
    k = len(w)
    return (1 - GAMMA) * w / w.sum() + GAMMA / k


def choose(state: dict, *, round_number: int, seed: int = 0) -> tuple[str, str]:
    """Draw this round's strategy; record it as pending (its reward comes later).

    Returns (strategy, reason), the reason in words for the dashboard. Deterministic
    given the state, round_number and seed. Mutates `state`.
    """
    p = probabilities(state)
    rng = np.random.default_rng([seed, round_number])
    arm = int(rng.choice(len(p), p=p))
    state["pending"].append([round_number, arm, float(p[arm])])
    mean = _mean_rewards(state)
    parts = [
        f"{name} p={p[i]:.2f}"
        + (f" (audit accuracy after its picks {mean[i][0]:.2f}, n={mean[i][1]})" if mean[i] else "")
        for i, name in enumerate(state["arms"])
    ]
    reason = f"auto: drew {state['arms'][arm]} among " + ", ".join(parts)
    return state["arms"][arm], reason


def credit(state: dict, *, round_number: int, reward: float) -> bool:
    """Credit the strategy that picked round `round_number`'s batch with `reward` (in [0, 1]:
    the audit accuracy of the model trained after those picks were labeled). EXP3 update
    with the probability it was drawn with. False if the round was not pending."""
    for i, (number, arm, p) in enumerate(state["pending"]):
        if number == round_number:
            del state["pending"][i]
            k = len(state["arms"])
            reward = min(1.0, max(0.0, float(reward)))
            state["log_weights"][arm] += GAMMA * (reward / p) / k
            state["rewards"] = (state["rewards"] + [[number, arm, reward]])[-MAX_HISTORY:]
            return True
    return False


def _mean_rewards(state: dict) -> list[tuple[float, int] | None]:
    sums: dict[int, list[float]] = {}
    for _, arm, reward in state["rewards"]:
        sums.setdefault(arm, []).append(reward)
    return [
        (math.fsum(sums[i]) / len(sums[i]), len(sums[i])) if i in sums else None
        for i in range(len(state["arms"]))
    ]
