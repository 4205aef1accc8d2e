import sys
import xbench  # noqa: F401  (the launch-file fix for StaffroomClient)
from bench import capacity
capacity.main(sys.argv[1:])
