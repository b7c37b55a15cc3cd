"""Everything about a run directory, in one place: its layout and file names (`layout`),
atomic file writes (`fileio`), training checkpoints (`checkpoint`), metrics.csv written,
read and cut back (`metrics`), and continuing a run (`resume`)."""
