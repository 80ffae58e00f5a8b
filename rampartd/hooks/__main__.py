"""`python -m rampartd.hooks HOST`: the same hook as the `rampartd-hook` executable."""

from rampartd.hooks.main import main

main()
