"""The backbone: one readable ViT (vit.py; torchvision's ViT-B/16, parity-tested, and the small vit_tiny whose
weights ship with the kit), its on-device input pipeline (pipeline.py) and the pre-training of vit_tiny."""
