"""Neural CSI feedback codec (seeds/002): conv autoencoder + DeepFactorized entropy model with
real range-coded bitstreams, and decoder updates coded under a spike-and-slab prior.

entropy.py       DeepFactorized density, likelihoods/bits, integer probability tables
bitstream.py     range coding of integer latents with constriction (many reports per stream or one each)
update_coder.py  decoder-update quantiser (STE), spike-and-slab / uniform priors, update coding
model.py         the conv codec (registered as ``conv_csi``), RD / NMSE / full-model losses
train.py         RD trainer and full-model fine-tuner
sides.py         the UE (encoder side) and gNB (decoder side) ends of the feedback link
translation.py   the TM baseline: translation / retranslation modules around a frozen codec, their fine-tuner
data.py          the dataset format (shards, description, splits, tf.data, tracks); the generator, which
                 draws from Sionna's 38.901 models, Sionna RT and a scenario's channel, is
                 ``simulator/datagen/csi.py``
"""
