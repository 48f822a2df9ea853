"""Post-training quantization transforms: BN folding, CLE, bias correction, AdaRound, streaming calibrators."""
