"""A forward-forward (FF) ReLU MLP with the LightTune losses and closed-form layer gradients.

Notation of the LightTune paper (seeds/003): layer l maps its input x_l [B, d_l] to
h_l = relu(z_l), z_l = x_l W_l^T + b_l, W_l [M_l, d_l]; per-neuron goodness g_l[j] = h_l[j]^2;
the goodness of a sample is G = sum_j g_L[j] of the last layer (eq. 1) and the prediction is
the label with the largest G (eq. 5).

Losses per layer, averaged over the positive set S+ and the negative set S- and over the
M_l neurons:
  softplus (eq. 4):  mean log(1 + exp(-(g+ - T))) + mean log(1 + exp(g- - T))
  quadratic (eq. 6): mean (g+ - T)^2 - 4 (g+ - T)  +  mean (g- - T)^2 + 4 (g- - T)
Closed-form gradients of the quadratic loss (eq. 7, with the 1/|S| and 1/M_l means kept):
  dL/dz = (2 (g - T) -/+ 4) * 2 h * 1(z > 0) / (M_l |S|)     (- for S+, + for S-)
  dL/dW_l = dL/dz^T x_l,   dL/db_l = sum over samples of dL/dz
``goodness="layer"`` applies the same two losses to the layer goodness G_l = sum_j h_l[j]^2
of each sample instead of to every neuron's h_l[j]^2 (Hinton's original FF; eq. 1 defines the
inference goodness this way). Its closed form is eq. 7 with g the sample's G_l - T and no
1/M_l: dL/dz = (2 (G - T) -/+ 4) * 2 h * 1(z > 0) / |S|. Why it exists: with the per-neuron
loss every neuron is fitted to the same target, and on the LightTune BLER data the networks
we trained collapsed to one label (see models/ff_bler/train.py).
Each layer is trained on its own loss; its input x_l is the previous layer's output, as in
eq. 7. Hinton (2022) length-normalises hidden vectors between layers; with LightTune's
scalar label that washed the label out of the second layer here (repeated updates on one
sample reached the observed label in 2 of 20 random networks, against 20 of 20 without),
so it is off by default (``normalize_hidden``). Nothing but the current layer's input and
output is kept.
"""
from __future__ import annotations

import numpy as np

NORM_EPS = 1e-8


