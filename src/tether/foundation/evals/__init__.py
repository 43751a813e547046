"""I5 EvalGate: golden cases, eval runs against candidate routes, and the regression gate."""
