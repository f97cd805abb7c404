"""Generated test material, shared by tests/ and bench/: speech-like data dirs (``datadirs``) and
random-weight stand-ins for the VPC 2024 evaluation models (``vpc_models``). Nothing here
downloads, and the recipe itself never imports it."""
