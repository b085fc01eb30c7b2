"""DeepRx-style neural receiver (seeds/000, 001) and influence functions for targeted fine-tuning.

model.py      the fully convolutional receiver (registered as ``deeprx``), its input features,
              loss masks and per-sample losses (masked BCE, soft BER)
influence.py  Hessian-vector products on a fixed Hessian subset, Arnoldi iteration distilled to
              the top-k eigenpairs, and classic / theta-relative / l-relative / self-influence
              scores with cached projected training gradients
"""
