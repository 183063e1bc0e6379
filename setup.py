# All metadata lives in setup.cfg; this shim lets older tools call setup.py.
from setuptools import setup

setup()
