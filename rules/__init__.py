"""trainprof's rules: one module per rule, each defining RULE. Discovered by
trainprof.engine.all_rules(); adding a rule is adding a file here."""
