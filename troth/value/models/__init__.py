"""Buy-till-you-die models fitted by maximum likelihood on compressed (x, t_x, T) rows."""
