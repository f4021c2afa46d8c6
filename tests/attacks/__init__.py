"""Attack tests: hostile IR documents and pathological models against the validator,
the row-code generator, the evaluator and the PL/Python engine."""
