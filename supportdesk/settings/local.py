"""Local development: the embedded profile with DEBUG on."""

from supportdesk.settings.base import *  # noqa: F403
from supportdesk.settings.base import env_bool

DEBUG = env_bool("DEBUG", default=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
