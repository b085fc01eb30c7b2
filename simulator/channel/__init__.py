"""Channel sources: 38.901 fading continuous in time, and SNR models."""
