"""Pure domain rules of the child maintenance service (Great Britain, 2012 scheme).

Nothing in this package performs I/O, reads clocks or draws random numbers (apart from
the seeded synthetic-caseload generator, which takes its seed explicitly), so workflows
and services can both import it, including inside Temporal's workflow sandbox.
"""
