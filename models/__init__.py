"""Learning code: river online models and the torch DQN (with numpy inference)."""
