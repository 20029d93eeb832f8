"""Studies: input selection and exact sparsity on the seed-001 and seed-004 problems."""
