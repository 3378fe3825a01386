"""qsampling — 双随机、一公开 supervision sampling."""

__version__ = "0.1.0"
