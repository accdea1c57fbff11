"""The command-line interface: ``medaug COMMAND``; one module per command."""