class FFNet:
    """Weights ``W[l]`` [M_l, d_l] and ``b[l]`` [M_l] as numpy arrays (float32 by default)."""

    def __init__(self, sizes: tuple[int, ...] = (13, 32, 32), threshold: float = 9.0,
                 rng: np.random.Generator | None = None, dtype=np.float32, normalize_hidden: bool = False,
                 goodness: str = "neuron"):
        if goodness not in ("neuron", "layer"):
            raise ValueError(f"goodness must be 'neuron' or 'layer', not {goodness!r}")
        self.goodness_kind = goodness
        rng = rng if rng is not None else np.random.default_rng(0)
        self.sizes = tuple(int(s) for s in sizes)
        self.threshold = float(threshold)
        self.dtype = dtype
        self.normalize_hidden = normalize_hidden
        self.W = [(rng.standard_normal((m, d)) * np.sqrt(2.0 / d)).astype(dtype)
                  for d, m in zip(self.sizes[:-1], self.sizes[1:])]
        self.b = [np.zeros(m, dtype) for m in self.sizes[1:]]
        self._coef_cache: dict = {}                 # quad_grads coefficients by batch shape

    @property
    def num_layers(self) -> int:
        return len(self.W)

    # -- forward --------------------------------------------------------------------------------
    def layer_input(self, l: int, h_prev: np.ndarray) -> np.ndarray:
        """Input of layer ``l`` from the previous layer's output (or the raw input for l = 0)."""
        if l == 0 or not self.normalize_hidden:
            return h_prev
        return h_prev / (np.linalg.norm(h_prev, axis=-1, keepdims=True) + NORM_EPS)

    def layer_forward(self, l: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x [B, d_l] -> (z [B, M_l], h [B, M_l])."""
        z = x @ self.W[l].T + self.b[l]
        return z, np.maximum(z, 0.0)

    def goodness(self, x0: np.ndarray) -> np.ndarray:
        """x0 [B, d_0] (features with the label appended) -> G [B] of the last layer (eq. 1)."""
        h = np.asarray(x0, self.dtype)
        for l in range(self.num_layers):
            _, h = self.layer_forward(l, self.layer_input(l, h))
        return np.sum(h * h, axis=-1)

    # -- losses and closed-form gradients ---------------------------------------------------------
    def quad_loss(self, l: int, x_pos: np.ndarray, x_neg: np.ndarray) -> float:
        """Eq. 6 for layer ``l`` with layer inputs x_pos [B+, d_l] and x_neg [B-, d_l]."""
        _, hp = self.layer_forward(l, x_pos)
        _, hn = self.layer_forward(l, x_neg)
        gp, gn = self._g(hp), self._g(hn)
        return float(np.mean(gp * gp - 4.0 * gp) + np.mean(gn * gn + 4.0 * gn))

    def _g(self, h: np.ndarray) -> np.ndarray:
        """goodness minus threshold: [B, M_l] per neuron, or [B, 1] per layer."""
        if self.goodness_kind == "layer":
            return np.sum(h * h, axis=-1, keepdims=True) - self.threshold
        return h * h - self.threshold

    def quad_grads(self, l: int, x_pos: np.ndarray, x_neg: np.ndarray, with_loss: bool = True):
        """Closed-form (dL/dW_l [M_l, d_l], dL/db_l [M_l], loss, h_pos, h_neg) of eq. 6 (eq. 7).

        The positives and negatives go through the layer in one matmul; the layer outputs are
        returned so the next layer's inputs need no second forward pass. ``loss`` is NaN
        unless ``with_loss``.
        """
        n_pos = x_pos.shape[0]
        dW, db, loss, h = self.quad_grads_stacked(l, np.concatenate([x_pos, x_neg], axis=0), n_pos, with_loss)
        return dW, db, loss, h[:n_pos], h[n_pos:]

    def quad_grads_stacked(self, l: int, x: np.ndarray, n_pos: int, with_loss: bool = True):
        """``quad_grads`` on x [n_pos + n_neg, d_l] (positives first) -> (dW, db, loss, h [n, M_l]),
        for callers that keep the pair stacked from layer to layer (no concatenation per layer)."""
        z = x @ self.W[l].T + self.b[l]
        h = np.maximum(z, 0.0)
        g = self._g(h)                                      # [B, M_l] or [B, 1]
        m = g.shape[-1]                                     # the 1/M_l mean (1 for layer goodness)
        # (2 (g - T) - 4) for positives, (2 (g - T) + 4) for negatives, times 2 / (M_l |S|): the means
        # over neurons and samples (in place on a fresh array: this is the per-update hot path)
        sign, scale = self._coefficients(n_pos, x.shape[0], m, h.dtype)
        c = 2.0 * g
        c += sign
        c *= scale
        dz = c * h                                          # h = 0 wherever z <= 0: the ReLU indicator
        dW = dz.T @ x
        db = dz.sum(axis=0)
        loss = float(np.mean(g[:n_pos] * (g[:n_pos] - 4.0)) + np.mean(g[n_pos:] * (g[n_pos:] + 4.0))) \
            if with_loss else float("nan")
        return dW.astype(self.dtype, copy=False), db.astype(self.dtype, copy=False), loss, h

    def _coefficients(self, n_pos: int, n: int, m: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """([n, 1] -4 / +4, [n, 1] 2 / (M_l |S|)) for n_pos positives then negatives; cached, since
        the online update calls this with the same shapes every time."""
        key = (n_pos, n, m, np.dtype(dtype))
        cache = self._coef_cache
        if key not in cache:
            sign = np.full((n, 1), 4.0, dtype=dtype)
            sign[:n_pos] = -4.0
            scale = np.full((n, 1), 2.0 / (m * (n - n_pos)) if n > n_pos else 0.0, dtype=dtype)
            scale[:n_pos] = 2.0 / (m * n_pos)
            cache[key] = (sign, scale)
        return cache[key]

    def get_weights(self) -> dict[str, np.ndarray]:
        out = {}
        for l in range(self.num_layers):
            out[f"W{l}"], out[f"b{l}"] = self.W[l], self.b[l]
        return out

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for l in range(self.num_layers):
            W, b = np.asarray(weights[f"W{l}"], self.dtype), np.asarray(weights[f"b{l}"], self.dtype)
            if W.shape != self.W[l].shape or b.shape != self.b[l].shape:
                raise ValueError(f"layer {l}: weights {W.shape}/{b.shape} do not fit {self.W[l].shape}/"
                                 f"{self.b[l].shape}")
            self.W[l], self.b[l] = W, b


class LayerAdam:
    """Adam on one FF layer's (W, b). ``one_step=True``: moments reset and t = 1 at every step
    (LightTune's one-step Adam: the step is lr * g / (|g| + eps), a normalised sign step)."""

    def __init__(self, shapes, lr: float, one_step: bool, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.one_step = lr, one_step
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.one_step:
            # moments reset and t = 1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps)
            for p, g in zip(params, grads):
                step = np.abs(g)                            # in place from here: the per-update hot path
                step += self.eps
                np.divide(g, step, out=step)
                step *= self.lr
                p -= step.astype(p.dtype, copy=False)
            return
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype)
