"""Speed: what a training step, a penalty, a monitor, a loader or a start of ``python -m train`` costs."""
