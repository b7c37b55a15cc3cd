# ENV_PRESETS (or ALGO_PRESETS with the algo): found by `asyncdqn tune` (steps objective, best value 6e+05, seeds [100])
'MountainCar-v0': {
    'envs_per_worker': 4,
    'eps_anneal_steps': 69034,
    'final_epsilon_probs': (0.4, 0.3, 0.3),
    'final_epsilons': (0.1, 0.01, 0.5),
    'gamma': 0.98,
    'grad_clip': 1.0,
    'hidden_sizes': (128, 128),
    'lr': 0.000757,
    't_max': 10,
    'target_update_steps': 1000,
},
