"""How agents are fed: the Faust app, topic catalogue, stream wiring, worker roles and the CLI."""
