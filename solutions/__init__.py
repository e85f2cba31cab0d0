"""Worked solutions to the chapters' exercises: one module per chapter, one function per exercise that can be run.

The book shows each function inside the exercise's hidden solution (``literalinclude`` with ``:pyobject:``), and
``tests/test_solutions_chNN.py`` runs it with small settings and checks what the solution text claims, so a
solution that stops working fails CI instead of misleading a reader."""
