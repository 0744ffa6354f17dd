import sys

from ...store.models import FeederAmqpSettings
from ..runner import feeder_main
from . import connect

sys.exit(feeder_main("amqp", FeederAmqpSettings, connect))
