"""The recipe's stages, in run order: data -> model -> train -> reference -> torch passes -> export + parity ->
file passes -> cross-parity -> bench -> gates. Each takes the `Run` (edgekit.stages.state) and appends to its report;
edgekit.pipeline strings them together."""
