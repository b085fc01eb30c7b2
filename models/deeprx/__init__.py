"""DeepRx-style neural receiver (seeds/000, 001) and influence functions for targeted fine-tuning.

model.py      the fully convolutional receiver (registered as ``deeprx``; the neural receiver
              slot, ``models.base.NeuralReceiver``, that the link-level chain traces into its
              compiled call), its input features, loss masks and per-sample losses (masked BCE, soft BER)
influence.py  Hessian-vector products on a fixed Hessian subset, Arnoldi iteration distilled to
              the top-k eigenpairs, and classic / theta-relative / l-relative / self-influence
              scores with cached projected training gradients
data.py       the dataset format (shards, description) and the model batch of its samples; the
              generator, which needs the simulator's NR chain and channel, is
              ``simulator/datagen/deeprx.py`` (``airtune data deeprx``)
receiver.py   the grid a checkpoint fits, without TensorFlow (read by the scenario schema)

Speed (tests/benchmarks/bench_influence.py, small preset, 14 x 72 grid, Hessian subset 16, on
2 shared CPU cores, three runs): 3.1-4.6 HVP/s (double backprop was faster in two runs of
three; an HVP costs 1.9-2.7 batched gradients of the subset), Arnoldi k = 40 (80 HVPs) 28-37 s,
scoring 128 pool samples against a target 0.91-1.02x the time of their 128 vectorised
per-sample gradients (the projection on the eigenbasis is negligible next to the gradients). XLA (jit_compile) made HVPs ~10x slower
on this CPU (depthwise convolutions), so nothing here is XLA-compiled.
"""
