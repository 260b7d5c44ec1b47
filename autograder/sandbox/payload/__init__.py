"""What runs inside the sandbox: the notebook runner and the evidence capture (they never import the kit)."""
