"""The point-data kind: points (N, D) in data units, sample files, evaluation against fresh data, figures."""
