"""Studies that run many experiments: the paper's Table 1 (``table1``) and the admixture sweep of
Figure 4 (``sweep``); the egs/ scripts drive them."""
