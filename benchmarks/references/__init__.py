"""References: lightreg against another library (scikit-learn, LassoNet, magnitude pruning) or a known optimum."""
