"""Sionna's LDPC node updates (boxplus-phi check nodes, sum variable nodes) with XLA-cheap reductions.

Sionna's ``LDPCBPDecoder`` reduces its ragged messages with ``tf.reduce_sum(ragged, axis=1)``, which
rebuilds each edge's row index from the row splits (``row_splits_to_segment_ids``: a ``tf.repeat``
with a data-dependent shape). Under ``jit_compile`` XLA resolves those shapes by evaluating the
index arithmetic over all edges with its constant interpreter, every time it lowers the decoder's
loop body: ~5 s for one code of 8,000 bits, ~15 s of the ~20 s a link-level chain took to compile
(measured on 2 cores), and paid again by every process, since the persistent compilation cache
(simulator/xla_cache.py) is keyed on the lowered program.

These are ``sionna.phy.fec.ldpc.decoding.cn_update_phi`` and ``vn_update_sum`` line for line, except
that the reductions over a node's edges are ``tf.math.unsorted_segment_*`` on the ragged tensor's
cached ``value_rowids()`` (the decoder builds its edge permutations with ``from_value_rowids``, so
the row ids are a captured constant). ``ragged_reduce_aggregate`` calls the same segment ops on the
same ids, so the decoded bits are the same (tests/simulator/phy/test_ldpc_updates.py); only the
lowering changes. Passed to ``TBDecoder`` as ``cn_update`` / ``vn_update`` (Sionna accepts
callables there).
"""
from __future__ import annotations

import tensorflow as tf


def _row_sum(rag):
    """sum over each row's edges: [rows, batch]."""
    return tf.math.unsorted_segment_sum(rag.flat_values, rag.value_rowids(), rag.nrows())


def _row_prod(rag):
    """product over each row's edges: [rows, batch]."""
    return tf.math.unsorted_segment_prod(rag.flat_values, rag.value_rowids(), rag.nrows())


def _phi(x):
    """phi(x) = -log(tanh(x/2)), with Sionna's float32/float64 clipping."""
    if x.dtype == tf.float32:
        x = tf.clip_by_value(x, clip_value_min=8.5e-8, clip_value_max=16.635532)
    elif x.dtype == tf.float64:
        x = tf.clip_by_value(x, clip_value_min=1e-12, clip_value_max=28.324079)
    else:
        raise TypeError("Unsupported dtype for phi function.")
    return tf.math.log(tf.math.exp(x) + 1) - tf.math.log(tf.math.exp(x) - 1)


def cn_update_phi(msg, llr_clipping=None):
    """Boxplus check-node update in the log-tanh (phi) domain: ragged v2c messages
    [num_cns, None, batch] -> c2v messages of the same shape (Sionna's ``cn_update_phi``)."""
    sign_val = tf.sign(msg)
    sign_val = tf.ragged.map_flat_values(lambda x: tf.where(tf.equal(x, 0), tf.ones_like(x), x), sign_val)
    sign_node = _row_prod(sign_val)
    sign_val = tf.ragged.map_flat_values(lambda x, y, row_ind: x * tf.gather(y, row_ind),
                                         sign_val, sign_node, sign_val.value_rowids())
    msg = tf.ragged.map_flat_values(tf.abs, msg)
    msg = tf.ragged.map_flat_values(_phi, msg)
    msg_sum = _row_sum(msg)
    msg = tf.ragged.map_flat_values(lambda x, y, row_ind: x + tf.gather(y, row_ind),
                                    -1. * msg, msg_sum, msg.value_rowids())
    sign_val = sign_val.with_flat_values(tf.stop_gradient(sign_val.flat_values))
    msg_e = sign_val * tf.ragged.map_flat_values(_phi, msg)
    if llr_clipping is not None:
        msg_e = tf.clip_by_value(msg_e, clip_value_min=-llr_clipping, clip_value_max=llr_clipping)
    return msg_e


def vn_update_sum(msg_c2v_rag, llr_ch, llr_clipping=None):
    """Variable-node update: ragged c2v messages [num_vns, None, batch] and channel LLRs
    [num_vns, batch] -> (extrinsic v2c messages, ragged; marginal LLRs [num_vns, batch])
    (Sionna's ``vn_update_sum``)."""
    x = _row_sum(msg_c2v_rag)
    x_tot = tf.add(x, llr_ch)
    x_e = tf.ragged.map_flat_values(lambda x, y, row_ind: x + tf.gather(y, row_ind),
                                    -1. * msg_c2v_rag, x_tot, msg_c2v_rag.value_rowids())
    if llr_clipping is not None:
        x_e = tf.clip_by_value(x_e, clip_value_min=-llr_clipping, clip_value_max=llr_clipping)
        x_tot = tf.clip_by_value(x_tot, clip_value_min=-llr_clipping, clip_value_max=llr_clipping)
    return x_e, x_tot
