"""Console scripts: one thin module per verb (parse -> call the verb -> render -> exit code)."""
