"""The ChaosHub client: the Chaos Toolkit control that reports runs, and `chaoshub login`."""
