import sys

from . import admin_login, burst, feeders, modem, rest_login
from .run import main

options, rest_argv = modem.parse_known_args(sys.argv[1:])
if "-h" in rest_argv or "--help" in rest_argv:
    print(modem.parser().format_help())
status = 0
if options.only in (None, "rest"):
    status |= main(rest_argv)
if options.only in (None, "modem"):
    status |= modem.main(options)
if options.only in (None, "burst"):
    status |= burst.main(options.quick)
if options.only in (None, "feeders"):
    status |= feeders.main(options.quick)
if options.only in (None, "login"):
    samples = ["--samples", "10"] if options.quick else []
    status |= rest_login.main(samples)
    status |= admin_login.main(samples)
sys.exit(status)
