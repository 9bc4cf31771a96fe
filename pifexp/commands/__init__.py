"""The commands' faces: one module per command, each a few lines from a composed Hydra config to
a plain function of the packages below, and back to the user. Only this package and pifexp/cli.py
print or exit.

May import: everything in pifexp; nothing in pifexp imports it except the CLI (and Hydra, which
calls pifexp.commands.table1.Table1Callback).
"""
