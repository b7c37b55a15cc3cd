"""What a run shows a person: learning curves (`plotting`), run comparisons (`compare`),
videos of the agent (`render`) and TensorBoard scalars (`tblog`)."""
