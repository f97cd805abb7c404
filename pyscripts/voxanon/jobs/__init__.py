"""Job runners behind ``$cmd`` in the recipe: ``utils/run.pl`` (local) and ``utils/slurm.pl``."""
