"""FF network: the closed-form gradients of the quadratic loss equal autodiff of eq. 6."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.ff_bler.ffnet import FFNet, LayerAdam


def _autodiff_quad(net: FFNet, l: int, x_pos, x_neg):
    W = tf.Variable(net.W[l])
    b = tf.Variable(net.b[l])
    T = net.threshold
    with tf.GradientTape() as tape:
        hp = tf.nn.relu(tf.constant(x_pos) @ tf.transpose(W) + b)
        hn = tf.nn.relu(tf.constant(x_neg) @ tf.transpose(W) + b)
        if net.goodness_kind == "layer":
            gp, gn = tf.reduce_sum(hp * hp, axis=-1) - T, tf.reduce_sum(hn * hn, axis=-1) - T
        else:
            gp, gn = hp * hp - T, hn * hn - T
        loss = tf.reduce_mean(gp * gp - 4 * gp) + tf.reduce_mean(gn * gn + 4 * gn)
    dW, db = tape.gradient(loss, [W, b])
    return dW.numpy(), db.numpy(), float(loss)


@pytest.mark.parametrize("goodness", ["neuron", "layer"])
@pytest.mark.parametrize("batch", [1, 5])
def test_closed_form_gradients_match_autodiff_every_layer(rng, batch, goodness):
    net = FFNet((13, 32, 32), threshold=9.0, rng=rng, dtype=np.float64, goodness=goodness)
    x_pos = rng.normal(size=(batch, 13)) * 2
    x_neg = rng.normal(size=(batch, 13)) * 2
    hp, hn = x_pos, x_neg
    for l in range(net.num_layers):
        xp, xn = net.layer_input(l, hp), net.layer_input(l, hn)
        dW, db, loss, _, _ = net.quad_grads(l, xp, xn)
        rW, rb, rloss = _autodiff_quad(net, l, xp, xn)
        assert np.abs(rW).max() > 0, "a layer with no active unit would make this test vacuous"
        assert np.linalg.norm(dW - rW) / np.linalg.norm(rW) < 1e-6
        assert np.linalg.norm(db - rb) / np.linalg.norm(rb) < 1e-6
        assert loss == pytest.approx(rloss, rel=1e-12)
        _, hp = net.layer_forward(l, xp)
        _, hn = net.layer_forward(l, xn)


def test_quadratic_loss_is_the_scaled_softplus_taylor_expansion(rng):
    # 8 * (softplus(-x) - ln 2) + 4 x = x^2 + O(x^3): eq. 6 is eq. 4 expanded around g = T, scaled by 8
    x = np.linspace(-0.05, 0.05, 11)
    softplus_pos = np.log1p(np.exp(-x))
    assert np.allclose(8 * (softplus_pos - np.log(2)), x * x - 4 * x, atol=1e-4)


def test_one_step_adam_is_a_normalised_sign_step():
    p = [np.array([1.0, 1.0, 1.0])]
    opt = LayerAdam([(3,)], lr=0.03, one_step=True)
    for _ in range(3):
        opt.step(p, [np.array([5.0, -0.2, 0.0])])
    np.testing.assert_allclose(p[0], [1 - 0.09, 1 + 0.09, 1.0], atol=1e-6)
