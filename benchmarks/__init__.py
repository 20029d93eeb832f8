"""lightreg benchmarks: ``python -m benchmarks --quick --jobs 2`` runs them all (see README.md here)."""
