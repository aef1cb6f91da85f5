# The awq program.
