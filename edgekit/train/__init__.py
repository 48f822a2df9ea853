"""Training: used for training, fine-tuning, distillation and quantization-aware training."""
