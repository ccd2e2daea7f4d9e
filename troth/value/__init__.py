"""Customer value: RFM summaries, BTYD models (BG/NBD, Pareto/NBD, Gamma-Gamma), CLV and CEV."""
