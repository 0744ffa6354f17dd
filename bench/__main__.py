import sys

from . import modem
from .run import main

options, rest_argv = modem.parse_known_args(sys.argv[1:])
if "-h" in rest_argv or "--help" in rest_argv:
    print(modem.parser().format_help())
status = 0
if options.only != "modem":
    status |= main(rest_argv)
if options.only != "rest":
    status |= modem.main(options)
sys.exit(status)
