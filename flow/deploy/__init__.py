"""The deploy bundle and the stand-alone Python driver."""
