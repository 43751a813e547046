"""I5 EvalGate: golden cases and their scored results, the judge, and the regression gate."""
