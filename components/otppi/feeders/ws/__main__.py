import sys

from ...store.models import FeederWsSettings
from ..runner import feeder_main
from . import connect

sys.exit(feeder_main("ws", FeederWsSettings, connect))
