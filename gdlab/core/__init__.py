"""The pure numerical core: optimizers, schedules and gradient transforms (arrays in, arrays out)."""
