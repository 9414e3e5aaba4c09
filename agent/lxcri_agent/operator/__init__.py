"""The cluster-wide operator: one watch of Nodes, reports in, labels and Events out."""
